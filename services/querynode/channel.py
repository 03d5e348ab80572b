"""One served vchannel: consume it from the checkpoint, keep growing segments and tsafe.

Inserts of segments already served sealed (anywhere in the replica) are skipped, every delete is
applied to the growing segments and handed to ``on_delete`` (the shard delegator forwards it to
the workers holding the sealed segments) before the next message, and timeticks advance tsafe —
the time up to which a read on this channel is complete. Redelivered messages (at or below the
last applied id) are dropped.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from common import msgs
from common.channels import pchannel_of
from common.collection_props import truncated_before
from common.errors import Code, MilvusError
from common.msgstream.base import MsgStream
from common.schema import Schema
from services.querynode.columns import ColumnStore
from services.querynode.delete_log import DeleteLog
from services.querynode.segment import Segment

log = logging.getLogger(__name__)


class ChannelServer:
    def __init__(
        self,
        collection_id: int,
        vchannel: str,
        schema: Schema,
        stream: MsgStream,
        checkpoint: dict[str, Any] | None,
        flushed_segment_ids: list[int],
        partition_ids: list[int],
    ) -> None:
        self.collection_id = collection_id
        self.vchannel = vchannel
        self.schema = schema
        self.stream = stream
        self.partitions = set(partition_ids)
        self.growing: dict[int, Segment] = {}
        self.excluded = set(flushed_segment_ids)  # served sealed (or flushed before the watch): no growing copy
        # where the delegator forwards deletes (endpoint -> the sealed segments it serves there);
        # changed under _lock so no delete is missed
        self.forward_to: dict[str, frozenset[int]] = {}
        self.on_delete: Callable[[np.ndarray, int, dict[str, frozenset[int]]], None] | None = None
        self.deletes = DeleteLog()  # every delete consumed (workers catch up from it)
        # the deletes newer than tsafe: only these can postdate an insert still to come (a message
        # after timetick T has a timestamp above T), so inserts check these, not all of the above
        self._recent: list[tuple[np.ndarray, int]] = []
        self.tsafe = 0
        self._cond = threading.Condition()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._names = {f.field_id: f.name for f in schema.fields}
        start = None
        if checkpoint and checkpoint.get("id"):
            start = base64.b64decode(checkpoint["id"])
        self._last_id: bytes | None = start
        self._reader = stream.reader(pchannel_of(vchannel), start=start)
        self._thread = threading.Thread(target=self._run, name=f"qn-{vchannel}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._reader.close()
        with self._cond:
            self._cond.notify_all()

    # --- consuming ----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                m = self._reader.read(timeout=0.2)
                if m is None:
                    continue
                if self._last_id is not None and self.stream.compare(m.message_id, self._last_id) <= 0:
                    continue
                self._apply(msgs.decode(m.payload))
                self._last_id = m.message_id
            except Exception:
                log.exception("querynode channel %s failed; retrying", self.vchannel)
                time.sleep(0.5)

    def _apply(self, msg: msgs.Message) -> None:
        if isinstance(msg, msgs.TimeTickMsg):
            with self._cond:
                if msg.timestamp > self.tsafe:
                    self.tsafe = msg.timestamp
                    self._cond.notify_all()
            if self._recent:
                with self._lock:
                    self._recent = [d for d in self._recent if d[1] > msg.timestamp]
            return
        if msg.vchannel != self.vchannel:
            return
        if isinstance(msg, msgs.InsertMsg):
            self._insert(msg)
        elif isinstance(msg, msgs.DeleteMsg):
            pks = np.asarray(msg.pks)
            with self._lock:
                self.deletes.append(pks, msg.timestamp)
                self._recent.append((pks, msg.timestamp))
                for seg in list(self.growing.values()):
                    seg.apply_delete(pks, msg.timestamp)
                targets = self.forward_to
            if self.on_delete is not None:  # before tsafe passes this delete: sealed copies see it too
                self.on_delete(pks, msg.timestamp, targets)

    def _insert(self, msg: msgs.InsertMsg) -> None:
        with self._lock:
            if msg.segment_id in self.excluded or msg.timestamp < truncated_before(self.schema):
                return
            seg = self.growing.get(msg.segment_id)
            if seg is None:
                seg = Segment(msg.segment_id, msg.partition_id, self.vchannel, self.schema, False, ColumnStore())
                self.growing[msg.segment_id] = seg
            cols = {self._names[fid]: col for fid, col in msg.columns.items() if fid in self._names}
            for fid, valid in msg.valid.items():
                if fid in self._names:
                    cols[f"{self._names[fid]}.valid"] = valid
            seg.append(cols, msg.timestamp, msg.num_rows)
            # a delete may have been ordered before this insert yet be newer (several proxies)
            for pks, ts in self._recent:
                if ts > msg.timestamp:
                    seg.apply_delete(pks, ts)

    def update_schema(self, schema: Schema) -> None:
        """Adopt a changed schema (a field added, properties changed) between two messages;
        growing segments a truncate cut off entirely are dropped (their rows are gone for good)."""
        with self._lock:
            self.schema = schema
            self._names = {f.field_id: f.name for f in schema.fields}
            cut = truncated_before(schema)
            for sid, seg in list(self.growing.items()):
                if seg.max_ts < cut:
                    self.growing.pop(sid)
                    self.excluded.add(sid)
                else:
                    seg.adopt_schema(schema)

    # --- serving ------------------------------------------------------------------------
    def wait_tsafe(self, ts: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.tsafe < ts:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    raise MilvusError(
                        Code.TIMEOUT,
                        f"channel {self.vchannel} did not reach the guarantee timestamp in {timeout:.1f}s "
                        f"(tsafe lag {(ts - self.tsafe) >> 18} ms)",
                    )
                self._cond.wait(left)
            return self.tsafe

    def handoff(self, segment_ids: list[int]) -> None:
        """Stop serving these segments as growing: their sealed copies serve them from now on."""
        with self._lock:
            for sid in segment_ids:
                self.growing.pop(sid, None)
                self.excluded.add(sid)

    def growing_segments(self, partition_ids: list[int] | None) -> list[Segment]:
        wanted = self.partitions if not partition_ids else self.partitions & set(partition_ids)
        with self._lock:
            segs = list(self.growing.values())
        return [s for s in segs if s.partition_id in wanted]
