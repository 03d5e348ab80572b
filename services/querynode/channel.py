"""One served vchannel: consume it from the checkpoint, keep growing segments and tsafe.

Inserts of segments already served sealed are skipped, every delete is applied to growing and
sealed segments alike, and timeticks advance tsafe — the time up to which a read on this
channel is complete. Redelivered messages (at or below the last applied id) are dropped.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from typing import Any

import numpy as np

from common import msgs
from common.channels import pchannel_of
from common.errors import Code, MilvusError
from common.msgstream.base import MsgStream
from common.schema import Schema
from services.querynode.columns import ColumnStore
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
        self.sealed: dict[int, Segment] = {}
        self.excluded = set(flushed_segment_ids)
        self.deletes: list[tuple[np.ndarray, int]] = []
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
            return
        if msg.vchannel != self.vchannel:
            return
        if isinstance(msg, msgs.InsertMsg):
            self._insert(msg)
        elif isinstance(msg, msgs.DeleteMsg):
            pks = np.asarray(msg.pks)
            with self._lock:
                self.deletes.append((pks, msg.timestamp))
                for seg in list(self.growing.values()) + list(self.sealed.values()):
                    seg.apply_delete(pks, msg.timestamp)

    def _insert(self, msg: msgs.InsertMsg) -> None:
        with self._lock:
            if msg.segment_id in self.excluded or msg.segment_id in self.sealed:
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
            for pks, ts in self.deletes:
                if ts > msg.timestamp:
                    seg.apply_delete(pks, ts)

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

    def add_sealed(self, seg: Segment, replaces: list[int] | tuple[int, ...] = ()) -> None:
        """Serve ``seg`` sealed, replacing in one step its growing copy (the handoff) and the
        sealed segments a compaction merged into it, so no read sees their rows twice or never."""
        with self._lock:
            for pks, ts in self.deletes:
                seg.apply_delete(pks, ts)
            self.sealed[seg.segment_id] = seg
            self.growing.pop(seg.segment_id, None)
            self.excluded.add(seg.segment_id)
            for sid in replaces:
                self.sealed.pop(sid, None)
                self.growing.pop(sid, None)
                self.excluded.add(sid)

    def remove_sealed(self, segment_id: int) -> None:
        with self._lock:
            self.sealed.pop(segment_id, None)

    def segments(self, partition_ids: list[int] | None) -> list[Segment]:
        wanted = self.partitions if not partition_ids else self.partitions & set(partition_ids)
        with self._lock:
            segs = list(self.sealed.values()) + list(self.growing.values())
        return [s for s in segs if s.partition_id in wanted]
