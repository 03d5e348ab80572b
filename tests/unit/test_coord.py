"""The coordinator on in-memory backends: DDL, segment allocation and flush, timeticks, indexes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from pymilvus import CollectionSchema, DataType, FieldSchema
from pymilvus.client.prepare import Prepare

from common import msgs
from common.config import QuiverConfig
from common.errors import Code, MilvusError
from common.kv.memory import MemoryKV
from common.msgstream.memory import MemoryStream
from common.rpc import Router
from common.session import Session, SessionInfo
from services.coord.server import Coordinator


def schema_bytes(name: str = "c1", dim: int = 4) -> bytes:
    fields = [
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("v", DataType.FLOAT_VECTOR, dim=dim),
    ]
    proto = Prepare.get_schema_from_collection_schema(name, CollectionSchema(fields))
    return proto.SerializeToString()


@pytest.fixture
def coord() -> Iterator[Coordinator]:
    cfg = QuiverConfig(kv={"backend": "memory"}, stream={"backend": "memory", "pchannel_count": 4})
    kv, stream = MemoryKV(), MemoryStream()
    c = Coordinator(cfg, kv, stream, Router())
    c.activate()
    yield c
    c.stop()


def test_create_describe_drop(coord: Coordinator) -> None:
    cid = coord.root.create_collection("default", schema_bytes("c1"), shards_num=2)
    d = coord.root.describe_collection("default", "c1")
    assert d["id"] == cid and len(d["vchannels"]) == 2
    assert d["vchannels"][0].startswith("by-dev-rootcoord-dml_") and d["vchannels"][0].endswith(f"_{cid}v0")
    assert [p["name"] for p in d["partitions"]] == ["_default"]
    # the same request again is accepted; a different schema under the same name is not
    assert coord.root.create_collection("default", schema_bytes("c1"), shards_num=2) == cid
    with pytest.raises(MilvusError) as err:
        coord.root.create_collection("default", schema_bytes("c1", dim=8), shards_num=2)
    assert err.value.code == Code.PARAMETER_INVALID
    coord.drop_collection("default", "c1")
    with pytest.raises(MilvusError) as err:
        coord.root.describe_collection("default", "c1")
    assert err.value.code == Code.COLLECTION_NOT_FOUND
    coord.drop_collection("default", "c1")  # dropping again is not an error


def test_catalog_survives_restart(coord: Coordinator) -> None:
    cid = coord.root.create_collection("default", schema_bytes("keep"))
    coord.root.create_partition("default", "keep", "p1")
    again = Coordinator(coord.cfg, coord.kv, coord.stream, Router())
    again.activate()
    try:
        d = again.root.describe_collection("default", "keep")
        assert d["id"] == cid and {p["name"] for p in d["partitions"]} == {"_default", "p1"}
    finally:
        again.stop()


def test_segments_fill_seal_and_flush(coord: Coordinator) -> None:
    cid = coord.root.create_collection("default", schema_bytes())
    d = coord.root.describe_collection("default", "c1")
    part, vch = d["partitions"][0]["id"], d["vchannels"][0]
    seg = next(iter(coord.ctx.catalog.segments.values()), None)
    assert seg is None
    coord.cfg.data.segment_max_rows = 100
    ts = coord.ctx.tso.alloc()
    got = coord.data.assign_segments(cid, part, vch, 250, ts)
    assert [n for _, n in got] == [100, 100, 50]
    assert len({s for s, _ in got}) == 3
    states = {s.id: s.state for s in coord.ctx.catalog.segments.values()}
    assert list(states.values()).count("Sealed") == 2
    out = coord.data.flush(cid)
    assert set(out["segment_ids"]) == {s for s, _ in got}
    assert out["flush_ts"] > ts
    assert coord.data.get_flush_state(out["segment_ids"]) is False
    with pytest.raises(MilvusError):
        coord.data.assign_segments(cid, part, "not-a-channel", 1, ts)


def test_timeticks_wait_for_every_proxy(coord: Coordinator) -> None:
    coord.root.create_collection("default", schema_bytes())
    pch = coord.root.describe_collection("default", "c1")["pchannels"][0]
    meta_root = coord.meta_root
    s1 = Session(coord.kv, meta_root, SessionInfo("proxy", 1, ""), 5)
    s2 = Session(coord.kv, meta_root, SessionInfo("proxy", 2, ""), 5)
    reader = coord.stream.reader(pch)
    try:
        assert coord.ticker.report_timetick(1, 100) == 0  # proxy 2 has not reported
        assert coord.ticker.report_timetick(2, 200) == 100
        assert coord.ticker.report_timetick(1, 150) == 150
        assert coord.ticker.report_timetick(1, 120) == 0  # never goes back
        ticks = []
        while (m := reader.read(0.05)) is not None:
            msg = msgs.decode(m.payload)
            assert isinstance(msg, msgs.TimeTickMsg)
            ticks.append(msg.timestamp)
        assert ticks == [100, 150]
    finally:
        reader.close()
        s1.stop()
        s2.stop()


def test_index_rules(coord: Coordinator) -> None:
    cid = coord.root.create_collection("default", schema_bytes())
    with pytest.raises(MilvusError) as err:
        coord.index.create_index(cid, "nope", "", {"index_type": "FLAT", "metric_type": "L2"})
    assert err.value.code == Code.FIELD_NOT_FOUND
    with pytest.raises(MilvusError):
        coord.index.create_index(cid, "v", "", {"index_type": "IVF_XYZ", "metric_type": "L2"})
    with pytest.raises(MilvusError) as err:
        coord.query.load_collection(cid)
    assert err.value.code == Code.INDEX_NOT_FOUND
    iid = coord.index.create_index(cid, "v", "", {"index_type": "IVF_FLAT", "metric_type": "L2", "nlist": "8"})
    assert coord.index.create_index(cid, "v", "", {"index_type": "IVF_FLAT", "metric_type": "L2", "nlist": "8"}) == iid
    with pytest.raises(MilvusError):
        coord.index.create_index(cid, "v", "", {"index_type": "HNSW", "metric_type": "L2"})
    desc = coord.index.describe_index(cid)
    assert desc[0]["state"] == "Finished" and desc[0]["total_rows"] == 0
    assert np.isfinite(desc[0]["index_id"])


def test_big_drops_respect_the_transaction_cap(coord: Coordinator) -> None:
    """etcd refuses transactions over 128 operations: a collection with many partitions and
    segments must still be created, flushed and dropped (the memory KV enforces the same cap)."""
    cid = coord.root.create_collection("default", schema_bytes("wide"))
    for i in range(150):
        coord.root.create_partition("default", "wide", f"p{i}")
    d = coord.root.describe_collection("default", "wide")
    ts = coord.ctx.tso.alloc()
    for p in d["partitions"]:
        coord.data.assign_segments(cid, p["id"], d["vchannels"][0], 1, ts)
    coord.data.flush(cid)
    assert len([s for s in coord.ctx.catalog.segments.values() if s.collection_id == cid]) == 151
    coord.drop_collection("default", "wide")
    again = Coordinator(coord.cfg, coord.kv, coord.stream, Router())
    again.activate()
    try:
        assert not [s for s in again.ctx.catalog.segments.values() if s.collection_id == cid]
        assert cid not in again.ctx.catalog.partitions
    finally:
        again.stop()
