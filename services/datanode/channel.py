"""One watched vchannel on a datanode: replay from the checkpoint, buffer, flush, checkpoint.

Correct under at-least-once delivery: a message at or below the last applied position is
dropped, inserts for segments already flushed are skipped, and every file written before a
crash is either recorded by the coordinator or ignored (and later garbage-collected).
Compaction plans queue here and run in the same thread, between messages, so a compaction
never interleaves with a sync and sees every delta log the channel wrote.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import cmp_to_key
from typing import Any

import numpy as np
from pymilvus.grpc_gen.schema_pb2 import DataType

from common import binlog, msgs
from common.binlog.bloom import hash_keys
from common.channels import pchannel_of
from common.errors import Code, MilvusError
from common.msgstream.base import MsgStream
from common.rpc import Caller
from common.schema import Field, Schema
from common.storage.base import ObjectStorage
from services.datanode.buffer import SegmentBuffer
from services.datanode.compactor import CompactionOutput, compact_segments

log = logging.getLogger(__name__)

ROW_ID_FIELD = 0
TIMESTAMP_FIELD = 1


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


class ChannelWriter:
    def __init__(
        self,
        collection_id: int,
        vchannel: str,
        schema: Schema,
        stream: MsgStream,
        storage: ObjectStorage,
        coord: Caller,
        sync_period: float,
        watcher: str = "",
        on_revoked: Callable[[ChannelWriter], None] | None = None,
    ) -> None:
        self.collection_id = collection_id
        self.watcher = watcher  # this node's endpoint as the coordinator gave it the channel
        self.on_revoked = on_revoked  # called (from this writer's thread) when the channel went elsewhere
        self.vchannel = vchannel
        self.schema = schema
        self.stream = stream
        self.storage = storage
        self.coord = coord
        self.sync_period = sync_period
        self.buffers: dict[int, SegmentBuffer] = {}
        self.flushed: set[int] = set()
        self.flushed_partitions: dict[int, int] = {}  # flushed segment -> partition
        self.flushed_stats: dict[int, binlog.SegmentPkStats] = {}
        self.pending_flush: dict[int, int] = {}  # segment id -> seal ts
        self.deletes: list[tuple[str | None, np.ndarray, int]] = []  # (position before, pks, ts)
        self.new_deletes: list[tuple[np.ndarray, int]] = []
        self.compactions: deque[dict[str, Any]] = deque()  # plans from the coordinator, run in the thread
        self._adopted: set[int] = set()  # taken in since the last sync: the kept deletes go to them too
        self.sync_at = 0  # a Flush asked for a sync (deletes included) once the channel reaches this ts
        self.tt = 0
        self.last_id: bytes | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"datanode-{vchannel}", daemon=True)
        self._last_sync = time.monotonic()
        self._last_report = 0.0

    def start(self) -> None:
        info = self.coord.call("get_recovery_info", vchannel=self.vchannel)
        cp = info.get("checkpoint")
        start = base64.b64decode(cp["id"]) if cp and cp.get("id") else None
        self.last_id = start
        self.tt = cp["ts"] if cp else 0
        for seg in info["segments"]:
            if seg["state"] == "Dropped":
                self.flushed.add(seg["id"])  # compacted away: its replayed inserts must not come back
            elif seg["state"] == "Flushed":
                self.flushed.add(seg["id"])
                self.flushed_partitions[seg["id"]] = seg["partition_id"]
                # unreadable stats make the segment take every delete: never lose one
                self.flushed_stats[seg["id"]] = binlog.SegmentPkStats.read(
                    self.storage.get, list(seg.get("statslogs", [])), int(seg.get("num_rows", 0))
                )
            elif seg["state"] == "Sealed":
                self.pending_flush[seg["id"]] = seg["seal_ts"]
        self.reader = self.stream.reader(pchannel_of(self.vchannel), start=start)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the consuming thread to finish (``stop`` waits for it)."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.reader.close()

    def adopt_schema(self, schema: Schema) -> None:
        """Write with ``schema`` from now on (a DDL changed it); an older one is ignored."""
        if schema.version >= self.schema.version:
            self.schema = schema

    def _refresh_schema(self) -> None:
        """An insert carries a field this writer does not know: the push of the new schema was
        missed, so ask the coordinator for it (never drop a column)."""
        found = self.coord.call("describe_collection", db_name="", collection_id=self.collection_id)
        self.adopt_schema(Schema.from_bytes(base64.b64decode(found["schema"])))

    def request_flush(self, segments: list[dict[str, Any]], sync_ts: int = 0) -> None:
        with self._lock:
            for s in segments:
                if s["id"] not in self.flushed:
                    self.pending_flush[s["id"]] = s["seal_ts"]
            if sync_ts:
                self.sync_at = max(self.sync_at, sync_ts)

    # --- consuming ----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                m = self.reader.read(timeout=0.2)
                if m is not None:
                    if self.last_id is not None and self.stream.compare(m.message_id, self.last_id) <= 0:
                        continue  # redelivered
                    self._apply(msgs.decode(m.payload), m.message_id)
                    self.last_id = m.message_id
                self._run_compactions()
                self._maybe_report()
            except MilvusError as exc:
                if exc.code == Code.CHANNEL_NOT_FOUND and self.watcher:
                    # the coordinator gave the channel to another node (this one's session expired):
                    # stop writing; the new owner replays everything not durable from the checkpoint
                    log.warning("datanode channel %s revoked: %s", self.vchannel, exc.message)
                    self._stop.set()
                    self.reader.close()
                    if self.on_revoked is not None:
                        self.on_revoked(self)
                    return
                log.exception("datanode channel %s failed; retrying", self.vchannel)
                time.sleep(0.5)
            except Exception:
                log.exception("datanode channel %s failed; retrying", self.vchannel)
                time.sleep(0.5)

    def _apply(self, msg: msgs.Message, message_id: bytes) -> None:
        if isinstance(msg, msgs.TimeTickMsg):
            self.tt = max(self.tt, msg.timestamp)
            self._on_tick()
            return
        if msg.vchannel != self.vchannel:
            return
        if isinstance(msg, msgs.InsertMsg):
            if msg.segment_id in self.flushed:
                return
            if any(fid not in self.schema.field_ids for fid in msg.columns):
                try:
                    self._refresh_schema()
                except MilvusError as exc:  # flushing tries again, and fails rather than drop the column
                    log.warning("schema refresh for %s failed: %s", self.vchannel, exc.message)
            buf = self.buffers.get(msg.segment_id)
            if buf is None:
                buf = SegmentBuffer(msg.segment_id, msg.partition_id, start_after=_b64(self.last_id))
                self.buffers[msg.segment_id] = buf
            buf.append(msg)
        elif isinstance(msg, msgs.DeleteMsg):
            self.deletes.append((_b64(self.last_id), np.asarray(msg.pks), msg.timestamp))
            self.new_deletes.append((np.asarray(msg.pks), msg.timestamp))

    def _on_tick(self) -> None:
        with self._lock:
            due = [sid for sid, ts in self.pending_flush.items() if ts <= self.tt]
            asked = 0 < self.sync_at <= self.tt
        if due or asked or time.monotonic() - self._last_sync > self.sync_period:
            self._sync(due)
            with self._lock:
                if self.sync_at <= self.tt:
                    self.sync_at = 0

    def _maybe_report(self) -> None:
        now = time.monotonic()
        if now - self._last_report < 1.0:
            return
        self._last_report = now
        rows = {sid: b.rows for sid, b in self.buffers.items()}
        if rows:
            self.coord.call("report_segment_rows", rows=rows)

    # --- writing ------------------------------------------------------------------------
    def _sync(self, flush_ids: list[int]) -> None:
        """Flush the due segments, write delta logs of flushed ones, then advance the checkpoint.

        Nothing in memory changes until the coordinator has recorded the new files, so a
        failure anywhere (storage, coordinator) leaves the buffers intact for the next try.
        """
        # first the floor, then the segments: an import committed in between is among the segments
        floor = int(self.coord.call("delete_floor", vchannel=self.vchannel) or 0)
        self._learn_flushed()
        count = 64 + 8 * len(self.schema.fields) * max(1, len(flush_ids)) + 2 * len(self.flushed_stats)
        first = int(self.coord.call("alloc_ids", count=count))
        ids = iter(range(first, first + count))

        def log_id() -> int:
            return next(ids)

        started = time.perf_counter()
        flushed = [self._flush_segment(sid, log_id) for sid in flush_ids]
        records = [rec for rec, _ in flushed]
        adopted = set(self._adopted)
        others = [sid for sid in self.flushed_stats if sid not in adopted and sid not in flush_ids]
        records += self._write_deltas(log_id, self.new_deletes, others)
        records += self._write_deltas(log_id, [(p, t) for _, p, t in self.deletes], sorted(adopted))
        remaining = {sid: b for sid, b in self.buffers.items() if sid not in flush_ids}
        keep = self._still_needed(remaining, floor)
        # deletes up to tt are durable or, if still needed, replayed from the checkpoint
        checkpoint = self._checkpoint(remaining, keep) | {"synced": self.tt}
        self.coord.call(
            "save_binlogs", vchannel=self.vchannel, segments=records, checkpoint=checkpoint, watcher=self.watcher
        )
        if flush_ids:
            log.info(
                "flushed %d segment(s) of %s, %d rows, in %.0f ms",
                len(flush_ids),
                self.vchannel,
                sum(r.get("num_rows", 0) for r, _ in flushed),
                (time.perf_counter() - started) * 1000,
            )
        for (_, stats), sid in zip(flushed, flush_ids, strict=True):
            buf = self.buffers.pop(sid, None)
            self.flushed.add(sid)
            if stats is not None and buf is not None:
                self.flushed_stats[sid] = binlog.SegmentPkStats([stats])
                self.flushed_partitions[sid] = buf.partition_id
        with self._lock:
            for sid in flush_ids:
                self.pending_flush.pop(sid, None)
        self.new_deletes = []
        self.deletes = keep
        self._adopted -= adopted
        self._last_sync = time.monotonic()

    def _still_needed(
        self, buffers: dict[int, SegmentBuffer], import_floor: int = 0
    ) -> list[tuple[str | None, np.ndarray, int]]:
        """The consumed deletes that may still hit a row not yet written.

        A delete hits rows older than itself. Rows buffered are at least as new as their
        buffer's oldest, rows still to come are newer than the last timetick, and rows of imports
        not committed yet are as new as ``import_floor`` (the coordinator's delete_floor); a delete
        no newer than all of them can hit none (the flushed segments have it in their delta logs).
        Not by position: a delete can come before an insert older than itself (two proxies, or two
        requests on one), and must still reach that insert's rows when their segment flushes.
        """
        floor = min(
            [self.tt, *(b.min_ts for b in buffers.values() if b.min_ts), *([import_floor] if import_floor else [])]
        )
        return [d for d in self.deletes if d[2] > floor]

    def _checkpoint(
        self, buffers: dict[int, SegmentBuffer], deletes: list[tuple[str | None, np.ndarray, int]]
    ) -> dict[str, Any]:
        """Where a consumer must start to miss nothing not yet durable: before the first row of
        every buffered segment and before every delete still needed (``deletes``)."""
        starts = [b.start_after for b in buffers.values()] + [d[0] for d in deletes]
        if not starts:
            return {"id": _b64(self.last_id), "ts": self.tt}
        if any(x is None for x in starts):
            return {"id": None, "ts": 0}  # from the channel's beginning
        earliest = min((base64.b64decode(x) for x in starts if x is not None), key=cmp_to_key(self.stream.compare))
        return {"id": _b64(earliest), "ts": 0}

    def _flush_segment(self, sid: int, log_id: Any) -> tuple[dict[str, Any], binlog.PkStats | None]:
        """Write one segment's binlogs; returns its record for the coordinator and its PK stats."""
        buf = self.buffers.get(sid)
        if buf is None or buf.rows == 0:
            return {"id": sid, "flushed": True, "num_rows": 0, "flush_ts": self.tt}, None
        if any(fid not in self.schema.field_ids for m in buf.chunks for fid in m.columns):
            self._refresh_schema()  # a failure fails this sync; the buffer stays for the next one
        row_ids, ts, cols, valid = buf.columns(self.schema)
        coll, part = self.collection_id, buf.partition_id
        binlogs: dict[int, list[str]] = {}
        sys_fields = [(ROW_ID_FIELD, row_ids), (TIMESTAMP_FIELD, ts)]
        for fid, column in sys_fields:
            key = binlog.insert_log_key(coll, part, sid, fid, log_id())
            f = Field(field_id=fid, name="RowID" if fid == ROW_ID_FIELD else "Timestamp", dtype=DataType.Int64)
            self.storage.put(key, binlog.encode_column(f, column))
            binlogs[fid] = [key]
        for f in self.schema.fields:
            if f.field_id not in cols:
                continue
            key = binlog.insert_log_key(coll, part, sid, f.field_id, log_id())
            self.storage.put(key, binlog.encode_column(f, cols[f.field_id], valid.get(f.field_id)))
            binlogs[f.field_id] = [key]
        pk_field = self.schema.primary
        pks = cols[pk_field.field_id]
        stats = binlog.PkStats.build(pks)
        stats_key = binlog.stats_log_key(coll, part, sid, pk_field.field_id, log_id())
        self.storage.put(stats_key, stats.to_bytes())
        deltalogs = []
        del_pks, del_ts = self._deletes_for(pks, ts, [(p, t) for _, p, t in self.deletes])
        if len(del_pks):
            key = binlog.delta_log_key(coll, part, sid, log_id())
            self.storage.put(key, binlog.encode_delta_log(del_pks, del_ts))
            deltalogs.append(key)
        return {
            "id": sid,
            "flushed": True,
            "num_rows": int(len(row_ids)),
            "flush_ts": self.tt,
            "binlogs": binlogs,
            "statslogs": [stats_key],
            "deltalogs": deltalogs,
            "delta_rows": int(len(del_pks)),
            "start_position": buf.start_after,
            "dml_position": _b64(self.last_id),
        }, stats

    @staticmethod
    def _deletes_for(
        pks: np.ndarray, row_ts: np.ndarray, deletes: list[tuple[np.ndarray, int]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The (pk, ts) delete entries that hit rows of a segment (a delete after the row), each once.

        One pass over sorted keys rather than a scan of the segment per delete message: a delete
        (k, t) hits when the segment's oldest row of k is older than t (20,000 one-key deletes
        against 200k rows: 3.6 s with a scan per message).
        """
        deletes = [(p, t) for p, t in deletes if len(p)]
        if not deletes or not len(pks):
            return np.empty(0, dtype=pks.dtype), np.empty(0, dtype=np.int64)
        keys, ts = binlog.pack_deletes(deletes)
        if (keys.dtype.kind in "iu") != (pks.dtype.kind in "iu"):
            return np.empty(0, dtype=pks.dtype), np.empty(0, dtype=np.int64)  # an int key never hits a string PK
        if pks.dtype == object or keys.dtype == object:
            keys, pks = keys.astype(object), pks.astype(object)
        uniq, inverse = np.unique(pks, return_inverse=True)
        oldest = np.full(len(uniq), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(oldest, inverse.reshape(-1), row_ts)
        at = np.minimum(np.searchsorted(uniq, keys), len(uniq) - 1)
        hit = (uniq[at] == keys) & (oldest[at] < ts)
        if not hit.any():
            return np.empty(0, dtype=pks.dtype), np.empty(0, dtype=np.int64)
        # each (key, ts) once: repeated keys in one message, or two messages at one timestamp
        at, ts = at[hit], ts[hit]
        order = np.lexsort((ts, at))
        at, ts = at[order], ts[order]
        first = np.ones(len(at), dtype=bool)
        first[1:] = (at[1:] != at[:-1]) | (ts[1:] != ts[:-1])
        return uniq[at[first]].astype(pks.dtype), ts[first]

    def _write_deltas(
        self, log_id: Any, deletes: list[tuple[np.ndarray, int]], segment_ids: list[int]
    ) -> list[dict[str, Any]]:
        """Delta logs of ``deletes`` for each of the flushed ``segment_ids`` whose stats may hold their keys.

        Each segment's stats are asked once, about all the keys hashed once (100 segments x 2,000
        one-key deletes: 1.7 s asked per message).
        """
        batch = [(p, t) for p, t in deletes if len(p)]
        if not batch or not segment_ids:
            return []
        keys, ts = binlog.pack_deletes(batch)
        hashes = hash_keys(keys)
        out = []
        for sid in segment_ids:
            maybe = self.flushed_stats[sid].may_contain(keys, hashes)
            if maybe.any():
                part = self.flushed_partitions.get(sid, 0)
                key = binlog.delta_log_key(self.collection_id, part, sid, log_id())
                self.storage.put(key, binlog.encode_delta_log(keys[maybe], ts[maybe]))
                out.append({"id": sid, "deltalogs": [key], "delta_rows": int(maybe.sum())})
        return out

    # --- segments written elsewhere (bulk import) ---------------------------------------
    def _adopt(self, seg: dict[str, Any]) -> None:
        """Route deletes to a flushed segment this writer did not write (a bulk import's); this sync
        also gives it the kept deletes (those newer than an uncommitted import's rows are kept for it)."""
        sid = int(seg["id"])
        if sid in self.flushed_stats or sid in self.flushed or sid in self.buffers:
            return
        self.flushed.add(sid)
        if int(seg.get("num_rows", 0)) == 0:
            return
        self.flushed_stats[sid] = binlog.SegmentPkStats.read(
            self.storage.get, list(seg.get("statslogs", [])), int(seg.get("num_rows", 0))
        )
        self.flushed_partitions[sid] = int(seg["partition_id"])
        self._adopted.add(sid)

    def _learn_flushed(self) -> None:
        """Take in the channel's Flushed segments this writer does not know (a committed import's), at
        the start of every sync: delta logs are written only in a sync, so none misses a delete."""
        ids = self.coord.call("flushed_segment_ids", vchannel=self.vchannel)
        unknown = [int(i) for i in ids if int(i) not in self.flushed_stats and int(i) not in self.flushed]
        if unknown:
            for info in self.coord.call("segment_infos", segment_ids=unknown):
                self._adopt(info)

    # --- compaction ---------------------------------------------------------------------
    def request_compaction(self, plan: dict[str, Any]) -> None:
        with self._lock:
            if all(p["plan_id"] != plan["plan_id"] for p in self.compactions):
                self.compactions.append(plan)

    def _run_compactions(self) -> None:
        while True:
            with self._lock:
                if not self.compactions:
                    return
                plan = self.compactions.popleft()
            try:
                self._compact(plan)
            except Exception as exc:
                log.exception("compaction plan %s on %s failed", plan["plan_id"], self.vchannel)
                try:
                    self.coord.call("fail_compaction", plan_id=plan["plan_id"], reason=f"{type(exc).__name__}: {exc}")
                except MilvusError:
                    log.warning("could not report the failure of compaction plan %s", plan["plan_id"])

    def _compact(self, plan: dict[str, Any]) -> None:
        """Run one plan, commit it at the coordinator, then route deletes to the new segment."""
        started = time.monotonic()
        sources = [int(s) for s in plan["segment_ids"]]
        infos = self.coord.call("segment_infos", segment_ids=sources)
        if len(infos) != len(sources) or any(i["state"] != "Flushed" or i["vchannel"] != self.vchannel for i in infos):
            raise RuntimeError(f"segments {sources} are no longer flushed segments of {self.vchannel}")
        # the plan carries the collection's current schema (fields added since the inputs were
        # written read as default/null) and the TTL/truncate cut-off under which rows are dropped
        schema = Schema.from_bytes(base64.b64decode(plan["schema"])) if plan.get("schema") else self.schema
        count = len(schema.fields) + 4
        first = int(self.coord.call("alloc_ids", count=count))
        ids = iter(range(first, first + count))
        new_id = next(ids)
        out = compact_segments(
            self.storage,
            schema,
            self.collection_id,
            plan["partition_id"],
            infos,
            new_id,
            lambda: next(ids),
            expire_ts=int(plan.get("expire_ts", 0)),
        )
        committed: bool | None = True
        try:
            self.coord.call(
                "complete_compaction",
                plan_id=plan["plan_id"],
                vchannel=self.vchannel,
                segment=out.record(),
                inputs=out.deltalogs_read,
            )
        except MilvusError as exc:
            committed = self._committed(new_id)
            if committed is False:
                for key in out.written:
                    self.storage.delete(key)
                log.info("compaction plan %s refused: %s", plan["plan_id"], exc.message)
                return
        self._swap_stats(sources, out, plan["partition_id"], inputs_gone=committed is True)
        log.info(
            "compaction plan %s: %d segments, %d -> %d rows in %.2fs",
            plan["plan_id"],
            len(sources),
            out.input_rows,
            out.num_rows,
            time.monotonic() - started,
        )

    def _committed(self, new_id: int) -> bool | None:
        """Whether the coordinator recorded segment ``new_id`` (None: it cannot be asked now)."""
        try:
            return bool(self.coord.call("segment_infos", segment_ids=[new_id]))
        except MilvusError:
            return None

    def _swap_stats(self, sources: list[int], out: CompactionOutput, partition_id: int, inputs_gone: bool) -> None:
        """Deletes from now on go to the new segment. When the commit's outcome is unknown both
        keep receiving them: the coordinator ignores delta logs of unknown or dropped segments."""
        if inputs_gone:
            for sid in sources:
                self.flushed_stats.pop(sid, None)
                self.flushed_partitions.pop(sid, None)
        self.flushed.add(out.segment_id)
        if out.stats is not None:
            self.flushed_stats[out.segment_id] = binlog.SegmentPkStats([out.stats])
            self.flushed_partitions[out.segment_id] = partition_id
            # and the kept deletes at the next sync: an input this writer had not taken in yet (an
            # import committed since the last sync) never got them, so the result lacks them too
            self._adopted.add(out.segment_id)
