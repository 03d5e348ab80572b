"""The querynode's RPC face: channel and segment placement from the coordinator, reads from proxies."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from common.errors import Code, MilvusError
from common.expr import Filter, compile_filter
from common.index import metric_ascending
from common.msgstream.base import MsgStream
from common.reduce import Hits, merge_hits, merge_rows
from common.rpc import rpc
from common.schema import Schema
from common.storage.base import ObjectStorage
from services.querynode.channel import ChannelServer
from services.querynode.loader import estimate_bytes, load_segment
from services.querynode.segment import SearchSpec

log = logging.getLogger(__name__)


class QueryNode:
    def __init__(self, stream: MsgStream, storage: ObjectStorage, memory_budget_mb: int) -> None:
        self.stream = stream
        self.storage = storage
        self.budget = memory_budget_mb * 1024 * 1024
        self.channels: dict[str, ChannelServer] = {}
        self._lock = threading.RLock()
        self._filters: OrderedDict[tuple[int, str, str], Filter] = OrderedDict()

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
            self.channels[vchannel] = ChannelServer(
                collection_id,
                vchannel,
                Schema.from_bytes(base64.b64decode(schema)),
                self.stream,
                checkpoint,
                flushed_segment_ids,
                partition_ids,
            )

    @rpc
    def release_channel(self, vchannel: str) -> None:
        with self._lock:
            ch = self.channels.pop(vchannel, None)
        if ch is not None:
            ch.stop()

    @rpc
    def set_partitions(self, vchannel: str, partition_ids: list[int]) -> None:
        ch = self._channel(vchannel)
        ch.partitions = set(partition_ids)

    @rpc
    def load_segment(
        self, segment: dict[str, Any], version: str, indexes: list[dict[str, Any]], replaces: list[int] | None = None
    ) -> None:
        """Load a sealed segment; it atomically replaces ``replaces`` (its compaction inputs) here."""
        ch = self._channel(segment["vchannel"])
        need = estimate_bytes(self.storage, segment, indexes)
        used = self.memory_used()
        if used + need > self.budget:
            raise MilvusError(
                Code.MEMORY_LIMIT_EXCEEDED,
                f"load segment {segment['id']} needs {need >> 20} MB but the query node has "
                f"{(self.budget - used) >> 20} MB of its {self.budget >> 20} MB budget left",
            )
        seg = load_segment(self.storage, ch.schema, segment, version, indexes)
        ch.add_sealed(seg, [int(s) for s in replaces or ()])

    @rpc
    def release_segments(self, segment_ids: list[int]) -> None:
        with self._lock:
            for ch in self.channels.values():
                for sid in segment_ids:
                    ch.remove_sealed(sid)

    @rpc
    def get_distribution(self) -> dict[str, Any]:
        with self._lock:
            channels = {
                v: {"collection_id": ch.collection_id, "tsafe": ch.tsafe, "partitions": sorted(ch.partitions)}
                for v, ch in self.channels.items()
            }
            segments = {
                str(sid): {"version": seg.version, "vchannel": v, "rows": seg.num_rows}
                for v, ch in self.channels.items()
                for sid, seg in list(ch.sealed.items())
            }
        return {"channels": channels, "segments": segments, "memory": self.memory_used()}

    def memory_used(self) -> int:
        with self._lock:
            return sum(s.memory_bytes() for ch in self.channels.values() for s in list(ch.sealed.values()))

    def _channel(self, vchannel: str) -> ChannelServer:
        ch = self.channels.get(vchannel)
        if ch is None:
            raise MilvusError(Code.CHANNEL_NOT_AVAILABLE, f"channel not available[channel={vchannel}] on this node")
        return ch

    def _filter(self, ch: ChannelServer, expr: str, params: dict[str, Any] | None) -> Filter | None:
        if not expr.strip():
            return None
        key = (ch.collection_id, expr, json.dumps(params, sort_keys=True, default=str) if params else "")
        with self._lock:
            flt = self._filters.get(key)
            if flt is not None:
                self._filters.move_to_end(key)
                return flt
        flt = compile_filter(expr, ch.schema, params)
        with self._lock:
            self._filters[key] = flt
            if len(self._filters) > 256:
                self._filters.popitem(last=False)
        return flt

    # --- reads (from proxies) -----------------------------------------------------------
    @rpc
    def search(
        self,
        vchannels: list[str],
        partition_ids: list[int],
        field: str,
        dtype: int,
        metric: str,
        queries: np.ndarray,
        k: int,
        params: dict[str, Any],
        expr: str,
        expr_params: dict[str, Any] | None,
        output_fields: list[str],
        guarantee_ts: int,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        parts: list[Hits] = []
        ascending = metric_ascending(metric)
        for v in vchannels:
            ch = self._channel(v)
            query_ts = ch.wait_tsafe(guarantee_ts, timeout)
            spec = SearchSpec(
                field, dtype, metric, queries, k, params, self._filter(ch, expr, expr_params), output_fields
            )
            for seg in ch.segments(partition_ids):
                hits, offsets = seg.search(spec, query_ts)
                if output_fields and hits.filled.any():
                    hits.fields = seg.take(offsets.reshape(-1), output_fields)
                elif output_fields:
                    continue
                parts.append(hits)
        if not parts:
            return {"empty": True}
        return merge_hits(parts, k, ascending).to_wire()

    @rpc
    def query(
        self,
        vchannels: list[str],
        partition_ids: list[int],
        expr: str,
        expr_params: dict[str, Any] | None,
        output_fields: list[str],
        limit: int | None,
        guarantee_ts: int,
        count_only: bool = False,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        rows: list[dict[str, np.ndarray]] = []
        count = 0
        pk_name = ""
        for v in vchannels:
            ch = self._channel(v)
            pk_name = ch.schema.primary.name
            query_ts = ch.wait_tsafe(guarantee_ts, timeout)
            flt = self._filter(ch, expr, expr_params)
            for seg in ch.segments(partition_ids):
                if count_only:
                    count += seg.count(flt, query_ts)
                else:
                    rows.append(seg.retrieve(flt, query_ts, output_fields, limit))
        if count_only:
            return {"count": count}
        return {"rows": merge_rows(rows, pk_name, limit) if pk_name else {}}

    def stop(self) -> None:
        with self._lock:
            chans = list(self.channels.values())
            self.channels.clear()
        for ch in chans:
            ch.stop()
