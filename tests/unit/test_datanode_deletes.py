"""A delete consumed before an insert older than itself (services/datanode/channel.py).

With two proxies, or two requests on one, a delete of key k stamped 105 can reach the channel
before an insert of k stamped 100. Its row must come out deleted everywhere: in the segment the
datanode flushes, and for a consumer (a datanode or a querynode shard leader) that starts again
from the channel checkpoint saved in between. The datanode used to forget such a delete at the
next sync (it kept deletes by position, not by timestamp) and to put the checkpoint after it.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import pytest

from common import binlog, msgs
from common.channels import pchannel_of
from common.msgstream.memory import MemoryStream
from common.schema import DataType, Field, Schema
from common.storage.memory import MemoryStorage
from services.datanode.channel import ChannelWriter
from services.querynode.channel import ChannelServer
from services.querynode.segment import DELETED

SCHEMA = Schema(
    "c", "", (Field(100, "pk", DataType.Int64, is_primary=True), Field(101, "v", DataType.FloatVector, dim=2))
)
VCH = "dml_0_1v0"


class FakeCoord:
    """The coordinator calls a datanode channel makes, recorded."""

    def __init__(self, checkpoint: dict[str, Any] | None = None) -> None:
        self.saved: list[dict[str, Any]] = []
        self.checkpoint = checkpoint
        self._ids = itertools.count(1000, 1000)

    def call(self, method: str, **kw: Any) -> Any:
        if method == "alloc_ids":
            return next(self._ids)
        if method == "save_binlogs":
            self.saved.append(kw)
            return None
        if method == "get_recovery_info":
            return {"checkpoint": self.checkpoint, "segments": []}
        if method == "report_segment_rows":
            return None
        if method == "delete_floor":
            return 0
        if method == "flushed_segment_ids":
            return []
        raise AssertionError(f"unexpected coordinator call {method}")

    def flushed(self, segment_id: int) -> dict[str, Any] | None:
        """The record of the flush of ``segment_id``, if it happened."""
        found = [r for s in self.saved for r in s["segments"] if r["id"] == segment_id and r.get("flushed")]
        return found[-1] if found else None


def produce(stream: MemoryStream, msg: msgs.Message) -> None:
    stream.produce(pchannel_of(VCH), msgs.encode(msg))


def insert(stream: MemoryStream, pk: int, ts: int, segment: int = 9) -> None:
    produce(
        stream,
        msgs.InsertMsg(VCH, 1, 2, segment, ts, np.arange(1), {100: np.array([pk]), 101: np.ones((1, 2), np.float32)}),
    )


def wait_until(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def writer(stream: MemoryStream, storage: MemoryStorage, coord: FakeCoord) -> ChannelWriter:
    w = ChannelWriter(1, VCH, SCHEMA, stream, storage, coord, 0.0)  # type: ignore[arg-type]  # sync at every tick
    w.start()
    return w


def delta_of(storage: MemoryStorage, record: dict[str, Any] | None) -> dict[int, int]:
    assert record is not None
    out: dict[int, int] = {}
    for key in record["deltalogs"]:
        pks, ts = binlog.decode_delta_log(storage.get(key))
        out.update(zip(pks.tolist(), ts.tolist(), strict=True))
    return out


@pytest.mark.parametrize("tick_between", [False, True])
def test_a_delete_before_an_older_insert_survives_syncs_and_restarts(tick_between: bool) -> None:
    """``tick_between``: a sync with nothing buffered runs between the delete and the insert."""
    stream, storage = MemoryStream(), MemoryStorage()
    coord = FakeCoord()
    w = writer(stream, storage, coord)
    try:
        produce(stream, msgs.TimeTickMsg(50))
        produce(stream, msgs.DeleteMsg(VCH, 1, -1, 105, np.array([7], dtype=np.int64)))
        if tick_between:  # the tick may pass 100 but not 105: messages after it are newer than 101
            produce(stream, msgs.TimeTickMsg(101))
        insert(stream, 7, ts=102 if tick_between else 100)
        insert(stream, 8, ts=103)  # a row the delete does not name
        produce(stream, msgs.TimeTickMsg(106))
        wait_until(lambda: any(s["checkpoint"].get("synced") == 106 for s in coord.saved))
        checkpoint = coord.saved[-1]["checkpoint"]
    finally:
        w.stop()

    # a querynode shard leader watching the channel from that checkpoint sees the row deleted
    leader = ChannelServer(1, VCH, SCHEMA, stream, checkpoint, [], [2])
    try:
        leader.wait_tsafe(106, timeout=5)
        cols, n = leader.growing[9].store.snapshot()
        assert dict(zip(cols["pk"][:n].tolist(), cols[DELETED][:n].tolist(), strict=True)) == {7: 105, 8: 0}
    finally:
        leader.stop()

    # the same datanode flushing later, and one restarted from the checkpoint, both write the delete
    for restarted in (False, True):
        storage, coord = MemoryStorage(), FakeCoord(checkpoint if restarted else None)
        w = writer(stream, storage, coord)
        try:
            w.request_flush([{"id": 9, "seal_ts": 150}])
            produce(stream, msgs.TimeTickMsg(200 + restarted))
            wait_until(lambda c=coord: c.flushed(9) is not None)  # type: ignore[misc]
            assert delta_of(storage, coord.flushed(9)) == {7: 105}
        finally:
            w.stop()


def test_deletes_no_row_can_need_are_forgotten() -> None:
    stream, storage = MemoryStream(), MemoryStorage()
    coord = FakeCoord()
    w = writer(stream, storage, coord)
    try:
        insert(stream, 1, ts=10)
        produce(stream, msgs.DeleteMsg(VCH, 1, -1, 12, np.array([1], dtype=np.int64)))
        produce(stream, msgs.DeleteMsg(VCH, 1, -1, 30, np.array([2], dtype=np.int64)))
        produce(stream, msgs.TimeTickMsg(20))
        wait_until(lambda: bool(coord.saved))
        assert [d[2] for d in w.deletes] == [12, 30]  # segment 9's rows (ts 10) are older than both
        w.request_flush([{"id": 9, "seal_ts": 20}])
        produce(stream, msgs.TimeTickMsg(25))
        wait_until(lambda: coord.flushed(9) is not None)
        assert delta_of(storage, coord.flushed(9)) == {1: 12}
        wait_until(lambda: [d[2] for d in w.deletes] == [30])  # newer than the tick: a later insert may be older
        assert coord.saved[-1]["checkpoint"]["id"] is not None
    finally:
        w.stop()


def _deletes_for_model(
    pks: np.ndarray, row_ts: np.ndarray, deletes: list[tuple[np.ndarray, int]]
) -> set[tuple[Any, int]]:
    """One scan of the segment per delete message: every (key, ts) that deletes an older row."""
    out = set()
    for dpks, dts in deletes:
        hit = np.isin(pks, dpks) & (row_ts < dts)
        out |= {(k, dts) for k in pks[hit].tolist()}
    return out


@pytest.mark.parametrize("kind", ["int", "str"])
@pytest.mark.parametrize("seed", range(4))
def test_the_deletes_a_flush_writes_match_a_scan_per_message(kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    raw = rng.integers(0, 150, n)  # repeated keys: upserts in one segment
    pks = raw if kind == "int" else np.array([f"k{v}" for v in raw], dtype=object)
    row_ts = rng.integers(10, 60, n).astype(np.int64)
    deletes = []
    for _ in range(int(rng.integers(0, 60))):
        keys = rng.integers(0, 200, int(rng.integers(0, 5)))  # some empty, some never inserted
        dkeys = keys if kind == "int" else np.array([f"k{v}" for v in keys])  # as a DeleteMsg decodes them
        deletes.append((dkeys, int(rng.integers(5, 70))))  # repeated timestamps too
    got_pks, got_ts = ChannelWriter._deletes_for(pks, row_ts, deletes)
    pairs = list(zip(got_pks.tolist(), got_ts.tolist(), strict=True))
    assert len(pairs) == len(set(pairs))  # each once
    assert set(pairs) == _deletes_for_model(pks, row_ts, deletes)
    assert got_pks.dtype == pks.dtype and got_ts.dtype == np.int64
    wrong_type = np.array(["1"]) if kind == "int" else np.array([1])
    assert len(ChannelWriter._deletes_for(pks, row_ts, [(wrong_type, 99)])[0]) == 0


@pytest.mark.parametrize("kind", ["int", "str"])
def test_deletes_for_flushed_segments_go_to_each_segment_that_may_hold_their_keys(kind: str) -> None:
    def keys(values: np.ndarray) -> np.ndarray:
        return values.astype(np.int64) if kind == "int" else np.array([f"k{v:05d}" for v in values])

    storage = MemoryStorage()
    w = ChannelWriter(1, VCH, SCHEMA, MemoryStream(), storage, FakeCoord(), 1e9)  # type: ignore[arg-type]
    for sid in range(4):  # disjoint key ranges; segment 3's stats are unreadable: it takes every delete
        stats = [binlog.PkStats.build(keys(np.arange(sid * 1000, sid * 1000 + 1000)))] if sid < 3 else None
        w.flushed_stats[sid] = binlog.SegmentPkStats(stats)
        w.flushed_partitions[sid] = 2
    rng = np.random.default_rng(3)
    w.new_deletes = [(keys(rng.integers(0, 3500, int(rng.integers(0, 4)))), 100 + i) for i in range(300)]
    ids = itertools.count(1)
    records = w._write_deltas(lambda: next(ids), w.new_deletes, [0, 2, 3])  # 1 was flushed by this sync
    got = {
        r["id"]: sorted(
            zip(*(a.tolist() for a in binlog.decode_delta_log(storage.get(r["deltalogs"][0]))), strict=True)
        )
        for r in records
    }
    want = {}
    for sid in (0, 2, 3):  # 1 was flushed in this sync: its deletes are in its own binlogs
        pairs = [
            (k, t)
            for p, t in w.new_deletes
            for k, m in zip(p.tolist(), w.flushed_stats[sid].may_contain(p), strict=True)
            if m
        ]
        if pairs:
            want[sid] = sorted(pairs)
    assert got == want
    assert all(r["delta_rows"] == len(got[r["id"]]) for r in records)
    assert len(got[3]) == sum(len(p) for p, _ in w.new_deletes)
