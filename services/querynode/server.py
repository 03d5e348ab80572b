"""The querynode's RPC face: channel and segment placement from the coordinator, reads from proxies.

A querynode plays two parts, as in Milvus: *leader* of the shards (vchannels) the coordinator
has it watch (services/querynode/delegator.py: growing data, deletes, tsafe, and the fan-out of
reads to the replica's workers), and *worker* for the sealed segments placed on it
(services/querynode/worker.py), which the leaders of their shards query by segment id.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from common.errors import Code, MilvusError
from common.expr import Filter, compile_filter
from common.msgstream.base import MsgStream
from common.reduce import Hits
from common.rpc import Router, rpc
from common.schema import Schema
from common.storage.base import ObjectStorage
from services.querynode.bm25_stats import shard_stats
from services.querynode.channel import ChannelServer
from services.querynode.delegator import FilterFn, ShardDelegator
from services.querynode.loader import estimate_bytes, load_segment
from services.querynode.metrics import watch as watch_metrics
from services.querynode.segment import Segment
from services.querynode.worker import SealedStore, merge_query, merge_search, query_segments, search_segments

log = logging.getLogger(__name__)
# compile_filter errors that are the plan parser's own (what Milvus wraps as "failed to create query plan")
_PLAN_ERRORS = ("cannot parse expression: ", "predicate is not a boolean expression: ")


class QueryNode:
    def __init__(
        self, stream: MsgStream, storage: ObjectStorage, memory_budget_mb: int, router: Router | None = None
    ) -> None:
        self.stream = stream
        self.storage = storage
        self.router = router or Router()
        self.budget = memory_budget_mb * 1024 * 1024
        self.channels: dict[str, ChannelServer] = {}
        self.delegators: dict[str, ShardDelegator] = {}
        self.store = SealedStore()
        self.schemas: dict[int, Schema] = {}  # collection id -> schema, for segments loaded as a worker
        self._lock = threading.RLock()
        self._load_lock = threading.Lock()  # one load at a time: the budget check stays true
        # compiled filters by (collection, schema version, expr, params): a filter compiled against an
        # older schema (before AddCollectionField) is never served for a newer one
        self._filters: OrderedDict[tuple[int, int, str, str, str], Filter] = OrderedDict()
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="qn-fanout")
        watch_metrics(self)  # tsafe lag and segment memory gauges (services/querynode/metrics.py)

    # --- placement (from the coordinator) -----------------------------------------------
    @rpc
    def watch_channel(
        self,
        collection_id: int,
        vchannel: str,
        schema: str,
        checkpoint: dict[str, Any] | None,
        flushed_segment_ids: list[int],
        partition_ids: list[int],
    ) -> None:
        with self._lock:
            if vchannel in self.channels:
                return
            parsed = Schema.from_bytes(base64.b64decode(schema))
            self.schemas.setdefault(collection_id, parsed)
            ch = ChannelServer(
                collection_id, vchannel, parsed, self.stream, checkpoint, flushed_segment_ids, partition_ids
            )
            self.channels[vchannel] = ch
            self.delegators[vchannel] = ShardDelegator(ch, self.store, self.router, self._pool, self.storage)

    @rpc
    def release_channel(self, vchannel: str) -> None:
        with self._lock:
            ch = self.channels.pop(vchannel, None)
            self.delegators.pop(vchannel, None)
        if ch is not None:
            ch.stop()

    @rpc
    def set_partitions(self, vchannel: str, partition_ids: list[int]) -> None:
        ch = self._channel(vchannel)
        ch.partitions = set(partition_ids)

    @rpc
    def set_schema(self, collection_id: int, schema: str) -> None:
        """The schema of a collection whose segments this node may load as a worker."""
        with self._lock:
            self.schemas[collection_id] = Schema.from_bytes(base64.b64decode(schema))

    @rpc
    def update_schema(self, collection_id: int, schema: str) -> None:
        """A DDL changed the collection (field added, properties): adopt it on its channels and
        sealed segments here, and forget filters compiled against the old one."""
        parsed = Schema.from_bytes(base64.b64decode(schema))
        with self._lock:
            held = self.schemas.get(collection_id)
            if held is not None and held.version > parsed.version:
                return  # an older schema than the one served: ignore
            chans = [ch for ch in self.channels.values() if ch.collection_id == collection_id]
            if held is None and not chans:
                return  # not served here: channels and segments get the schema when placed
            self.schemas[collection_id] = parsed
            for key in [k for k in self._filters if k[0] == collection_id]:
                del self._filters[key]
        for ch in chans:
            ch.update_schema(parsed)
        with self._load_lock:  # a load that read the old schema finishes first, then is adopted too
            for seg in self.store.all():
                if _collection_of(seg.vchannel) == collection_id:
                    seg.adopt_schema(parsed)

    @rpc
    def load_segment(
        self, segment: dict[str, Any], version: str, indexes: list[dict[str, Any]], replaces: list[int] | None = None,
        deltas_ts: int = 0, refresh: bool = False,
    ) -> bool:
        """Load a sealed segment as a worker. ``replaces`` (its compaction inputs) stay loaded until
        released: the shard's leader swaps them for it in its distribution, in one step. Returns
        whether it is ready (a fresh copy is not until its leader's catch-up: worker.SealedStore).
        ``deltas_ts``: its delta logs hold every delete at or below it (services/coord/delta_watermark.py).
        ``refresh``: load again a copy of the same version whose delta logs stop short of ``deltas_ts``
        (one no leader routes to any more: services/coord/dispatch.py ``_orphaned``)."""
        schema = self._schema(int(segment["collection_id"]), segment["vchannel"])
        with self._load_lock:
            sid = int(segment["id"])
            old = self.store.get(sid)
            if old is not None and old.version == version and not (refresh and old.deltas_ts < deltas_ts):
                return self.store.is_ready(sid)  # loaded already (a repeated call): nothing to do
            need = estimate_bytes(self.storage, segment, indexes)
            used = self.memory_used() - (old.memory_bytes() if old is not None else 0)  # a new version replaces it
            if used + need > self.budget:
                raise MilvusError(
                    Code.MEMORY_LIMIT_EXCEEDED,
                    f"memory limit exceeded: load segment {segment['id']} needs {need >> 10} KB but the query "
                    f"node has {max(0, self.budget - used) >> 10} KB of its {self.budget >> 10} KB budget left",
                )
            seg = load_segment(self.storage, schema, segment, version, indexes)
            seg.deltas_ts = int(deltas_ts)
            latest = self._schema(int(segment["collection_id"]), segment["vchannel"])
            if latest is not schema:  # update_schema ran during the load: adopt what it brought
                seg.adopt_schema(latest)
            self.store.add(seg, ready=False)  # a fresh copy waits for its leader's buffered deletes
            return self.store.is_ready(sid)

    @rpc
    def release_segments(self, segment_ids: list[int]) -> None:
        self.store.remove([int(s) for s in segment_ids])

    @rpc
    def sync_distribution(
        self,
        vchannel: str,
        leader: str,
        segments: dict[str, str],
        dropped: list[int] | None = None,
        reloaded: list[int] | None = None,
        stats: dict[str, list[Any]] | None = None,
    ) -> None:
        """As leader of ``vchannel`` (this node is ``leader``): route these sealed segments (id -> worker
        endpoint) from now on, and drop the growing copies of ``dropped`` (segments compaction dropped
        whose rows a routed segment serves now, or that nothing serves any more). ``reloaded``:
        routed segments whose worker copy is fresh (not ready), which get the buffered deletes too.
        ``stats``: per routed segment [its stats log keys, its rows], so deletes go only to the
        workers whose segments may hold their keys (a segment left out gets every delete)."""
        delegator = self.delegators.get(vchannel)
        if delegator is None:
            raise MilvusError(Code.CHANNEL_NOT_AVAILABLE, f"channel not available[channel={vchannel}] on this node")
        delegator.sync(
            leader,
            {int(s): e for s, e in segments.items()},
            [int(s) for s in dropped or []],
            [int(s) for s in reloaded or []],
            {int(s): (list(v[0]), int(v[1])) for s, v in (stats or {}).items()},
        )

    @rpc
    def trim_deletes(self, vchannel: str, upto: int) -> None:
        """As leader of ``vchannel``: forget the buffered deletes at or below ``upto`` (every copy
        the coordinator may still have caught up has them in its delta logs)."""
        self._delegator(vchannel).trim_deletes(int(upto))

    @rpc
    def apply_deletes(
        self, vchannel: str, deletes: list[list[Any]], ready: list[int] | None = None, trimmed_to: int = 0
    ) -> int:
        """Deletes of ``vchannel`` forwarded by its leader, for the sealed segments held here;
        ``ready``: the segments whose catch-up this is (they serve reads from now on), from a buffer
        that no longer holds the deletes at or below ``trimmed_to``."""
        return self.store.apply_deletes(
            vchannel, [(np.asarray(pks), int(ts)) for pks, ts in deletes], [int(s) for s in ready or []],
            int(trimmed_to),
        )

    @rpc
    def get_distribution(self) -> dict[str, Any]:
        with self._lock:
            delegators = list(self.delegators.items())
            schemas = sorted(self.schemas)
        channels = {
            v: {
                "collection_id": d.channel.collection_id,
                "tsafe": d.channel.tsafe,
                "partitions": sorted(d.channel.partitions),
                "dist": d.report(),
                "growing_rows": d.growing_rows(),
                "growing": d.growing_ids(),
                "trimmed": d.channel.deletes.trimmed_to,
            }
            for v, d in delegators
        }
        segments = {
            str(seg.segment_id): {"version": seg.version, "vchannel": seg.vchannel, "rows": seg.num_rows,
                                  "memory": seg.memory_bytes(), "ready": self.store.is_ready(seg.segment_id),
                                  "deltas_ts": seg.deltas_ts}
            for seg in self.store.all()
        }
        return {"channels": channels, "segments": segments, "memory": self.memory_used(), "budget": self.budget,
                "schemas": schemas}

    def memory_used(self) -> int:
        """Bytes of the sealed segments held here plus the growing data and buffered deletes of the
        shards led here."""
        with self._lock:
            delegators = list(self.delegators.values())
        return self.store.memory_used() + sum(d.growing_bytes() + d.buffered_delete_bytes() for d in delegators)

    def _schema(self, collection_id: int, vchannel: str) -> Schema:
        with self._lock:
            schema = self.schemas.get(collection_id)
            ch = self.channels.get(vchannel)
        if ch is not None:
            return ch.schema
        if schema is None:
            raise MilvusError(
                Code.COLLECTION_NOT_LOADED,
                f"collection not loaded[collection={collection_id}]: no schema on this query node yet",
            )
        return schema

    def _channel(self, vchannel: str) -> ChannelServer:
        ch = self.channels.get(vchannel)
        if ch is None:
            raise MilvusError(Code.CHANNEL_NOT_AVAILABLE, f"channel not available[channel={vchannel}] on this node")
        return ch

    def _delegator(self, vchannel: str) -> ShardDelegator:
        d = self.delegators.get(vchannel)
        if d is None:
            raise MilvusError(Code.CHANNEL_NOT_AVAILABLE, f"channel not available[channel={vchannel}] on this node")
        return d

    def _filter(self, collection_id: int, schema: Schema, expr: str, params: dict[str, Any] | None) -> Filter | None:
        if not expr.strip():
            return None
        # the zone too: an altered timezone property changes ISO literals without a schema version
        key = (collection_id, schema.version, schema.timezone, expr,
               json.dumps(params, sort_keys=True, default=str) if params else "")
        with self._lock:
            flt = self._filters.get(key)
            if flt is not None:
                self._filters.move_to_end(key)
                return flt
        try:
            flt = compile_filter(expr, schema, params)
        except MilvusError as err:
            if not err.message.startswith(_PLAN_ERRORS):
                raise
            # Milvus's proxy wraps the plan parser's errors of a search or query so
            raise MilvusError(err.code, f"failed to create query plan: {err.message}: invalid parameter") from None
        with self._lock:
            self._filters[key] = flt
            if len(self._filters) > 256:
                self._filters.popitem(last=False)
        return flt

    def _filter_of(self, ch: ChannelServer) -> FilterFn:
        def compile_for(expr: str, params: dict[str, Any] | None) -> Filter | None:
            return self._filter(ch.collection_id, ch.schema, expr, params)

        return compile_for

    # --- reads from proxies (as leader) -------------------------------------------------
    @rpc
    def search(
        self, vchannels: list[str], partition_ids: list[int], guarantee_ts: int, timeout: float = 10.0,
        read_ts: int = 0, **kwargs: Any
    ) -> dict[str, Any]:
        """Top-k over the shards led here; every other keyword goes unchanged to the workers.
        ``read_ts`` > 0 reads at that timestamp (an iterator's snapshot), else at tsafe."""
        parts: list[Hits] = []
        for v in vchannels:
            d = self._delegator(v)
            ch = d.channel
            parts += d.search(guarantee_ts, timeout, partition_ids, self._filter_of(ch), kwargs, read_ts)
        return merge_search(parts, kwargs)

    @rpc
    def query(
        self, vchannels: list[str], partition_ids: list[int], guarantee_ts: int, timeout: float = 10.0,
        read_ts: int = 0, **kwargs: Any
    ) -> dict[str, Any]:
        replies: list[dict[str, Any]] = []
        pk_name = ""
        for v in vchannels:
            d = self._delegator(v)
            ch = d.channel
            pk_name = ch.schema.primary.name
            replies.append(d.query(guarantee_ts, timeout, partition_ids, self._filter_of(ch), kwargs, read_ts))
        return merge_query(replies, pk_name, kwargs.get("limit"), bool(kwargs.get("count_only", False)))

    # --- reads from leaders (as worker) -------------------------------------------------
    def _worker_segments(
        self, vchannel: str, segment_ids: list[int], partition_ids: list[int]
    ) -> tuple[list[Segment], Schema | None]:
        segs = self.store.pick(vchannel, [int(s) for s in segment_ids], set(partition_ids))
        return segs, (segs[0].schema if segs else None)

    @rpc
    def search_segments(
        self, vchannel: str, segment_ids: list[int], partition_ids: list[int], query_ts: int, **kwargs: Any
    ) -> dict[str, Any]:
        segs, schema = self._worker_segments(vchannel, segment_ids, partition_ids)
        if not segs or schema is None:
            return {"empty": True}
        coll = _collection_of(vchannel)
        flt = self._filter(coll, schema, kwargs.get("expr", ""), kwargs.get("expr_params"))
        return merge_search(search_segments(segs, query_ts, flt, kwargs), kwargs)

    @rpc
    def bm25_stats_segments(
        self, vchannel: str, segment_ids: list[int], field: str, terms: list[int]
    ) -> dict[str, Any]:
        """BM25 corpus statistics of the sealed segments this worker serves for a shard leader."""
        segs = self.store.pick(vchannel, [int(s) for s in segment_ids], None)
        return shard_stats(segs, field, [int(t) for t in terms]).to_wire()

    @rpc
    def query_segments(
        self, vchannel: str, segment_ids: list[int], partition_ids: list[int], query_ts: int, **kwargs: Any
    ) -> dict[str, Any]:
        count_only = bool(kwargs.get("count_only", False))
        segs, schema = self._worker_segments(vchannel, segment_ids, partition_ids)
        if not segs or schema is None:
            return {"count": 0} if count_only else {"rows": {}}
        coll = _collection_of(vchannel)
        flt = self._filter(coll, schema, kwargs.get("expr", ""), kwargs.get("expr_params"))
        return query_segments(segs, query_ts, flt, list(kwargs.get("output_fields", [])), kwargs.get("limit"),
                              count_only)

    def stop(self) -> None:
        with self._lock:
            chans = list(self.channels.values())
            self.channels.clear()
            self.delegators.clear()
        for ch in chans:
            ch.stop()
        self._pool.shutdown(wait=False)


def _collection_of(vchannel: str) -> int:
    """The collection id in a vchannel name ``{pchannel}_{collectionID}v{shard}`` (0 if it has none)."""
    tail = vchannel.rsplit("_", 1)[-1]
    head = tail.split("v", 1)[0]
    return int(head) if head.isdigit() else 0
