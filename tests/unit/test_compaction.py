"""The compaction policy and the commit rules of the coordinator (in-memory backends, no workers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pymilvus import CollectionSchema, DataType, FieldSchema
from pymilvus.client.prepare import Prepare

from common.config import QuiverConfig
from common.errors import MilvusError
from common.kv.memory import MemoryKV
from common.msgstream.memory import MemoryStream
from common.rpc import Router
from common.storage.memory import MemoryStorage
from services.coord.catalog import Catalog
from services.coord.compaction import COMPLETED, EXECUTING, FAILED, PENDING, select_plans
from services.coord.meta import DROPPED, FLUSHED, SegmentInfo
from services.coord.server import Coordinator


def seg(sid: int, rows: int, deleted: int = 0, **kw: object) -> SegmentInfo:
    return SegmentInfo(
        id=sid, collection_id=1, partition_id=2, vchannel="v", state=FLUSHED, num_rows=rows, deleted_rows=deleted, **kw
    )


def ids(plans: list[list[SegmentInfo]]) -> list[list[int]]:
    return [[s.id for s in p] for p in plans]


def test_policy_rewrites_segments_with_many_deletes_alone() -> None:
    segs = [seg(1, 1000, deleted=250), seg(2, 1000, deleted=100), seg(3, 1000)]
    # 25% deleted reaches the 20% threshold; 10% does not; big segments are not merged
    assert ids(select_plans(segs, 1500, 0.2, 0.5)) == [[1]]
    assert select_plans(segs, 1500, 0.3, 0.5) == []


def test_policy_merges_small_segments_up_to_the_max_size() -> None:
    segs = [seg(i, 300) for i in range(1, 8)] + [seg(9, 900)]
    plans = select_plans(segs, 1000, 0.2, 0.5)
    # small ones (< 500 rows) packed three by three; the 900-row one is neither small nor deleted
    assert ids(plans) == [[1, 2, 3], [4, 5, 6]]
    assert all(sum(s.num_rows for s in p) <= 1000 for p in plans)
    # a lone small segment is left alone: merging it with nothing gains nothing
    assert select_plans([seg(1, 300), seg(2, 900)], 1000, 0.2, 0.5) == []


def test_policy_packs_by_rows_left_after_deletes() -> None:
    # 800 rows but 600 deleted: 200 live rows fit with another segment's 700
    plans = select_plans([seg(1, 800, deleted=600), seg(2, 700, deleted=300)], 1000, 0.2, 0.5)
    assert ids(plans) == [[1, 2]]


def test_manual_compaction_takes_every_segment_but_skips_pointless_rewrites() -> None:
    segs = [seg(1, 900), seg(2, 900, deleted=1), seg(3, 100), seg(4, 950)]
    # 4 fills a bin alone (not rewritten: no deletes); 3 joins 1; 2 is rewritten for its one delete
    assert ids(select_plans(segs, 1000, 0.2, 0.5, force=True)) == [[1, 3], [2]]
    assert select_plans([seg(1, 900)], 1000, 0.2, 0.5, force=True) == []  # nothing to remove or merge


def test_policy_caps_the_number_of_inputs() -> None:
    plans = select_plans([seg(i, 1) for i in range(1, 11)], 1000, 0.2, 0.5, max_inputs=4)
    assert [len(p) for p in plans] == [4, 4, 2]


def test_policy_ignores_empty_segments() -> None:
    assert select_plans([seg(1, 0), seg(2, 0)], 1000, 0.2, 0.5, force=True) == []


# --- the coordinator's side ------------------------------------------------------------------


def schema_bytes() -> bytes:
    fields = [FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=4)]
    return Prepare.get_schema_from_collection_schema("c", CollectionSchema(fields)).SerializeToString()


@pytest.fixture
def coord() -> Iterator[Coordinator]:
    cfg = QuiverConfig(kv={"backend": "memory"}, stream={"backend": "memory", "pchannel_count": 2})
    cfg.data.compaction_enabled = False
    cfg.data.gc_enabled = False
    c = Coordinator(cfg, MemoryKV(), MemoryStream(), Router(), storage=MemoryStorage())
    c.activate()
    c.stop()  # no background loop: the tests drive every step
    yield c


def add_flushed(c: Coordinator, cid: int, rows: int, deleted: int = 0, deltalogs: int = 0) -> SegmentInfo:
    coll = c.ctx.catalog.collections[cid]
    part = next(iter(c.ctx.catalog.partitions[cid]))
    s = SegmentInfo(
        id=c.ctx.ids.alloc(),
        collection_id=cid,
        partition_id=part,
        vchannel=coll.vchannels[0],
        state=FLUSHED,
        num_rows=rows,
        deleted_rows=deleted,
        max_rows=1000,
        flush_ts=c.ctx.tso.alloc(),
        binlogs={0: ["a"], 1: ["b"], 100: ["c"], 101: ["d"]},
        statslogs=["s"],
        deltalogs=[f"delta-{i}" for i in range(deltalogs)],
        dml_position="AAAA",
    )
    c.ctx.catalog.save_segments([s])
    return s


def result(new_id: int, rows: int) -> dict[str, object]:
    return {"id": new_id, "num_rows": rows, "binlogs": {0: ["n0"], 1: ["n1"], 100: ["n100"]}, "statslogs": ["ns"]}


def test_commit_swaps_inputs_for_the_result_atomically(coord: Coordinator, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = coord.root.create_collection("default", schema_bytes())
    a, b = add_flushed(coord, cid, 600, deleted=300, deltalogs=1), add_flushed(coord, cid, 400, deleted=100)
    assert coord.data.get_statistics(cid) == 1000  # num_entities: deleted rows count until compacted
    out = coord.compaction.manual_compaction(cid)
    assert out["plan_count"] == 1
    plan = coord.compaction.plans[coord.compaction.triggers[out["compaction_id"]].plan_ids[0]]
    assert plan.sources == sorted([a.id, b.id]) and plan.state == PENDING  # no datanode watches the channel
    assert coord.compaction.get_compaction_state(out["compaction_id"])["state"] == "Executing"
    new_id = coord.ctx.ids.alloc()
    writes: list[int] = []
    save = coord.kv.multi_save

    def counting(puts: dict[str, bytes], deletes: list[str] | None = None) -> int:
        writes.append(len(puts))
        return save(puts, deletes)

    monkeypatch.setattr(coord.kv, "multi_save", counting)
    coord.compaction.complete_compaction(
        plan.plan_id, a.vchannel, result(new_id, 600), {a.id: list(a.deltalogs), b.id: []}
    )
    # both inputs and the result in one KV transaction (the commit point), then the plan's state
    assert writes == [3, 1]
    cat = coord.ctx.catalog
    assert cat.segments[a.id].state == DROPPED and cat.segments[a.id].compacted_to == new_id
    assert cat.segments[b.id].state == DROPPED and cat.segments[b.id].dropped_at_ms > 0
    new = cat.segments[new_id]
    assert new.state == FLUSHED and new.compacted_from == sorted([a.id, b.id]) and new.num_rows == 600
    assert new.binlogs[100] == ["n100"] and new.deltalogs == [] and new.dml_position == "AAAA"
    assert coord.data.get_statistics(cid) == 600  # after compaction num_entities drops
    state = coord.compaction.get_compaction_state(out["compaction_id"])
    assert state == {"state": "Completed", "executing": 0, "completed": 1, "failed": 0, "timeout": 0}
    plans = coord.compaction.get_compaction_plans(out["compaction_id"])["plans"]
    assert plans[0]["target"] == new_id and plans[0]["sources"] == sorted([a.id, b.id])
    # the metadata survives a restart exactly
    again = Catalog(coord.kv, coord.meta_root)
    again.load()
    assert again.segments[new_id] == new and again.segments[a.id].compacted_to == new_id
    # a second commit of the same plan is refused
    with pytest.raises(MilvusError):
        coord.compaction.complete_compaction(plan.plan_id, a.vchannel, result(new_id + 1, 600), {a.id: [], b.id: []})


def test_commit_is_refused_when_an_input_gained_delta_logs(coord: Coordinator) -> None:
    cid = coord.root.create_collection("default", schema_bytes())
    a = add_flushed(coord, cid, 500, deleted=200, deltalogs=1)
    trig = coord.compaction.trigger(cid, force=True)
    plan = coord.compaction.plans[trig.plan_ids[0]]
    plan.state = EXECUTING
    read = {a.id: list(a.deltalogs)}
    # a delete reached the segment after the datanode read its delta logs
    coord.data.save_binlogs(a.vchannel, [{"id": a.id, "deltalogs": ["delta-late"], "delta_rows": 1}])
    with pytest.raises(MilvusError):
        coord.compaction.complete_compaction(plan.plan_id, a.vchannel, result(coord.ctx.ids.alloc(), 300), read)
    assert coord.ctx.catalog.segments[a.id].state == FLUSHED  # nothing changed
    assert plan.state == PENDING and plan.attempts == 1  # retried later
    assert coord.ctx.catalog.segments[a.id].deleted_rows == 201
    new_id = coord.ctx.ids.alloc()
    read = {a.id: list(coord.ctx.catalog.segments[a.id].deltalogs)}
    coord.compaction.complete_compaction(plan.plan_id, a.vchannel, result(new_id, 299), read)
    assert plan.state == COMPLETED and coord.ctx.catalog.segments[new_id].num_rows == 299


def test_a_result_without_rows_is_dropped_at_once(coord: Coordinator) -> None:
    cid = coord.root.create_collection("default", schema_bytes())
    a = add_flushed(coord, cid, 10, deleted=10, deltalogs=1)
    trig = coord.compaction.trigger(cid)
    plan = coord.compaction.plans[trig.plan_ids[0]]
    new_id = coord.ctx.ids.alloc()
    out = coord.compaction.complete_compaction(
        plan.plan_id, a.vchannel, {"id": new_id, "num_rows": 0}, {a.id: list(a.deltalogs)}
    )
    assert out["state"] == DROPPED and coord.ctx.catalog.segments[new_id].state == DROPPED
    assert coord.data.get_statistics(cid) == 0


def test_automatic_triggering_waits_for_indexes_and_skips_busy_segments(coord: Coordinator) -> None:
    cid = coord.root.create_collection("default", schema_bytes())
    coord.index.create_index(cid, "v", "", {"index_type": "FLAT", "metric_type": "L2"})
    a = add_flushed(coord, cid, 2000, deleted=1000)
    assert coord.compaction.trigger().plan_ids == []  # its index is not built yet
    coord.index.schedule()
    for si in coord.ctx.catalog.segment_indexes.values():
        si.state = "Finished"
    first = coord.compaction.trigger()
    assert len(first.plan_ids) == 1
    assert coord.compaction.trigger().plan_ids == []  # already in a plan
    assert coord.compaction.trigger(cid, force=True).plan_ids == []
    assert coord.compaction.busy_segments() == {a.id}


def test_failures_and_timeouts_free_the_inputs(coord: Coordinator) -> None:
    cid = coord.root.create_collection("default", schema_bytes())
    add_flushed(coord, cid, 100, deleted=50)
    plan = coord.compaction.plans[coord.compaction.trigger(cid).plan_ids[0]]
    coord.cfg.data.compaction_max_attempts = 2
    coord.compaction.fail_compaction(plan.plan_id, "disk full")
    assert plan.state == PENDING and plan.reason == "disk full"
    coord.compaction.fail_compaction(plan.plan_id, "disk full")
    assert plan.state == FAILED and coord.compaction.busy_segments() == set()
    plan2 = coord.compaction.plans[coord.compaction.trigger(cid).plan_ids[0]]
    plan2.state, plan2.started = EXECUTING, 0.0
    coord.cfg.data.compaction_timeout_seconds = 1.0
    coord.compaction.tick()
    assert plan2.state == FAILED and plan2.reason.startswith("timed out")
    state = coord.compaction.get_compaction_state(plan2.trigger_id)
    assert state["timeout"] == 1 and state["state"] == "Completed"
    # unknown ids report a finished, empty compaction (as Milvus)
    assert coord.compaction.get_compaction_state(12345)["state"] == "Completed"
