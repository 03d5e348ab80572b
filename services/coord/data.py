"""Data coordination: segment allocation and sealing, flush, binlog bookkeeping, checkpoints.

Proxies ask for segment ids before they produce inserts; datanodes report the binlogs they
wrote and the channel positions they made durable. A segment moves Growing -> Sealed ->
Flushed; the channel checkpoint is where a consumer must start to miss nothing that is not
already in flushed binlogs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from typing import Any

from pymilvus.grpc_gen.schema_pb2 import DataType

from common import tso
from common.errors import Code, MilvusError
from common.rpc import rpc
from common.schema import Schema
from services.coord.context import CoordContext
from services.coord.delta_watermark import channel_sync
from services.coord.meta import DROPPED, FLUSHED, GROWING, SEALED, CollectionInfo, SegmentInfo

log = logging.getLogger(__name__)

_FIXED_BYTES = {
    DataType.Bool: 1,
    DataType.Int8: 1,
    DataType.Int16: 2,
    DataType.Int32: 4,
    DataType.Int64: 8,
    DataType.Timestamptz: 8,
    DataType.Float: 4,
    DataType.Double: 8,
}


def estimate_row_bytes(schema: Schema) -> int:
    """A row's size for segment sizing, as Milvus estimates it (varchar at its max length)."""
    total = 16  # row id + timestamp
    for f in schema.fields:
        if f.dtype == DataType.FloatVector:
            total += 4 * f.dim
        elif f.dtype in (DataType.Float16Vector, DataType.BFloat16Vector):
            total += 2 * f.dim
        elif f.dtype == DataType.BinaryVector:
            total += f.dim // 8
        elif f.dtype == DataType.Int8Vector:
            total += f.dim
        elif f.dtype in _FIXED_BYTES:
            total += _FIXED_BYTES[f.dtype]
        elif f.dtype == DataType.VarChar:
            total += max(16, f.max_length)
        else:
            total += 64
    return total


