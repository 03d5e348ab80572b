"""Garbage collection on in-memory backends: exactly the unreferenced files go, and only when safe."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from pymilvus import CollectionSchema, DataType, FieldSchema
from pymilvus.client.prepare import Prepare

from common import binlog
from common.config import QuiverConfig
from common.kv.memory import MemoryKV
from common.msgstream._tail import encode_id
from common.msgstream.memory import MemoryStream
from common.rpc import Router
from common.storage.memory import MemoryStorage
from services.coord.catalog import now_ms
from services.coord.meta import DROPPED, FLUSHED, SegmentIndexInfo, SegmentInfo
from services.coord.server import Coordinator


@pytest.fixture
def coord() -> Iterator[Coordinator]:
    cfg = QuiverConfig(kv={"backend": "memory"}, stream={"backend": "memory", "pchannel_count": 1})
    cfg.data.compaction_enabled = False
    cfg.data.gc_drop_tolerance_seconds = 0
    c = Coordinator(cfg, MemoryKV(), MemoryStream(), Router(), storage=MemoryStorage())
    c.activate()
    c.stop()  # the tests run GC passes by hand
    yield c


def b64id(i: int) -> str:
    return base64.b64encode(encode_id(i)).decode()


def new_collection(c: Coordinator, name: str = "c") -> int:
    fields = [FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=4)]
    proto = Prepare.get_schema_from_collection_schema(name, CollectionSchema(fields))
    cid = c.root.create_collection("default", proto.SerializeToString())
    coll = c.ctx.catalog.collections[cid]
    c.ctx.catalog.save_segments([], (coll.vchannels[0], json.dumps({"id": b64id(10), "ts": 0})))
    return cid


def segment(c: Coordinator, cid: int, state: str = FLUSHED, part: int | None = None, **kw: object) -> SegmentInfo:
    """A segment with one file of each kind written to storage (and an orphan flush attempt)."""
    cat = c.ctx.catalog
    part = part if part is not None else next(iter(cat.partitions[cid]))
    sid = c.ctx.ids.alloc()
    s = SegmentInfo(
        id=sid,
        collection_id=cid,
        partition_id=part,
        vchannel=cat.collections[cid].vchannels[0],
        state=state,
        num_rows=10,
        binlogs={100: [binlog.insert_log_key(cid, part, sid, 100, 1)]},
        statslogs=[binlog.stats_log_key(cid, part, sid, 100, 2)],
        deltalogs=[binlog.delta_log_key(cid, part, sid, 3)],
        dml_position=b64id(5),
        dropped_at_ms=now_ms() if state == DROPPED else 0,
        **kw,  # type: ignore[arg-type]
    )
    storage = c.storage
    assert storage is not None
    for key in [*s.binlogs[100], *s.statslogs, *s.deltalogs, binlog.insert_log_key(cid, part, sid, 100, 99)]:
        storage.put(key, b"x")
    cat.save_segments([s])
    return s


def build(
    c: Coordinator, s: SegmentInfo, index_id: int, state: str = "Finished", versions: int = 1
) -> SegmentIndexInfo:
    storage = c.storage
    assert storage is not None
    si = SegmentIndexInfo(
        build_id=c.ctx.ids.alloc(),
        index_id=index_id,
        segment_id=s.id,
        collection_id=s.collection_id,
        partition_id=s.partition_id,
        state=state,
        node_endpoint="local://indexnode" if state == "InProgress" else "",
    )
    for v in range(1, versions + 1):
        key = binlog.index_file_prefix(s.collection_id, s.partition_id, s.id, si.build_id, v) + "index"
        storage.put(key, b"i")
        si.files = [key] if state == "Finished" else []
    c.ctx.catalog.save_segment_index(si)
    return si


def files(c: Coordinator) -> set[str]:
    assert c.storage is not None
    return set(c.storage.list(""))


def of(s: SegmentInfo) -> set[str]:
    return {k for keys in s.binlogs.values() for k in keys} | set(s.statslogs) | set(s.deltalogs)


def test_dropped_segments_go_with_all_their_files_and_nothing_else(coord: Coordinator) -> None:
    cid = new_collection(coord)
    live, gone = segment(coord, cid), segment(coord, cid, DROPPED)
    live_build, gone_build = build(coord, live, 1), build(coord, gone, 1)
    before = files(coord)
    report = coord.gc.run()
    assert report.dropped_segments == [gone.id]
    removed = before - files(coord)
    orphan = binlog.insert_log_key(cid, gone.partition_id, gone.id, 100, 99)  # a flush attempt never recorded
    assert removed == of(gone) | set(gone_build.files) | {orphan}
    assert set(report.deleted_files) == removed
    assert of(live) | set(live_build.files) <= files(coord)
    assert gone.id not in coord.ctx.catalog.segments and gone_build.build_id not in coord.ctx.catalog.segment_indexes
    assert coord.gc.run().deleted_files == []  # a second pass has nothing left


def test_never_a_file_a_live_segment_references(coord: Coordinator) -> None:
    cid = new_collection(coord)
    live = segment(coord, cid)
    gone = segment(coord, cid, DROPPED)
    # a dropped segment naming a live segment's file (never written so, but GC must not trust that)
    gone.binlogs[101] = list(live.binlogs[100])
    coord.ctx.catalog.save_segments([gone])
    coord.gc.run()
    assert of(live) <= files(coord)


def test_dropped_segments_wait_for_tolerance_checkpoint_querynodes_and_builds(coord: Coordinator) -> None:
    cid = new_collection(coord)
    gone = segment(coord, cid, DROPPED)
    coord.cfg.data.gc_drop_tolerance_seconds = 3600
    assert coord.gc.run().dropped_segments == []  # dropped just now
    coord.cfg.data.gc_drop_tolerance_seconds = 0
    vch = gone.vchannel
    coord.ctx.catalog.save_segments([], (vch, json.dumps({"id": b64id(4), "ts": 0})))
    assert coord.gc.run().dropped_segments == []  # a replay from the checkpoint still meets its inserts
    coord.ctx.catalog.save_segments([], (vch, json.dumps({"id": b64id(5), "ts": 0})))
    loaded = {gone.id}
    coord.gc._loaded = lambda: loaded
    assert coord.gc.run().dropped_segments == []  # a querynode still serves it
    loaded.clear()
    si = build(coord, gone, 1, state="InProgress")
    assert coord.gc.run().dropped_segments == []  # an indexnode may still write its files
    si.state = "Failed"
    assert coord.gc.run().dropped_segments == [gone.id]


def test_an_input_stays_while_a_node_serves_an_ancestor(coord: Coordinator) -> None:
    cid = new_collection(coord)
    first = segment(coord, cid, DROPPED)
    middle = segment(coord, cid, DROPPED, compacted_from=[first.id])
    coord.gc._loaded = lambda: {first.id}
    assert coord.gc.run().dropped_segments == []  # the chain first -> middle -> ... must stay readable
    coord.gc._loaded = set
    assert sorted(coord.gc.run().dropped_segments) == sorted([first.id, middle.id])


def test_tombstones_of_collections_partitions_and_indexes(coord: Coordinator) -> None:
    keep, drop = new_collection(coord, "keep"), new_collection(coord, "drop")
    doomed = segment(coord, drop)
    build(coord, doomed, 7)
    coord.root.create_partition("default", "keep", "p1")
    p1 = next(p.id for p in coord.ctx.catalog.partitions[keep].values() if p.name == "p1")
    in_p1 = segment(coord, keep, part=p1)
    build(coord, in_p1, 7)
    stays = segment(coord, keep)
    idx_a = coord.index.create_index(keep, "v", "", {"index_type": "FLAT", "metric_type": "L2"})
    stays_a = build(coord, stays, idx_a)
    before = files(coord)

    coord.drop_collection("default", "drop")
    coord.drop_partition("default", "keep", "p1")
    coord.cfg.data.gc_drop_tolerance_seconds = 3600
    assert coord.gc.run().deleted_files == []  # tombstones wait for the tolerance
    coord.cfg.data.gc_drop_tolerance_seconds = 0
    report = coord.gc.run()
    assert len(report.tombstones) == 2 and not coord.ctx.catalog.tombstones
    assert before - files(coord) == {k for k in before if f"/{drop}/" in k or f"/{p1}/" in k}
    assert of(stays) | set(stays_a.files) <= files(coord)

    # a dropped index: its builds' files go, the segment's binlogs stay
    coord.index.drop_index(keep, field_name="v")
    assert coord.ctx.catalog.segment_indexes.get(stays_a.build_id) is None
    coord.gc.run()
    assert not set(stays_a.files) & files(coord) and of(stays) <= files(coord)


def test_superseded_and_failed_builds(coord: Coordinator) -> None:
    cid = new_collection(coord)
    s = segment(coord, cid)
    retried = build(coord, s, 1, versions=2)  # attempt 1 left files; attempt 2 is the recorded one
    failed = build(coord, s, 2, state="Failed")
    running = build(coord, s, 3, state="InProgress")
    assert retried.files[0].endswith("/2/index")
    prefix = binlog.index_file_prefix
    old = prefix(cid, s.partition_id, s.id, retried.build_id, 1) + "index"
    failed_file = prefix(cid, s.partition_id, s.id, failed.build_id, 1) + "index"
    running_file = prefix(cid, s.partition_id, s.id, running.build_id, 1) + "index"
    report = coord.gc.run()
    assert set(report.deleted_files) == {old, failed_file}
    assert set(retried.files) | {running_file} | of(s) <= files(coord)
