"""Import jobs on in-memory backends: coordinator job state, the datanode worker, commit and restart,
and deletes of imported keys issued while the import runs.

The coordinator dispatches a job to the datanode, whose worker writes segments as binlogs and
asks for the commit; the segments then are Flushed segments of the collection whose binlogs
hold exactly the file's rows. Jobs persist in the KV store: a new coordinator on the same
store knows every job, reruns one that was running (a new attempt), and refuses the stale
attempt's commit.
"""

from __future__ import annotations

import json
import threading
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
from common.errors import MilvusError
from common.kv.memory import MemoryKV
from common.msgstream.memory import MemoryStream
from common.rpc import Router
from common.session import Session, SessionInfo
from common.storage.memory import MemoryStorage
from services.coord.delta_watermark import channel_sync, watermark
from services.coord.imports import ImportJob
from services.coord.meta import FLUSHED
from services.coord.server import Coordinator
from services.datanode import importer
from services.datanode.server import DataNode

DIM = 4


def wait(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


@dataclass
class Rig:
    coord: Coordinator
    datanode: DataNode
    storage: MemoryStorage
    kv: MemoryKV
    cid: int
    part: int
    cfg: QuiverConfig
    stream: MemoryStream
    router: Router

    def restart_coord(self) -> None:
        """A new coordinator on the same KV store, serving where the old one did."""
        self.coord.stop()
        self.coord = Coordinator(self.cfg, self.kv, self.stream, self.router, storage=self.storage)
        self.coord.activate()
        self.router.register_local("coord", *self.coord.handlers())

    def job(self, job_id: int) -> dict:  # type: ignore[type-arg]
        return self.coord.imports.get_import_progress(job_id)  # type: ignore[no-any-return]

    def finished(self, job_id: int) -> dict:  # type: ignore[type-arg]
        wait(lambda: self.job(job_id)["state"] in ("Completed", "Failed"))
        return self.job(job_id)

    @property
    def vchannels(self) -> list[str]:
        return list(self.coord.ctx.catalog.collections[self.cid].vchannels)

    def produce(self, msg: msgs.Message) -> None:
        """``msg`` on every channel of the collection (a delete: one per channel, same keys)."""
        for v in self.vchannels:
            body = (
                msg if not isinstance(msg, msgs.DeleteMsg) else msgs.DeleteMsg(v, self.cid, -1, msg.timestamp, msg.pks)
            )
            self.stream.produce(pchannel_of(v), msgs.encode(body))

    def synced_past(self, ts: int) -> bool:
        cps = [self.coord.ctx.catalog.checkpoints.get(v) for v in self.vchannels]
        return all(cp is not None and json.loads(cp).get("synced", 0) >= ts for cp in cps)


def pause_import_writes(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Hold import workers once their rows' timestamp is allocated: (set when one is held, the go)."""
    stamped, go_on = threading.Event(), threading.Event()
    real_write = importer.write_segment

    def paused_write(*args: object, **kwargs: object) -> dict:  # type: ignore[type-arg]
        stamped.set()
        assert go_on.wait(30)
        return real_write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importer, "write_segment", paused_write)
    return stamped, go_on


@pytest.fixture
def rig() -> Iterator[Rig]:
    cfg = QuiverConfig(kv={"backend": "memory"}, stream={"backend": "memory", "pchannel_count": 2})  # type: ignore[arg-type]
    cfg.data.segment_max_rows = 40
    cfg.data.compaction_enabled = False
    cfg.data.gc_enabled = False
    kv, stream, storage, router = MemoryKV(), MemoryStream(), MemoryStorage(), Router()
    coord = Coordinator(cfg, kv, stream, router, storage=storage)
    coord.activate()
    router.register_local("coord", *coord.handlers())
    datanode = DataNode(cfg, stream, storage, router.client("local://coord"))
    session = Session(kv, coord.meta_root, SessionInfo("datanode", 1, router.register_local("dn", datanode)), 10)
    fields = [
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("v", DataType.FLOAT_VECTOR, dim=DIM),
        FieldSchema("s", DataType.VARCHAR, max_length=8, nullable=True),
    ]
    proto = Prepare.get_schema_from_collection_schema("c", CollectionSchema(fields))
    cid = coord.root.create_collection("default", proto.SerializeToString(), shards_num=2)
    part = next(iter(coord.ctx.catalog.partitions[cid]))
    r = Rig(coord, datanode, storage, kv, cid, part, cfg, stream, router)
    yield r
    session.stop()
    datanode.stop()
    r.coord.stop()


def _rows(n: int) -> list[dict]:  # type: ignore[type-arg]
    return [{"id": i, "v": [float(i)] * DIM, "s": None if i % 4 == 0 else f"s{i}"} for i in range(n)]


def test_import_writes_flushed_segments_with_the_rows(rig: Rig) -> None:
    rig.storage.put("in/rows.json", json.dumps({"rows": _rows(100)}).encode())
    job_id = rig.coord.imports.create_import("default", rig.cid, [rig.part], [["in/rows.json"]])
    job = rig.finished(job_id)
    assert job["state"] == "Completed" and job["imported_rows"] == 100 and job["progress"] == 100
    segs = [s for s in rig.coord.ctx.catalog.segments.values() if s.collection_id == rig.cid]
    assert sorted(s.id for s in segs) == sorted(job["segment_ids"])
    assert all(s.state == FLUSHED and s.num_rows <= 40 for s in segs)
    assert len({s.vchannel for s in segs}) == 2  # rows are sharded by primary key over both channels
    schema = rig.coord.ctx.catalog.collections[rig.cid].parsed_schema
    got: dict[int, tuple[float, str | None]] = {}
    for s in segs:
        pks = binlog.decode_column(schema.field("id"), rig.storage.get(s.binlogs[schema.field("id").field_id][0]))[0]
        vecs = binlog.decode_column(schema.field("v"), rig.storage.get(s.binlogs[schema.field("v").field_id][0]))[0]
        strs, valid = binlog.decode_column(schema.field("s"), rig.storage.get(s.binlogs[schema.field("s").field_id][0]))
        assert valid is not None
        for pk, vec, text, ok in zip(pks, vecs, strs, valid, strict=True):
            got[int(pk)] = (float(vec[0]), text if ok else None)
        stats = binlog.PkStats.from_bytes(rig.storage.get(s.statslogs[0]))
        assert stats.count == s.num_rows and stats.may_contain(pks).all()
    assert got == {r["id"]: (float(r["id"]), r["s"]) for r in _rows(100)}
    assert rig.coord.data.get_statistics(rig.cid) == 100
    listed = rig.coord.imports.list_imports(collection_id=rig.cid)
    assert [j["job_id"] for j in listed] == [job_id]


def test_bad_file_fails_the_job_and_writes_nothing(rig: Rig) -> None:
    rows = _rows(50)
    rows[30]["v"] = [1.0] * (DIM + 1)
    rig.storage.put("in/bad.json", json.dumps(rows).encode())
    before = set(rig.storage.list(""))
    job = rig.finished(rig.coord.imports.create_import("default", rig.cid, [rig.part], [["in/bad.json"]]))
    assert job["state"] == "Failed" and job["imported_rows"] == 0
    assert "expected dim '4' for field 'v'" in job["reason"] and "in/bad.json" in job["reason"]
    assert not [s for s in rig.coord.ctx.catalog.segments.values() if s.collection_id == rig.cid]
    assert set(rig.storage.list("")) == before


def test_create_refuses_bad_requests(rig: Rig) -> None:
    with pytest.raises(MilvusError, match="import request is empty"):
        rig.coord.imports.create_import("default", rig.cid, [rig.part], [[""], []])
    with pytest.raises(MilvusError, match="collection not found"):
        rig.coord.imports.create_import("default", 999, [rig.part], [["a.json"]])
    with pytest.raises(MilvusError, match="partition not found"):
        rig.coord.imports.create_import("default", rig.cid, [12345], [["a.json"]])
    with pytest.raises(MilvusError, match="cannot find import job") as err:
        rig.coord.imports.get_import_progress(42)
    assert err.value.code == 2100
    for bad in ("5", "abc", "1 h", "--1s"):  # Go durations only, as Milvus parses the option
        with pytest.raises(MilvusError, match=f'parse timeout failed.*"{bad}"') as err:
            rig.coord.imports.create_import("default", rig.cid, [rig.part], [["a.json"]], {"timeout": bad})
        assert err.value.code == 2100
    assert rig.coord.imports.list_imports(collection_id=rig.cid) == []  # none of them was queued


def test_an_import_not_done_by_its_timeout_fails_and_releases_the_delete_floor(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The "timeout" option (Milvus's): a job whose worker hangs fails at its deadline; until then it
    holds its channels' delete floor (the datanodes keep newer deletes for it), after it none, and
    the worker's late commit is refused: no rows appear."""
    stamped, go_on = pause_import_writes(monkeypatch)
    rig.storage.put("in/rows.json", json.dumps({"rows": _rows(20)}).encode())
    job_id = rig.coord.imports.create_import("default", rig.cid, [rig.part], [["in/rows.json"]], {"timeout": "1.5s"})
    assert stamped.wait(30)
    vchannels = rig.coord.ctx.catalog.collections[rig.cid].vchannels
    assert all(rig.coord.imports.delete_floor(v) == rig.coord.imports.jobs[job_id].row_ts for v in vchannels)
    job = rig.finished(job_id)
    assert job["state"] == "Failed" and "import timeout" in job["reason"] and "1.5s" in job["reason"]
    assert all(rig.coord.imports.delete_floor(v) == 0 for v in vchannels)
    go_on.set()  # the worker wakes up: its next report (or its commit) is refused, its files deleted
    wait(lambda: not rig.datanode.importer._running)
    assert rig.job(job_id)["state"] == "Failed"
    assert not [s for s in rig.coord.ctx.catalog.segments.values() if s.collection_id == rig.cid]
    assert not [k for k in rig.storage.list("") if "insert_log" in k or "stats_log" in k]


def test_jobs_persist_and_a_running_job_reruns_after_restart(rig: Rig) -> None:
    rig.storage.put("in/rows.json", json.dumps(_rows(30)).encode())
    done = rig.finished(rig.coord.imports.create_import("default", rig.cid, [rig.part], [["in/rows.json"]]))
    # a job caught "importing" by a coordinator crash: its record says so in the KV store
    imports = rig.coord.imports
    with imports._lock:
        job_id = rig.coord.ctx.ids.alloc()
        stale = ImportJob(
            job_id=job_id,
            db_name="default",
            collection_id=rig.cid,
            collection_name="c",
            partition_ids=[rig.part],
            files=[["in/rows.json"]],
            state="Importing",
            node="x",
        )
        imports._save(stale)
    rig.restart_coord()
    fresh = rig.coord.imports
    assert fresh.get_import_progress(done["job_id"])["state"] == "Completed"
    assert fresh.get_import_progress(done["job_id"])["imported_rows"] == 30
    with pytest.raises(MilvusError, match="not running"):
        fresh.complete_import(job_id, 0, [])  # the crashed attempt's worker is refused
    wait(lambda: fresh.get_import_progress(job_id)["state"] in ("Completed", "Failed"))
    assert fresh.get_import_progress(job_id)["state"] == "Completed"
    assert fresh.jobs[job_id].attempt == 1
    assert rig.coord.data.get_statistics(rig.cid) == 60


def test_partition_key_routing_matches_bucket_of(rig: Rig) -> None:
    fields = [
        FieldSchema("id", DataType.INT64, is_primary=True, auto_id=True),
        FieldSchema("v", DataType.FLOAT_VECTOR, dim=DIM),
        FieldSchema("k", DataType.VARCHAR, max_length=8, is_partition_key=True),
    ]
    proto = Prepare.get_schema_from_collection_schema("pk", CollectionSchema(fields))
    cid = rig.coord.root.create_collection("default", proto.SerializeToString(), shards_num=1, num_partitions=4)
    parts = rig.coord.ctx.catalog.partitions[cid]
    order = sorted(parts, key=lambda p: int(parts[p].name.rsplit("_", 1)[-1]))
    rows = [{"v": [0.5] * DIM, "k": f"key{i % 9}"} for i in range(90)]
    rig.storage.put("in/pk.json", json.dumps(rows).encode())
    job = rig.finished(rig.coord.imports.create_import("default", cid, order, [["in/pk.json"]]))
    assert job["state"] == "Completed", job
    from common.imports import bucket_of

    want: dict[int, int] = {}
    for b in bucket_of(np.array([r["k"] for r in rows], dtype=object), 4).tolist():
        want[order[b]] = want.get(order[b], 0) + 1
    got: dict[int, int] = {}
    for s in rig.coord.ctx.catalog.segments.values():
        if s.collection_id == cid:
            got[s.partition_id] = got.get(s.partition_id, 0) + s.num_rows
    assert got == want


def test_deletes_during_an_import_reach_its_segments(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """A delete newer than the import's rows, consumed and synced by the datanode before the
    commit (so before it knew the segments), still lands in their delta logs (the datanode takes
    the committed segments in at its next sync)."""
    rig.cfg.data.sync_period_seconds = 0.0  # the datanode syncs at every timetick
    coll = rig.coord.ctx.catalog.collections[rig.cid]
    wait(lambda: sorted(rig.datanode.list_channels()) == sorted(coll.vchannels))
    rows_stamped, go_on = pause_import_writes(monkeypatch)  # held once the rows' timestamp is allocated
    produce, synced_past = rig.produce, rig.synced_past
    rig.storage.put("in/rows.json", json.dumps({"rows": _rows(60)}).encode())
    job_id = rig.coord.imports.create_import("default", rig.cid, [rig.part], [["in/rows.json"]])
    assert rows_stamped.wait(30)
    deleted_at = rig.coord.root.alloc_timestamp()
    produce(msgs.DeleteMsg("", rig.cid, -1, deleted_at, np.array([3, 4, 5], dtype=np.int64)))
    for _ in range(2):  # syncs before the commit: the datanode knows no segment of the import yet
        tick = rig.coord.root.alloc_timestamp()
        produce(msgs.TimeTickMsg(tick))
        wait(lambda t=tick: synced_past(t))  # type: ignore[misc]
    go_on.set()
    job = rig.finished(job_id)
    assert job["state"] == "Completed"
    tick = rig.coord.root.alloc_timestamp()
    produce(msgs.TimeTickMsg(tick))
    wait(lambda: synced_past(tick))

    deleted: dict[int, int] = {}
    for sid in job["segment_ids"]:
        for key in rig.coord.ctx.catalog.segments[sid].deltalogs:
            pks, ts = binlog.decode_delta_log(rig.storage.get(key))
            deleted.update(zip(pks.tolist(), ts.tolist(), strict=True))
    assert {k: deleted.get(k) for k in (3, 4, 5)} == {3: deleted_at, 4: deleted_at, 5: deleted_at}


def test_an_import_compacted_before_the_datanode_took_it_in_keeps_its_deletes(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The datanode keeps deletes newer than an uncommitted import's rows for its segments; when the
    segments are compacted before its next sync, the compaction result gets them instead (the
    inputs never had them in delta logs). Meanwhile the watermarks the coordinator hands to loads
    (services/coord/delta_watermark.py) stay at the rows' timestamp, and reach the channel's
    "synced" only after the datanode has taken the result in."""
    rig.cfg.data.sync_period_seconds = 0.0
    coll = rig.coord.ctx.catalog.collections[rig.cid]
    wait(lambda: sorted(rig.datanode.list_channels()) == sorted(coll.vchannels))
    rows_stamped, go_on = pause_import_writes(monkeypatch)
    produce, synced_past = rig.produce, rig.synced_past
    rig.storage.put("in/rows.json", json.dumps({"rows": _rows(160)}).encode())
    job_id = rig.coord.imports.create_import("default", rig.cid, [rig.part], [["in/rows.json"]])
    assert rows_stamped.wait(30)
    row_ts = rig.coord.imports.jobs[job_id].row_ts
    deleted_at = rig.coord.root.alloc_timestamp()
    produce(msgs.DeleteMsg("", rig.cid, -1, deleted_at, np.array([3, 4, 5], dtype=np.int64)))
    tick = rig.coord.root.alloc_timestamp()
    produce(msgs.TimeTickMsg(tick))
    wait(lambda: synced_past(tick))  # synced, but kept for the import: no segment of it is known yet
    writers = [rig.datanode.channels[v] for v in coll.vchannels]
    for w in writers:
        monkeypatch.setattr(w, "sync_period", 3600.0)  # no sync until the compaction is committed
    go_on.set()
    job = rig.finished(job_id)
    assert job["state"] == "Completed"
    imported = [rig.coord.ctx.catalog.segments[s] for s in job["segment_ids"]]
    assert len(imported) > len(coll.vchannels)  # several per channel: the compaction merges them
    def watermark_of(sid: int) -> int:
        s = rig.coord.ctx.catalog.segments[sid]
        return watermark(s, channel_sync(rig.coord.ctx.catalog.checkpoints.get(s.vchannel)))

    assert all(watermark_of(s.id) == row_ts < tick for s in imported)  # not taken in: the rows' ts only

    rig.cfg.data.segment_max_rows = 1000  # every segment of the import is small now: merged
    compaction = rig.coord.compaction.manual_compaction(rig.cid)
    wait(lambda: rig.coord.compaction.get_compaction_state(compaction["compaction_id"])["state"] == "Completed")
    results = sorted({rig.coord.ctx.catalog.segments[s.id].compacted_to for s in imported} - {0})
    assert results, "the import's segments were compacted"
    assert all(watermark_of(r) == row_ts for r in results)
    for w in writers:
        w.sync_period = 0.0
    for _ in range(2):  # the second save after the commit is the one that covers the result
        tick = rig.coord.root.alloc_timestamp()
        produce(msgs.TimeTickMsg(tick))
        wait(lambda t=tick: synced_past(t))  # type: ignore[misc]
    assert all(watermark_of(r) >= tick for r in results)

    deleted: dict[int, int] = {}
    for sid in results:
        for key in rig.coord.ctx.catalog.segments[sid].deltalogs:
            pks, ts = binlog.decode_delta_log(rig.storage.get(key))
            deleted.update(zip(pks.tolist(), ts.tolist(), strict=True))
    assert {k: deleted.get(k) for k in (3, 4, 5)} == {3: deleted_at, 4: deleted_at, 5: deleted_at}
