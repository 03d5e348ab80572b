"""Compaction plans survive a coordinator restart (they are persisted in the KV store, as Milvus's)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from common.config import QuiverConfig
from common.kv.memory import MemoryKV
from common.msgstream.memory import MemoryStream
from common.rpc import Router
from common.storage.memory import MemoryStorage
from services.coord.compaction import COMPLETED, EXECUTING, PENDING
from services.coord.meta import DROPPED
from services.coord.server import Coordinator
from tests.unit.test_compaction import add_flushed, result, schema_bytes


def _coordinator(kv: MemoryKV) -> Coordinator:
    cfg = QuiverConfig(kv={"backend": "memory"}, stream={"backend": "memory", "pchannel_count": 2})
    cfg.data.compaction_enabled = False
    cfg.data.gc_enabled = False
    c = Coordinator(cfg, kv, MemoryStream(), Router(), storage=MemoryStorage())
    c.activate()
    c.stop()  # no background loop: the tests drive every step
    return c


@pytest.fixture
def kv() -> Iterator[MemoryKV]:
    yield MemoryKV()


def test_a_pending_plan_and_its_state_survive_a_restart(kv: MemoryKV) -> None:
    first = _coordinator(kv)
    cid = first.root.create_collection("default", schema_bytes())
    a, b = add_flushed(first, cid, 100), add_flushed(first, cid, 100)
    out = first.compaction.manual_compaction(cid)
    assert out["plan_count"] == 1

    second = _coordinator(kv)
    assert second.compaction.get_compaction_state(out["compaction_id"])["state"] == "Executing"
    (plan,) = second.compaction.get_compaction_plans(out["compaction_id"])["plans"]
    assert plan["sources"] == sorted([a.id, b.id]) and plan["state"] == PENDING
    # the segments it holds stay out of new plans
    assert second.compaction.busy_segments() == {a.id, b.id}
    assert second.compaction.manual_compaction(cid)["plan_count"] == 0


def test_an_executing_plan_is_queued_again_after_a_restart(kv: MemoryKV) -> None:
    first = _coordinator(kv)
    cid = first.root.create_collection("default", schema_bytes())
    add_flushed(first, cid, 100), add_flushed(first, cid, 100)
    out = first.compaction.manual_compaction(cid)
    plan_id = first.compaction.triggers[out["compaction_id"]].plan_ids[0]
    first.compaction.plans[plan_id].state = EXECUTING
    first.compaction._save(first.compaction.plans[plan_id])

    second = _coordinator(kv)
    assert second.compaction.plans[plan_id].state == PENDING  # its datanode may be gone: dispatch again


def test_a_plan_committed_just_before_a_crash_is_completed_on_restart(kv: MemoryKV) -> None:
    first = _coordinator(kv)
    cid = first.root.create_collection("default", schema_bytes())
    a, b = add_flushed(first, cid, 100), add_flushed(first, cid, 100)
    out = first.compaction.manual_compaction(cid)
    plan_id = first.compaction.triggers[out["compaction_id"]].plan_ids[0]
    first.compaction.plans[plan_id].state = EXECUTING
    new_id = first.ctx.ids.alloc()
    first.compaction._save = lambda *plans: None  # type: ignore[method-assign]  # the crash: state never written
    first.compaction.complete_compaction(plan_id, a.vchannel, result(new_id, 200), {a.id: [], b.id: []})

    second = _coordinator(kv)
    assert second.ctx.catalog.segments[a.id].state == DROPPED
    state = second.compaction.get_compaction_state(out["compaction_id"])
    assert state["state"] == "Completed" and state["completed"] == 1
    assert second.compaction.plans[plan_id].state == COMPLETED and second.compaction.plans[plan_id].target == new_id