class DataCoord:
    def __init__(self, ctx: CoordContext) -> None:
        self.ctx = ctx
        self.cat = ctx.catalog
        # vchannel -> datanode endpoint currently watching it (rebuilt from the nodes on start)
        self.channel_watchers: dict[str, str] = {}
        self._channels_lock = threading.RLock()
        self._flush_commands: dict[int, float] = {}  # segment id -> last time a datanode was told
        self._assigned_in_memory: dict[int, int] = {}
        self._flush_channels: dict[int, list[str]] = {}  # flush ts -> vchannels that must sync to it

    # --- allocation ---------------------------------------------------------------------
    def max_rows(self, coll: CollectionInfo) -> int:
        """The most rows a segment of ``coll`` holds (by row count and by estimated size)."""
        return self._max_rows(coll)

    def _max_rows(self, coll: CollectionInfo) -> int:
        by_size = (self.ctx.cfg.data.segment_max_mb * 1024 * 1024) // estimate_row_bytes(coll.parsed_schema)
        return int(max(1, min(self.ctx.cfg.data.segment_max_rows, by_size)))

    @rpc
    def assign_segments(
        self, collection_id: int, partition_id: int, vchannel: str, count: int, ts: int
    ) -> list[list[int]]:
        """Split ``count`` rows into [segment id, rows] pairs on growing segments of a channel."""
        with self.cat.lock:
            coll = self.cat.collections.get(collection_id)
            if coll is None:
                raise MilvusError(Code.COLLECTION_NOT_FOUND, f"collection not found[collection={collection_id}]")
            if vchannel not in coll.vchannels:
                raise MilvusError(Code.CHANNEL_NOT_FOUND, f"channel not found[channel={vchannel}]")
            out: list[list[int]] = []
            remaining = count
            while remaining > 0:
                seg = self._growing_segment(coll, partition_id, vchannel, ts)
                free = seg.max_rows - seg.assigned_rows
                take = min(free, remaining)
                seg.assigned_rows += take
                seg.last_assign_ts = ts
                out.append([seg.id, take])
                remaining -= take
                if seg.assigned_rows >= seg.max_rows:
                    self._seal([seg])
            return out

    def _growing_segment(self, coll: CollectionInfo, partition_id: int, vchannel: str, ts: int) -> SegmentInfo:
        for s in self.cat.segments.values():
            if (
                s.state == GROWING
                and s.collection_id == coll.id
                and s.partition_id == partition_id
                and s.vchannel == vchannel
                and s.assigned_rows < s.max_rows
            ):
                return s
        seg = SegmentInfo(
            id=self.ctx.ids.alloc(),
            collection_id=coll.id,
            partition_id=partition_id,
            vchannel=vchannel,
            max_rows=self._max_rows(coll),
            created_ts=ts,
            last_assign_ts=ts,
        )
        self.cat.save_segments([seg])
        return seg

    def _seal(self, segs: list[SegmentInfo]) -> int:
        """Seal segments at a fresh timestamp: every insert assigned to them has a smaller one."""
        seal_ts = self.ctx.tso.alloc()
        for s in segs:
            s.state = SEALED
            s.seal_ts = seal_ts
        if segs:
            self.cat.save_segments(segs)
        return seal_ts

    @rpc
    def flush(self, collection_id: int) -> dict[str, Any]:
        """Seal every growing segment of the collection; datanodes flush them at ``flush_ts``."""
        with self.cat.lock:
            coll = self.cat.collections.get(collection_id)
            if coll is None:
                raise MilvusError(Code.COLLECTION_NOT_FOUND, f"collection not found[collection={collection_id}]")
            growing = [s for s in self.cat.segments.values() if s.collection_id == coll.id and s.state == GROWING]
            flush_ts = self._seal(growing)
            sealed = [s.id for s in self.cat.segments.values() if s.collection_id == coll.id and s.state == SEALED]
            flushed = [s.id for s in self.cat.segments.values() if s.collection_id == coll.id and s.state == FLUSHED]
        # every channel syncs once it reaches flush_ts, so buffered deletes become delta logs too (as Milvus)
        with self.cat.lock:
            self._flush_channels[flush_ts] = list(coll.vchannels)
            while len(self._flush_channels) > 1024:
                self._flush_channels.pop(next(iter(self._flush_channels)))
        self.dispatch_flushes(force=True, sync=(coll.vchannels, flush_ts))
        return {
            "segment_ids": sealed,
            "flushed_segment_ids": flushed,
            "flush_ts": flush_ts,
            "vchannels": coll.vchannels,
        }

    @rpc
    def get_flush_state(self, segment_ids: list[int], collection_id: int = 0, flush_ts: int = 0) -> bool:
        """Flushed: the segments are, and (given the flush's ts) its channels synced past it, deletes included."""
        with self.cat.lock:
            for sid in segment_ids:
                s = self.cat.segments.get(sid)
                if s is not None and s.state not in (FLUSHED, DROPPED):
                    return False
            for vchannel in self._flush_channels.get(flush_ts, []) if flush_ts else []:
                cp = self.cat.checkpoints.get(vchannel)
                if vchannel in self.channel_watchers and (cp is None or json.loads(cp).get("synced", 0) < flush_ts):
                    return False
            return True

    def seal_by_policy(self) -> None:
        """Seal segments that have been idle or alive too long (Milvus's seal policies)."""
        cfg = self.ctx.cfg.data
        now = tso.now_ms()
        with self.cat.lock:
            due = [
                s
                for s in self.cat.segments.values()
                if s.state == GROWING
                and s.assigned_rows > 0
                and (
                    now - tso.physical_ms(s.last_assign_ts) > cfg.segment_max_idle_seconds * 1000
                    or now - tso.physical_ms(s.created_ts) > cfg.segment_max_lifetime_seconds * 1000
                )
            ]
            if due:
                self._seal(due)

    def dispatch_flushes(self, force: bool = False, sync: tuple[list[str], int] | None = None) -> None:
        """Tell the datanode of each sealed segment's channel to flush it (repeated until done).

        ``sync`` = (vchannels, ts): those channels also write everything they buffer (deletes
        included) once their time reaches ts, even with no segment to flush.
        """
        now = time.monotonic()
        with self.cat.lock:
            todo: dict[str, list[SegmentInfo]] = {v: [] for v in (sync[0] if sync else [])}
            for s in self.cat.segments.values():
                if s.state != SEALED:
                    continue
                if not force and now - self._flush_commands.get(s.id, 0.0) < 3.0:
                    continue
                todo.setdefault(s.vchannel, []).append(s)
        for vchannel, segs in todo.items():
            endpoint = self.channel_watchers.get(vchannel)
            if endpoint is None:
                continue
            try:
                self.ctx.router.client(endpoint).call(
                    "flush_segments",
                    vchannel=vchannel,
                    segments=[{"id": s.id, "seal_ts": s.seal_ts} for s in segs],
                    sync_ts=sync[1] if sync and vchannel in sync[0] else 0,
                )
                for s in segs:
                    self._flush_commands[s.id] = now
            except MilvusError as exc:
                log.warning("flush command to %s failed: %s", endpoint, exc)

    # --- datanode reports ---------------------------------------------------------------
    @rpc
    def report_segment_rows(self, rows: dict[int, int]) -> None:
        with self.cat.lock:
            for sid, n in rows.items():
                s = self.cat.segments.get(int(sid))
                if s is not None and s.state in (GROWING, SEALED):
                    s.num_rows = n

    @rpc
    def save_binlogs(
        self,
        vchannel: str,
        segments: list[dict[str, Any]],
        checkpoint: dict[str, Any] | None = None,
        watcher: str = "",
    ) -> None:
        """Record what a datanode wrote, and (atomically) how far its channel is durable.

        ``watcher``: the datanode endpoint the channel was given to. One that no longer holds the
        channel (its session expired and the channel went to another node while it was paused) is
        refused, as Milvus's SaveBinlogPaths refuses a node the channel does not match: two writers
        would write the same rows twice and move the checkpoint back and forth.
        """
        owner = self.channel_watchers.get(vchannel)
        if watcher and owner is not None and owner != watcher:
            raise MilvusError(
                Code.CHANNEL_NOT_FOUND,
                f"channel not found[channel={vchannel}]: watched by {owner}, not by {watcher}",
            )
        with self.cat.lock:
            changed = []
            for rec in segments:
                s = self.cat.segments.get(rec["id"])
                if s is None or s.state == DROPPED:
                    continue
                if rec.get("flushed") and s.state == FLUSHED:
                    continue  # a repeated flush (the reply to the first was lost): its rows are in already
                for fid, keys in rec.get("binlogs", {}).items():
                    s.binlogs.setdefault(int(fid), []).extend(keys)
                s.statslogs.extend(rec.get("statslogs", []))
                s.deltalogs.extend(rec.get("deltalogs", []))
                s.deleted_rows += int(rec.get("delta_rows", 0))
                if rec.get("flushed"):
                    s.state = FLUSHED
                    s.num_rows = rec["num_rows"]
                    s.flush_ts = rec.get("flush_ts", 0)
                    s.dml_position = rec.get("dml_position")
                if rec.get("start_position") and not s.start_position:
                    s.start_position = rec["start_position"]
                changed.append(s)
            if checkpoint:
                # a datanode restarted from the checkpoint replays older timeticks, but what was
                # durable stays durable: "synced" never goes back (GetFlushState stays true);
                # "seq" counts the saves (services/coord/delta_watermark.py)
                before = channel_sync(self.cat.checkpoints.get(vchannel))
                checkpoint = checkpoint | {
                    "synced": max(int(checkpoint.get("synced", 0)), before.synced), "seq": before.seq + 1
                }
            cp = (vchannel, json.dumps(checkpoint)) if checkpoint else None
            self.cat.save_segments(changed, cp)

    @rpc
    def get_recovery_info(self, vchannel: str) -> dict[str, Any]:
        """Where a new watcher of ``vchannel`` starts, and the segments it must know of.

        Dropped segments (compaction inputs) are listed too: their inserts may still lie after
        the checkpoint, and a watcher must skip them rather than buffer them again.
        """
        with self.cat.lock:
            cp = self.cat.checkpoints.get(vchannel)
            segs = [s.model_dump() for s in self.cat.segments.values() if s.vchannel == vchannel]
        return {"checkpoint": json.loads(cp) if cp else None, "segments": segs}

    @rpc
    def flushed_segment_ids(self, vchannel: str) -> list[int]:
        """The Flushed segments of ``vchannel`` now (a datanode takes in those it did not write: imports)."""
        with self.cat.lock:
            return sorted(s.id for s in self.cat.segments.values() if s.vchannel == vchannel and s.state == FLUSHED)

    @rpc
    def segment_infos(self, segment_ids: list[int]) -> list[dict[str, Any]]:
        """The current records of these segments (unknown ids are left out)."""
        with self.cat.lock:
            return [self.cat.segments[int(s)].model_dump() for s in segment_ids if int(s) in self.cat.segments]

    @rpc
    def get_statistics(self, collection_id: int, partition_ids: list[int] | None = None) -> int:
        with self.cat.lock:
            return sum(
                s.num_rows
                for s in self.cat.segments.values()
                if s.collection_id == collection_id
                and s.state != DROPPED
                and (not partition_ids or s.partition_id in partition_ids)
            )

    @rpc
    def list_segments(self, collection_id: int) -> list[dict[str, Any]]:
        with self.cat.lock:
            return [s.model_dump() for s in self.cat.segments.values() if s.collection_id == collection_id]

    # --- channel placement --------------------------------------------------------------
    def reconcile_channels(self) -> None:
        """Make sure every collection's vchannel is watched by exactly one live datanode.

        The coordinator's loop and DDL handlers (drop, create) both run it: one pass at a time."""
        with self._channels_lock:
            self._reconcile_channels()

    def _reconcile_channels(self) -> None:
        nodes = {n.endpoint for n in self.ctx.nodes("datanode")}
        if not nodes:
            return
        self.channel_watchers = {v: e for v, e in self.channel_watchers.items() if e in nodes}
        if len(self.channel_watchers) == 0:
            for endpoint in nodes:  # learn what live nodes already watch (after a coord restart)
                try:
                    for v in self.ctx.router.client(endpoint).call("list_channels"):
                        self.channel_watchers[v] = endpoint
                except MilvusError:
                    continue
        with self.cat.lock:
            wanted = {v: c for c in self.cat.collections.values() for v in c.vchannels}
        for vchannel, coll in wanted.items():
            if vchannel in self.channel_watchers:
                continue
            load = {e: 0 for e in nodes}
            for e in self.channel_watchers.values():
                load[e] = load.get(e, 0) + 1
            endpoint = min(sorted(load), key=lambda e: load[e])
            try:
                self.ctx.router.client(endpoint).call(
                    "watch_channel", collection_id=coll.id, vchannel=vchannel, schema=coll.schema_b64, watcher=endpoint
                )
                self.channel_watchers[vchannel] = endpoint
            except MilvusError as exc:
                log.warning("watch %s on %s failed: %s", vchannel, endpoint, exc)
        for vchannel in [v for v in self.channel_watchers if v not in wanted]:
            endpoint = self.channel_watchers.pop(vchannel)
            with contextlib.suppress(MilvusError):
                self.ctx.router.client(endpoint).call("release_channel", vchannel=vchannel)
