"""The querycoord side of compaction: a node keeps serving the inputs until the merged segment is
indexed, then swaps them for it in one load (never a release first), and GC waits for that."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pymilvus import CollectionSchema, DataType, FieldSchema
from pymilvus.client.prepare import Prepare

from common.config import QuiverConfig
from common.kv.memory import MemoryKV
from common.msgstream.memory import MemoryStream
from common.rpc import Router, rpc
from common.session import Session, SessionInfo
from common.storage.memory import MemoryStorage
from services.coord.meta import FLUSHED, SegmentInfo
from services.coord.server import Coordinator


class FakeQueryNode:
    """Records placement calls and reports what it holds, like a querynode's RPC face."""

    def __init__(self) -> None:
        self.channels: dict[str, list[int]] = {}
        self.segments: dict[int, str] = {}
        self.calls: list[tuple[Any, ...]] = []

    @rpc
    def get_distribution(self) -> dict[str, Any]:
        return {
            "channels": {v: {"partitions": p} for v, p in self.channels.items()},
            "segments": {str(s): {"version": ver} for s, ver in self.segments.items()},
        }

    @rpc
    def watch_channel(self, vchannel: str, partition_ids: list[int], **_: Any) -> None:
        self.channels[vchannel] = partition_ids

    @rpc
    def set_partitions(self, vchannel: str, partition_ids: list[int]) -> None:
        self.channels[vchannel] = partition_ids

    @rpc
    def release_channel(self, vchannel: str) -> None:
        self.channels.pop(vchannel, None)

    @rpc
    def load_segment(
        self, segment: dict[str, Any], version: str, indexes: list[dict[str, Any]], replaces: list[int] | None = None,
        deltas_ts: int = 0, refresh: bool = False,
    ) -> None:
        self.calls.append(("load", segment["id"], sorted(replaces or [])))
        self.segments[segment["id"]] = version
        for sid in replaces or []:
            self.segments.pop(sid, None)

    @rpc
    def release_segments(self, segment_ids: list[int]) -> None:
        self.calls.append(("release", sorted(segment_ids)))
        for sid in segment_ids:
            self.segments.pop(sid, None)


@pytest.fixture
def env() -> Iterator[tuple[Coordinator, FakeQueryNode]]:
    cfg = QuiverConfig(kv={"backend": "memory"}, stream={"backend": "memory", "pchannel_count": 1})
    cfg.data.compaction_enabled = False
    cfg.data.gc_drop_tolerance_seconds = 0
    router, kv = Router(), MemoryKV()
    coord = Coordinator(cfg, kv, MemoryStream(), router, storage=MemoryStorage())
    coord.activate()
    coord.stop()  # the test drives every reconcile
    node = FakeQueryNode()
    session = Session(kv, coord.meta_root, SessionInfo("querynode", 1, router.register_local("qn", node)), 10)
    yield coord, node
    session.stop()


def flushed(coord: Coordinator, cid: int, rows: int) -> SegmentInfo:
    coll = coord.ctx.catalog.collections[cid]
    s = SegmentInfo(
        id=coord.ctx.ids.alloc(),
        collection_id=cid,
        partition_id=next(iter(coord.ctx.catalog.partitions[cid])),
        vchannel=coll.vchannels[0],
        state=FLUSHED,
        num_rows=rows,
        deleted_rows=rows // 2,
        binlogs={0: [f"b{rows}"]},
    )
    coord.ctx.catalog.save_segments([s])
    return s


def build_all(coord: Coordinator) -> None:
    coord.index.schedule()
    for si in coord.ctx.catalog.segment_indexes.values():
        if si.state != "Finished":
            si.state, si.files = "Finished", [f"index-{si.build_id}"]


def test_inputs_are_served_until_the_result_is_indexed_then_swapped_in_one_step(
    env: tuple[Coordinator, FakeQueryNode],
) -> None:
    coord, node = env
    fields = [FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=4)]
    cid = coord.root.create_collection(
        "default", Prepare.get_schema_from_collection_schema("c", CollectionSchema(fields)).SerializeToString()
    )
    coord.index.create_index(cid, "v", "", {"index_type": "FLAT", "metric_type": "L2"})
    a, b = flushed(coord, cid, 2000), flushed(coord, cid, 3000)
    build_all(coord)
    coord.query.load_collection(cid)
    assert set(node.segments) == {a.id, b.id}
    coord.query.refresh_distribution()
    assert coord.query.get_load_info(cid)["progress"] == 100  # type: ignore[index]

    trig = coord.compaction.trigger(cid, force=True)
    plan = coord.compaction.plans[trig.plan_ids[0]]
    new_id = coord.ctx.ids.alloc()
    coord.compaction.complete_compaction(
        plan.plan_id, a.vchannel, {"id": new_id, "num_rows": 2500, "binlogs": {0: ["m"]}}, {a.id: [], b.id: []}
    )
    node.calls.clear()
    coord.query.reconcile()
    coord.query.reconcile()
    # the merged segment has no index yet: keep serving its inputs, load nothing, release nothing
    assert node.calls == [] and set(node.segments) == {a.id, b.id}
    assert coord.query.get_load_info(cid)["progress"] == 100  # type: ignore[index]
    assert coord.gc.run().dropped_segments == []  # a node still holds the inputs

    build_all(coord)
    coord.query.reconcile()
    assert node.calls == [("load", new_id, sorted([a.id, b.id]))]  # one step: no gap, no overlap
    assert set(node.segments) == {new_id}
    coord.query.reconcile()
    assert len(node.calls) == 1
    assert sorted(coord.gc.run().dropped_segments) == sorted([a.id, b.id])
    assert a.id not in coord.ctx.catalog.segments

    # a fresh load only ever sees the merged segment
    coord.query.release_collection(cid)
    assert node.segments == {}
    coord.query.load_collection(cid)
    assert set(node.segments) == {new_id}
