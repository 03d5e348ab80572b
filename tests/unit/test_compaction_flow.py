"""Compaction end to end on in-memory backends: a real datanode flushes, compacts in its channel
thread and commits at a real coordinator; afterwards deletes land on the merged segment."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from pymilvus import CollectionSchema, DataType, FieldSchema
from pymilvus.client.prepare import Prepare

from common import binlog, msgs
from common.channels import pchannel_of
from common.config import QuiverConfig
from common.kv.memory import MemoryKV
from common.msgstream.memory import MemoryStream
from common.rpc import Router
from common.schema import Field
from common.session import Session, SessionInfo
from common.storage.memory import MemoryStorage
from services.coord.meta import DROPPED, FLUSHED, SegmentInfo
from services.coord.server import Coordinator
from services.datanode.server import DataNode


def wait(cond: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


@dataclass
class Rig:
    coord: Coordinator
    datanode: DataNode
    stream: MemoryStream
    storage: MemoryStorage
    cid: int
    part: int
    vchannel: str
    pk: Field

    def tick(self) -> None:
        ts = self.coord.ctx.tso.alloc()
        self.stream.produce(pchannel_of(self.vchannel), msgs.encode(msgs.TimeTickMsg(ts)))

    def insert(self, pks: np.ndarray) -> None:
        ts = self.coord.ctx.tso.alloc()
        vec = self.coord.ctx.catalog.collections[self.cid].parsed_schema.get("v")
        assert vec is not None
        start = 0
        for sid, n in self.coord.data.assign_segments(self.cid, self.part, self.vchannel, len(pks), ts):
            chunk = pks[start : start + n]
            start += n
            msg = msgs.InsertMsg(
                self.vchannel,
                self.cid,
                self.part,
                sid,
                ts,
                row_ids=chunk.astype(np.int64),
                columns={self.pk.field_id: chunk, vec.field_id: np.ones((n, 4), dtype=np.float32)},
            )
            self.stream.produce(pchannel_of(self.vchannel), msgs.encode(msg))

    def delete(self, pks: list[int]) -> None:
        ts = self.coord.ctx.tso.alloc()
        msg = msgs.DeleteMsg(self.vchannel, self.cid, -1, ts, np.array(pks, dtype=np.int64))
        self.stream.produce(pchannel_of(self.vchannel), msgs.encode(msg))

    def flush(self) -> None:
        out = self.coord.data.flush(self.cid)
        time.sleep(0.05)
        # nothing is durable before the channel's time passes the flush (ticks are produced by hand here)
        assert not self.coord.data.get_flush_state(out["segment_ids"], self.cid, out["flush_ts"])
        self.tick()
        wait(lambda: self.coord.data.get_flush_state(out["segment_ids"], self.cid, out["flush_ts"]))

    def segments(self, state: str) -> list[SegmentInfo]:
        return sorted(
            (s for s in self.coord.ctx.catalog.segments.values() if s.collection_id == self.cid and s.state == state),
            key=lambda s: s.id,
        )


@pytest.fixture
def rig() -> Iterator[Rig]:
    cfg = QuiverConfig(kv={"backend": "memory"}, stream={"backend": "memory", "pchannel_count": 1})
    cfg.data.segment_max_rows = 100
    cfg.data.compaction_enabled = False
    cfg.data.gc_enabled = False
    cfg.data.sync_period_seconds = 3600
    kv, stream, storage, router = MemoryKV(), MemoryStream(), MemoryStorage(), Router()
    coord = Coordinator(cfg, kv, stream, router, storage=storage)
    coord.activate()
    router.register_local("coord", *coord.handlers())
    datanode = DataNode(cfg, stream, storage, router.client("local://coord"))
    session = Session(kv, coord.meta_root, SessionInfo("datanode", 1, router.register_local("dn", datanode)), 10)
    fields = [FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=4)]
    proto = Prepare.get_schema_from_collection_schema("c", CollectionSchema(fields))
    cid = coord.root.create_collection("default", proto.SerializeToString())
    coll = coord.ctx.catalog.collections[cid]
    wait(lambda: coll.vchannels[0] in datanode.channels)
    pk = coll.parsed_schema.primary
    part = next(iter(coord.ctx.catalog.partitions[cid]))
    yield Rig(coord, datanode, stream, storage, cid, part, coll.vchannels[0], pk)
    session.stop()
    datanode.stop()
    coord.stop()


def pks_of(rig: Rig, s: SegmentInfo) -> list[int]:
    return binlog.decode_column(rig.pk, rig.storage.get(s.binlogs[rig.pk.field_id][0]))[0].tolist()


def test_compaction_on_the_datanode_and_deletes_after_it(rig: Rig) -> None:
    rig.insert(np.arange(0, 60))
    rig.flush()
    rig.insert(np.arange(60, 90))
    rig.flush()
    a, b = rig.segments(FLUSHED)
    rig.delete([1, 2, 3, 70, 500])  # 500 is nowhere
    rig.flush()  # the deletes become delta logs of the flushed segments
    assert rig.segments(FLUSHED)[0].deltalogs and rig.segments(FLUSHED)[0].deleted_rows >= 3
    assert rig.coord.data.get_statistics(rig.cid) == 90  # num_entities still counts deleted rows

    out = rig.coord.compaction.manual_compaction(rig.cid)
    assert out["plan_count"] == 1
    wait(lambda: rig.coord.compaction.get_compaction_state(out["compaction_id"])["state"] == "Completed")
    assert rig.coord.compaction.get_compaction_state(out["compaction_id"])["completed"] == 1
    (c,) = rig.segments(FLUSHED)
    assert c.compacted_from == [a.id, b.id] and c.num_rows == 86
    assert {s.id for s in rig.segments(DROPPED)} == {a.id, b.id}
    assert sorted(pks_of(rig, c)) == [i for i in range(90) if i not in (1, 2, 3, 70)]
    assert rig.coord.data.get_statistics(rig.cid) == 86
    writer = rig.datanode.channels[rig.vchannel]
    assert c.id in writer.flushed_stats and a.id not in writer.flushed_stats and b.id not in writer.flushed_stats

    # later deletes go to the merged segment's delta logs, not to the dropped inputs
    rig.delete([5, 80])
    rig.flush()
    c = rig.coord.ctx.catalog.segments[c.id]
    assert len(c.deltalogs) == 1
    dpks, _ = binlog.decode_delta_log(rig.storage.get(c.deltalogs[0]))
    assert sorted(dpks.tolist()) == [5, 80]
    assert rig.coord.ctx.catalog.segments[a.id].deltalogs == a.deltalogs

    # a restarted datanode skips the dropped inputs' inserts still after the checkpoint
    rig.datanode.release_channel(rig.vchannel)
    coll = rig.coord.ctx.catalog.collections[rig.cid]
    rig.datanode.watch_channel(rig.cid, rig.vchannel, coll.schema_b64)
    again = rig.datanode.channels[rig.vchannel]
    assert {a.id, b.id, c.id} <= again.flushed and c.id in again.flushed_stats


def test_a_segment_whose_stats_log_is_gone_still_gets_its_deletes_after_a_restart(rig: Rig) -> None:
    """Unreadable stats make a flushed segment take every delete (a delta log too many, never a delete
    lost: a querynode loading it later reads only its binlogs and delta logs)."""
    rig.insert(np.arange(0, 50))
    rig.flush()
    rig.insert(np.arange(50, 90))
    rig.flush()
    a, b = rig.segments(FLUSHED)
    rig.storage.delete(a.statslogs[0])
    rig.datanode.release_channel(rig.vchannel)
    coll = rig.coord.ctx.catalog.collections[rig.cid]
    rig.datanode.watch_channel(rig.cid, rig.vchannel, coll.schema_b64)
    assert rig.datanode.channels[rig.vchannel].flushed_stats[a.id].unknown
    rig.delete([7, 60])
    rig.flush()
    a, b = rig.coord.ctx.catalog.segments[a.id], rig.coord.ctx.catalog.segments[b.id]
    assert len(a.deltalogs) == 1 and len(b.deltalogs) == 1
    assert sorted(binlog.decode_delta_log(rig.storage.get(a.deltalogs[0]))[0].tolist()) == [7, 60]
    assert binlog.decode_delta_log(rig.storage.get(b.deltalogs[0]))[0].tolist() == [60]  # b's stats still route
