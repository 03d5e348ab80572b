"""The shard delegator: the leader of one shard (vchannel) of a replica, as Milvus's querynode has it.

The leader consumes the channel (growing data, deletes, tsafe: services/querynode/channel.py) and
holds the shard's *distribution*: which querynode of the replica serves each sealed segment
(itself included). A read waits for tsafe, searches the growing data here and fans out to the
workers with the segment ids each one serves, at one query timestamp, then merges.

Deletes reach the sealed copies on the workers: each delete the channel consumes is forwarded,
before tsafe passes it, to the workers of the distribution whose segments may hold its keys (the
PK oracle, services/querynode/pk_oracle.py: each segment's stats log), and a worker that joins the
distribution first gets every delete buffered so far that its new segments may hold. The buffer
forgets deletes every copy still to be caught up has in its delta logs, when the coordinator says
so (:meth:`trim_deletes`; services/coord/delta_watermark.py). Changing the
distribution (:meth:`sync`) is one step: after it, reads use the new placement and the growing
copies of newly sealed segments are gone.
A worker that cannot take a forwarded delete is marked broken: reads that need it fail with a
channel error (the proxy then asks another replica) until the coordinator syncs it in again.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from common.bm25 import CorpusStats, idf_weighted, query_term_ids
from common.errors import Code, MilvusError
from common.expr import Filter
from common.reduce import Hits
from common.rpc import Router
from common.storage.base import ObjectStorage
from services.querynode.bm25_stats import shard_stats
from services.querynode.channel import ChannelServer
from services.querynode.delete_log import Deletes, select
from services.querynode.pk_oracle import PkOracle
from services.querynode.worker import SealedStore, merge_query, query_segments, search_segments

log = logging.getLogger(__name__)
FORWARD_TIMEOUT = 5.0
# worker failures that mean "this replica cannot answer now": the proxy retries another replica
_UNAVAILABLE = {
    Code.SERVICE_UNAVAILABLE, Code.NODE_NOT_AVAILABLE, Code.CHANNEL_NOT_AVAILABLE, Code.SEGMENT_NOT_FOUND,
    Code.CHANNEL_NOT_FOUND, Code.TIMEOUT,
}

FilterFn = Callable[[str, dict[str, Any] | None], Filter | None]


class ShardDelegator:
    def __init__(
        self, channel: ChannelServer, store: SealedStore, router: Router, pool: ThreadPoolExecutor,
        storage: ObjectStorage,
    ) -> None:
        self.channel = channel
        self.store = store
        self.router = router
        self.pool = pool
        self.endpoint = ""  # this node's endpoint, as the coordinator names it
        self.dist: dict[int, str] = {}  # sealed segment id -> endpoint serving it
        self.broken: set[str] = set()  # workers that missed a forwarded delete
        self.oracle = PkOracle(storage)  # which routed segments may hold a key
        self._failures: dict[str, int] = {}  # forward failures per worker (a re-sync must postdate them)
        self._sync_lock = threading.Lock()
        channel.on_delete = self._forward_delete

    @property
    def vchannel(self) -> str:
        return self.channel.vchannel

    # --- distribution -------------------------------------------------------------------
    def sync(
        self, endpoint: str, segments: dict[int, str], dropped: list[int] | None = None,
        reloaded: list[int] | None = None, stats: dict[int, tuple[list[str], int]] | None = None,
    ) -> None:
        """Serve exactly ``segments`` (id -> endpoint) sealed from now on; the growing copies of these
        and of ``dropped`` (compacted away: a routed segment, or nothing, serves their rows) go.
        Workers of segments new to their endpoint, or ``reloaded`` there (a fresh copy on the same
        endpoint: a restarted querynode), first get the deletes buffered so far that those segments
        may hold. ``stats``: the segments' stats logs and rows (a segment missing there is sent
        every delete)."""
        with self._sync_lock:
            self.endpoint = endpoint
            self.oracle.add(stats or {})
            ch = self.channel
            with ch._lock:
                old = dict(self.dist)
                # until the switch, deletes go to the old placement and the new one alike
                ch.forward_to = _union(_placement(old), _placement(segments))
                buffered, trimmed_to = ch.deletes.snapshot(), ch.deletes.trimmed_to
                failures = dict(self._failures)
            fresh = set(reloaded or ())
            added: dict[str, list[int]] = {}
            for sid, e in segments.items():
                if old.get(sid) != e or e in self.broken or sid in fresh:
                    added.setdefault(e, []).append(sid)
            for e, sids in added.items():  # catch up on the deletes consumed so far (forwarding covers later ones)
                try:
                    self._send_deletes(e, self._relevant(buffered, sids), ready=sids, trimmed_to=trimmed_to)
                except MilvusError as exc:  # its segments stay unavailable: reads fail, never miss deletes
                    log.warning("catch-up deletes to %s for %s failed: %s", e, self.vchannel, exc)
                    with ch._lock:
                        self._failures[e] = self._failures.get(e, 0) + 1
                        self.broken.add(e)
                    continue
                if self._failures.get(e, 0) == failures.get(e, 0):
                    self.broken.discard(e)
            with ch._lock:
                self.dist = dict(segments)
                ch.forward_to = _placement(segments)
                ch.handoff([*segments, *(dropped or [])])
            self.oracle.retain(segments)
            gone = set(old.values()) - set(segments.values())
            self.broken -= gone

    def trim_deletes(self, upto: int) -> None:
        """Forget the buffered deletes at or below ``upto`` (the coordinator's call: every copy it
        may still have caught up holds them in its delta logs). A catch-up from then on tells the
        worker, which refuses a copy whose delta logs stop short of it (worker.SealedStore)."""
        with self.channel._lock:
            self.channel.deletes.trim(upto)

    def _relevant(self, deletes: list[tuple[np.ndarray, np.ndarray]], segment_ids: list[int]) -> Deletes:
        """The deletes of the log snapshot ``deletes`` that ``segment_ids`` may hold."""
        return select(deletes, lambda keys: self.oracle.may_contain(keys, segment_ids))

    def report(self) -> dict[str, str]:
        """The distribution as served now (broken workers left out: the coordinator re-syncs them)."""
        with self.channel._lock:
            return {str(s): e for s, e in self.dist.items() if e not in self.broken}

    def growing_ids(self) -> list[int]:
        with self.channel._lock:
            return sorted(self.channel.growing)

    def growing_rows(self) -> int:
        with self.channel._lock:
            return sum(s.num_rows for s in self.channel.growing.values())

    def growing_bytes(self) -> int:
        with self.channel._lock:
            segs = list(self.channel.growing.values())
        return sum(s.memory_bytes() for s in segs)

    def buffered_delete_bytes(self) -> int:
        with self.channel._lock:
            return self.channel.deletes.nbytes()

    def _forward_delete(self, pks: np.ndarray, ts: int, placement: dict[str, frozenset[int]]) -> None:
        # one worker after the other: sending in parallel through the pool measured slower
        # (bench.deletes, workers over TCP in one process: 878 vs 1,308 deletes/s)
        for e, keys in self.oracle.split(pks, placement).items():
            try:
                self._send_deletes(e, [(keys, ts)])
            except MilvusError as exc:
                log.warning("delete forward to %s for %s failed (%s): its segments wait for a re-sync",
                            e, self.vchannel, exc)
                with self.channel._lock:
                    self._failures[e] = self._failures.get(e, 0) + 1
                    self.broken.add(e)

    def _send_deletes(
        self, endpoint: str, deletes: list[tuple[np.ndarray, int]], ready: list[int] | None = None,
        trimmed_to: int = 0,
    ) -> None:
        """Deletes to the worker at ``endpoint``; ``ready``: the segments this catch-up completes,
        from a buffer without the deletes at or below ``trimmed_to``."""
        if not deletes and not ready:
            return
        if endpoint == self.endpoint:
            self.store.apply_deletes(self.vchannel, deletes, ready, trimmed_to)
            return
        self.router.client(endpoint).call(
            "apply_deletes", vchannel=self.vchannel, deletes=[[pks, ts] for pks, ts in deletes],
            ready=sorted(ready or []), trimmed_to=trimmed_to, timeout=FORWARD_TIMEOUT,
        )

    # --- reads --------------------------------------------------------------------------
    def _plan(self, partition_ids: list[int]) -> tuple[set[int], dict[str, list[int]]]:
        ch = self.channel
        parts = ch.partitions if not partition_ids else ch.partitions & set(partition_ids)
        with ch._lock:
            by_node: dict[str, list[int]] = {}
            for sid, e in self.dist.items():
                by_node.setdefault(e, []).append(sid)
            broken = [e for e in by_node if e in self.broken]
        if broken:
            raise MilvusError(
                Code.CHANNEL_NOT_AVAILABLE,
                f"channel not available[channel={self.vchannel}]: worker {broken[0]} missed deletes, "
                "waiting for the coordinator to re-sync it",
            )
        return parts, by_node

    def _fan(self, by_node: dict[str, list[int]], local: Callable[[list[int]], Any],
             method: str, kwargs: dict[str, Any]) -> list[Any]:
        futures: list[tuple[str, Future[Any]]] = []
        for e, sids in by_node.items():
            if e == self.endpoint:
                continue
            args = dict(kwargs, vchannel=self.vchannel, segment_ids=sorted(sids))
            call = functools.partial(self.router.client(e).call, method, **args)
            futures.append((e, self.pool.submit(contextvars.copy_context().run, call)))
        out = [local(by_node.get(self.endpoint, []))]
        for e, fut in futures:
            try:
                out.append(fut.result())
            except MilvusError as exc:
                if exc.code not in _UNAVAILABLE:
                    raise
                raise MilvusError(
                    Code.CHANNEL_NOT_AVAILABLE,
                    f"channel not available[channel={self.vchannel}]: worker {e} failed: {exc.message}",
                ) from exc
        return out

    def _query_ts(self, guarantee_ts: int, read_ts: int, timeout: float) -> int:
        """The timestamp a read sees (MVCC): ``read_ts`` when given (an iterator's snapshot, so rows
        inserted or deleted after it stay as they were), else tsafe; either way once tsafe reached it."""
        tsafe = self.channel.wait_tsafe(max(guarantee_ts, read_ts), timeout)
        return read_ts if read_ts > 0 else tsafe

    def _bm25_stats(self, by_node: dict[str, list[int]], field: str, terms: list[int]) -> CorpusStats:
        """The shard's corpus statistics for ``terms``: every segment of every partition, growing
        ones here and sealed ones wherever they are served (Milvus's per-shard IDF oracle)."""

        def local(sids: list[int]) -> dict[str, Any]:
            segs = self.channel.growing_segments([]) + self.store.pick(self.vchannel, sids, None)
            return shard_stats(segs, field, terms).to_wire()

        total = CorpusStats()
        for wire in self._fan(by_node, local, "bm25_stats_segments", {"field": field, "terms": terms}):
            total.add(CorpusStats.from_wire(wire))
        return total

    def _bm25_queries(self, by_node: dict[str, list[int]], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """A full text search's term counts weighted by the shard's IDFs, with its avgdl (None: the
        shard has no text yet, so nothing can match, as Milvus skips the search)."""
        queries = kwargs["queries"]
        stats = self._bm25_stats(by_node, str(kwargs["field"]), query_term_ids(queries))
        if stats.avgdl <= 0:
            return None
        params = dict(kwargs.get("params") or {}, bm25_avgdl=stats.avgdl)
        return dict(kwargs, queries=idf_weighted(queries, stats), params=params)

    def search(self, guarantee_ts: int, timeout: float, partition_ids: list[int], flt: FilterFn,
               kwargs: dict[str, Any], read_ts: int = 0) -> list[Hits]:
        query_ts = self._query_ts(guarantee_ts, read_ts, timeout)
        parts, by_node = self._plan(partition_ids)
        if str(kwargs.get("metric", "")).upper() == "BM25":
            weighted = self._bm25_queries(by_node, kwargs)
            if weighted is None:
                return []
            kwargs = weighted
        f = flt(kwargs.get("expr", ""), kwargs.get("expr_params"))

        def local(sids: list[int]) -> list[Hits]:
            segs = self.channel.growing_segments(partition_ids) + self.store.pick(self.vchannel, sids, parts)
            return search_segments(segs, query_ts, f, kwargs)

        remote_kwargs = dict(kwargs, partition_ids=sorted(parts), query_ts=query_ts)
        results = self._fan(by_node, local, "search_segments", remote_kwargs)
        hits: list[Hits] = list(results[0])
        hits += [Hits.from_wire(r) for r in results[1:] if not r.get("empty")]
        return hits

    def query(self, guarantee_ts: int, timeout: float, partition_ids: list[int], flt: FilterFn,
              kwargs: dict[str, Any], read_ts: int = 0) -> dict[str, Any]:
        query_ts = self._query_ts(guarantee_ts, read_ts, timeout)
        parts, by_node = self._plan(partition_ids)
        f = flt(kwargs.get("expr", ""), kwargs.get("expr_params"))
        limit, count_only = kwargs.get("limit"), bool(kwargs.get("count_only", False))

        def local(sids: list[int]) -> dict[str, Any]:
            segs = self.channel.growing_segments(partition_ids) + self.store.pick(self.vchannel, sids, parts)
            return query_segments(segs, query_ts, f, list(kwargs.get("output_fields", [])), limit, count_only)

        remote_kwargs = dict(kwargs, partition_ids=sorted(parts), query_ts=query_ts)
        results = self._fan(by_node, local, "query_segments", remote_kwargs)
        return merge_query(results, self.channel.schema.primary.name, limit, count_only)


def _placement(routes: dict[int, str]) -> dict[str, frozenset[int]]:
    """endpoint -> the segment ids routed to it."""
    out: dict[str, set[int]] = {}
    for sid, e in routes.items():
        out.setdefault(e, set()).add(sid)
    return {e: frozenset(sids) for e, sids in out.items()}


def _union(a: dict[str, frozenset[int]], b: dict[str, frozenset[int]]) -> dict[str, frozenset[int]]:
    return {e: a.get(e, frozenset()) | b.get(e, frozenset()) for e in a.keys() | b.keys()}
