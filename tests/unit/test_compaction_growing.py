"""Growing copies of segments that compaction dropped before their sealed copies were loaded.

A shard leader holds growing copies of the segments it consumed. Normally the flushed segment is
loaded and the leader drops its growing copy when it routes the sealed one. When a compaction
merges the flushed segments first, the sealed inputs are never loaded: the coordinator must
tell the leader to drop the growing copies once the merged segment is routed (else every row is
served twice and the copies are kept forever), or at once when the merge left nothing (everything
deleted or expired: a later TTL change must not bring the rows back).

Coordinator and a real querynode on the in-memory backends; the test drives every reconcile.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

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
from services.coord.meta import DROPPED, FLUSHED, GROWING, SegmentInfo
from services.coord.server import Coordinator
from services.querynode.server import QueryNode

ROWS = 6


@pytest.fixture
def env() -> Iterator[tuple[Coordinator, QueryNode, MemoryStream, MemoryStorage]]:
    cfg = QuiverConfig(kv={"backend": "memory"}, stream={"backend": "memory", "pchannel_count": 1})
    cfg.data.compaction_enabled = False
    router, kv, stream, storage = Router(), MemoryKV(), MemoryStream(), MemoryStorage()
    coord = Coordinator(cfg, kv, stream, router, storage=storage)
    coord.activate()
    coord.stop()  # the test drives every reconcile
    qn = QueryNode(stream, storage, 256, router)
    session = Session(kv, coord.meta_root, SessionInfo("querynode", 1, router.register_local("qn", qn)), 10)
    yield coord, qn, stream, storage
    session.stop()
    qn.stop()


def _collection(coord: Coordinator) -> tuple[int, int, str]:
    fields = [FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=2)]
    cid = coord.root.create_collection(
        "default", Prepare.get_schema_from_collection_schema("c", CollectionSchema(fields)).SerializeToString(),
        shards_num=1,
    )
    coord.index.create_index(cid, "v", "", {"index_type": "FLAT", "metric_type": "L2"})
    part = next(iter(coord.ctx.catalog.partitions[cid]))
    return cid, part, coord.ctx.catalog.collections[cid].vchannels[0]


def _grow(coord: Coordinator, qn: QueryNode, stream: MemoryStream, cid: int, part: int, v: str) -> dict[int, int]:
    """Two growing segments the querynode consumed: segment id -> insert timestamp."""
    segs = [SegmentInfo(id=coord.ctx.ids.alloc(), collection_id=cid, partition_id=part, vchannel=v, state=GROWING,
                        max_rows=1000) for _ in range(2)]
    coord.ctx.catalog.save_segments(segs)
    coord.query.load_collection(cid)
    assert v in qn.channels
    out: dict[int, int] = {}
    for k, s in enumerate(segs):
        ts = coord.ctx.tso.alloc()
        ids = np.arange(k * ROWS, (k + 1) * ROWS, dtype=np.int64)
        vecs = np.ones((ROWS, 2), dtype=np.float32) * ids[:, None]
        stream.produce(pchannel_of(v), msgs.encode(msgs.InsertMsg(v, cid, part, s.id, ts, ids, {100: ids, 101: vecs})))
        out[s.id] = ts
    tick = coord.ctx.tso.alloc()
    stream.produce(pchannel_of(v), msgs.encode(msgs.TimeTickMsg(tick)))
    qn.channels[v].wait_tsafe(tick, 10.0)
    assert set(qn.channels[v].growing) == set(out)
    return out


def _flush_and_compact(coord: Coordinator, cid: int, grown: dict[int, int], result: dict[str, Any]) -> None:
    """The segments flush and a compaction merges them before any reconcile loads them sealed."""
    cat = coord.ctx.catalog
    cat.save_segments([cat.segments[s].model_copy(update={"state": FLUSHED, "num_rows": ROWS,
                                                          "binlogs": {0: [f"never-read-{s}"]}}) for s in grown])
    trig = coord.compaction.trigger(cid, force=True)
    plan = coord.compaction.plans[trig.plan_ids[0]]
    assert sorted(plan.sources) == sorted(grown)
    v = cat.segments[next(iter(grown))].vchannel
    coord.compaction.complete_compaction(plan.plan_id, v, result, {s: [] for s in grown})
    assert all(cat.segments[s].state == DROPPED for s in grown)
    coord.index.schedule()  # FLAT: a build without files, searched brute force
    for si in cat.segment_indexes.values():
        if si.state != "Finished":
            si.state, si.files = "Finished", []


def _count(qn: QueryNode, v: str) -> int:
    reply = qn.query([v], [], qn.channels[v].tsafe, expr="", output_fields=[], limit=None, count_only=True)
    return int(reply["count"])


def _reconcile_until(coord: Coordinator, done: Any) -> None:
    deadline = time.monotonic() + 10
    while True:
        coord.query.reconcile()
        if done():
            return
        assert time.monotonic() < deadline, "the growing copies were never released"


def test_growing_copies_go_when_compaction_left_nothing(env: Any) -> None:
    coord, qn, stream, _ = env
    cid, part, v = _collection(coord)
    grown = _grow(coord, qn, stream, cid, part, v)
    assert _count(qn, v) == 2 * ROWS
    # every row deleted or expired: the result is dropped at once, nothing is ever loaded
    _flush_and_compact(coord, cid, grown, {"id": coord.ctx.ids.alloc(), "num_rows": 0, "binlogs": {}})
    coord.query.reconcile()
    coord.query.reconcile()
    assert qn.channels[v].growing == {}  # released, not kept forever
    assert qn.get_distribution()["channels"][v]["growing"] == []
    assert _count(qn, v) == 0  # storage has no row left, and neither does the query node


def test_growing_copies_go_when_the_merged_segment_is_routed(env: Any) -> None:
    coord, qn, stream, storage = env
    cid, part, v = _collection(coord)
    grown = _grow(coord, qn, stream, cid, part, v)
    # the merged segment, written as a compactor would: every row of both inputs, their timestamps
    ids = np.arange(2 * ROWS, dtype=np.int64)
    ts = np.repeat(np.array([grown[s] for s in sorted(grown)], dtype=np.int64), ROWS)
    vecs = np.ones((2 * ROWS, 2), dtype=np.float32) * ids[:, None]
    new_id = coord.ctx.ids.alloc()
    schema = coord.ctx.catalog.collections[cid].parsed_schema
    columns = {1: (Field(field_id=1, name="__ts", dtype=DataType.INT64), ts),
               100: (schema.field("id"), ids), 101: (schema.field("v"), vecs)}
    binlogs: dict[int, list[str]] = {}
    for fid, (f, col) in columns.items():
        key = binlog.insert_log_key(cid, part, new_id, fid, coord.ctx.ids.alloc())
        storage.put(key, binlog.encode_column(f, col))
        binlogs[fid] = [key]
    _flush_and_compact(coord, cid, grown, {"id": new_id, "num_rows": 2 * ROWS, "binlogs": binlogs})
    # the merged segment is not loaded yet: the growing copies keep serving the rows
    assert set(qn.channels[v].growing) == set(grown)
    _reconcile_until(coord, lambda: qn.store.get(new_id) is not None
                     and set(qn.delegators[v].report()) == {str(new_id)} and not qn.channels[v].growing)
    assert _count(qn, v) == 2 * ROWS  # each row once: from the merged segment only
