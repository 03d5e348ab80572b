"""Scalar indexes: Milvus's type rules at CreateIndex, their bookkeeping, and the sorted index that
querynodes use for selective filters (it must answer exactly as the column scan it replaces)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from pymilvus import CollectionSchema, DataType, FieldSchema
from pymilvus.client.prepare import Prepare

from common import binlog
from common.config import QuiverConfig
from common.errors import Code, MilvusError
from common.expr import compile_filter
from common.kv.memory import MemoryKV
from common.msgstream.memory import MemoryStream
from common.rpc import Router
from common.schema import Field, Schema
from common.storage.memory import MemoryStorage
from services.coord.meta import FLUSHED, SegmentInfo
from services.coord.query import segment_version
from services.coord.scalar_index import resolve_scalar_index
from services.coord.server import Coordinator
from services.querynode import scalar_index
from services.querynode.loader import load_segment
from services.querynode.scalar_index import SortedIndex, indexed_filter


def fields() -> list[FieldSchema]:
    return [
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("age", DataType.INT8, nullable=True),
        FieldSchema("big", DataType.INT64),
        FieldSchema("score", DataType.FLOAT),
        FieldSchema("ratio", DataType.DOUBLE),
        FieldSchema("name", DataType.VARCHAR, max_length=32, nullable=True),
        FieldSchema("flag", DataType.BOOL),
        FieldSchema("meta", DataType.JSON),
        FieldSchema("tags", DataType.ARRAY, element_type=DataType.INT32, max_capacity=4),
        FieldSchema("words", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=8),
        FieldSchema("v", DataType.FLOAT_VECTOR, dim=4),
    ]


def schema_proto() -> bytes:
    return Prepare.get_schema_from_collection_schema("c", CollectionSchema(fields())).SerializeToString()


@pytest.fixture
def coord() -> Iterator[Coordinator]:
    cfg = QuiverConfig(kv={"backend": "memory"}, stream={"backend": "memory", "pchannel_count": 1})
    c = Coordinator(cfg, MemoryKV(), MemoryStream(), Router(), storage=MemoryStorage())
    c.activate()
    c.stop()
    yield c


def field(coord: Coordinator, cid: int, name: str) -> Field:
    f = coord.ctx.catalog.collections[cid].parsed_schema.get(name)
    assert f is not None
    return f


ACCEPTED = {
    "STL_SORT": {"id", "age", "big", "score", "ratio"},
    "Trie": {"name"},
    "BITMAP": {"age", "big", "name", "flag", "tags", "words"},
    "INVERTED": {"id", "age", "big", "score", "ratio", "name", "flag", "tags", "words"},
    "AUTOINDEX": {"id", "age", "big", "score", "ratio", "name", "flag", "tags", "words"},
}


@pytest.mark.parametrize("index_type", sorted(ACCEPTED))
def test_type_rules_follow_milvus(coord: Coordinator, index_type: str) -> None:
    cid = coord.root.create_collection("default", schema_proto())
    for f in fields():
        if f.dtype == DataType.FLOAT_VECTOR:
            continue
        if f.name in ACCEPTED[index_type]:
            resolve_scalar_index(index_type, field(coord, cid, f.name))
        else:
            with pytest.raises(MilvusError):
                resolve_scalar_index(index_type, field(coord, cid, f.name))


def test_rule_messages(coord: Coordinator) -> None:
    cid = coord.root.create_collection("default", schema_proto())
    cases = {
        ("STL_SORT", "name"): "STL_SORT are only supported on numeric field",
        ("Trie", "age"): "TRIE are only supported on varchar field",
        ("BITMAP", "id"): "create bitmap index on primary key not supported",
        ("BITMAP", "score"): "bitmap index are only supported on bool, int, string and array field",
        # JSON fields take INVERTED/BITMAP/AUTOINDEX on a path, with a cast type (test_json_index.py)
        ("INVERTED", "meta"): "json index must specify cast type: missing parameter[missing_param=json_cast_type]"
        ": invalid parameter[expected=valid index params][actual=invalid index params]",
        ("STL_SORT", "meta"): "STL_SORT are only supported on numeric field",
        # BITMAP without a cast type is no path index: Milvus's BITMAP rule answers (L0 test_index.py)
        ("BITMAP", "meta"): "bitmap index are only supported on bool, int, string and array field",
        ("NOPE", "age"): "invalid parameter[expected=valid index][actual=invalid index type: NOPE]",
        ("HNSW", "age"): "data type Int8 can't build with this index HNSW",
    }
    for (index_type, name), message in cases.items():
        with pytest.raises(MilvusError) as err:
            coord.index.create_index(cid, name, "", {"index_type": index_type})
        assert err.value.message == message
    assert resolve_scalar_index("", field(coord, cid, "flag")) == "BITMAP"  # AUTOINDEX on bool
    assert resolve_scalar_index("AUTOINDEX", field(coord, cid, "ratio")) == "INVERTED"
    assert resolve_scalar_index("trie", field(coord, cid, "name")) == "TRIE"


def test_scalar_indexes_are_recorded_described_dropped_and_never_block_load(coord: Coordinator) -> None:
    cid = coord.root.create_collection("default", schema_proto())
    coord.index.create_index(cid, "age", "age_idx", {"index_type": "STL_SORT"})
    coord.index.create_index(cid, "name", "", {})  # no type: AUTOINDEX
    with pytest.raises(MilvusError) as err:
        coord.query.load_collection(cid)  # the vector field still needs its index
    assert err.value.code == Code.INDEX_NOT_FOUND and "[v]" in err.value.message
    coord.index.create_index(cid, "v", "", {"index_type": "FLAT", "metric_type": "L2"})
    desc = {d["index_name"]: d for d in coord.index.describe_index(cid)}
    assert desc["age_idx"]["params"] == {"index_type": "STL_SORT"} and desc["age_idx"]["field_name"] == "age"
    assert desc["name"]["params"] == {"index_type": "AUTOINDEX"}
    # a segment gets its scalar builds at once, without an indexnode (built by querynodes at load)
    coll = coord.ctx.catalog.collections[cid]
    part = next(iter(coord.ctx.catalog.partitions[cid]))
    s = SegmentInfo(
        id=1, collection_id=cid, partition_id=part, vchannel=coll.vchannels[0], state=FLUSHED, num_rows=5000
    )
    coord.ctx.catalog.save_segments([s])
    coord.index.schedule()
    done, builds = coord.index.segment_index_state(1, cid)
    assert not done  # the vector build waits for an indexnode
    scalar = [b for b in builds if b["scalar"]]
    assert sorted(b["index_type"] for b in scalar) == ["INVERTED", "STL_SORT"]
    assert all(b["files"] == [] for b in scalar)
    assert segment_version(builds) == ",".join(str(b["build_id"]) for b in sorted(scalar, key=lambda b: b["build_id"]))
    assert coord.index.describe_index(cid, "age_idx")[0]["state"] == "Finished"
    coord.index.drop_index(cid, "age_idx")
    assert [d["index_name"] for d in coord.index.describe_index(cid)] == ["name", "v"]
    with pytest.raises(MilvusError):
        coord.index.create_index(cid, "name", "", {"index_type": "Trie"})  # one index per field
    assert coord.index.create_index(cid, "name", "", {}) == desc["name"]["index_id"]  # the same again: fine


# --- the sorted index ------------------------------------------------------------------------


def data_schema() -> Schema:
    proto = Prepare.get_schema_from_collection_schema("c", CollectionSchema(fields()))
    for i, f in enumerate(proto.fields):
        f.fieldID = 100 + i
    return Schema.from_bytes(proto.SerializeToString())


def columns(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    score = rng.normal(0, 100, n).astype(np.float32)
    score[rng.random(n) < 0.01] = np.nan
    score[::97] = 0.1  # float32(0.1): a constant 0.1 must compare as float32, as numpy's scan does
    names = np.empty(n, dtype=object)
    names[:] = [f"n{v:04d}" for v in rng.integers(0, 3000, n)]
    return {
        "id": np.arange(n, dtype=np.int64),
        "age": rng.integers(-128, 128, n).astype(np.int8),
        "age.valid": rng.random(n) > 0.1,
        "big": rng.integers(-(2**40), 2**40, n),
        "score": score,
        "ratio": rng.random(n),
        "name": names,
        "name.valid": rng.random(n) > 0.05,
    }


EXPRS = [
    "age == 5",
    "age < -120",
    "age >= 120",
    "age > 126.5",
    "age <= -127.5",
    "age == 3.5",
    "age < 1000",
    "age > 1000",
    "age in [1, 2, 300]",
    "big > 1099511000000",
    "big < -1099511000000 and age > 0",
    "score > 250.5",
    "score <= -250",
    "score == 0.1",
    "score <= 0.1 and score > 0.09",
    "score in [0.1, 1.5]",
    "ratio < 0.01 and score > 0",
    "name == 'n0007'",
    "name in ['n0001', 'n0002', 'zz']",
    "name < 'n0010'",
    "name > 'n2990' and age < 0",
    "name >= 'n0' and id < 100",
    "id < 20 and age > 0 and score < 0",
    "100 < big < 2000000000",
]


def test_sorted_index_answers_exactly_as_the_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    schema, n = data_schema(), 20_000
    cols = columns(n)
    indexes = {
        "age": SortedIndex(cols["age"], cols["age.valid"]),
        "big": SortedIndex(cols["big"]),
        "score": SortedIndex(cols["score"]),
        "name": SortedIndex(cols["name"], cols["name.valid"]),
    }
    # at the default thresholds only selective filters take the index
    by_default = {
        expr for expr in EXPRS if indexed_filter(compile_filter(expr, schema), indexes, cols, n) is not None
    }
    assert {"age == 5", "age in [1, 2, 300]", "100 < big < 2000000000", "name < 'n0010'"} <= by_default
    assert "age < 1000" not in by_default  # every row matches: a scan is faster
    assert "ratio < 0.01 and score > 0" not in by_default
    monkeypatch.setattr(scalar_index, "MAX_SHARE", {"compare": 1.0, "in": 1.0, "string": 1.0})
    for expr in EXPRS:
        flt = compile_filter(expr, schema)
        scan = flt.evaluate({k: v for k, v in cols.items() if k in flt.fields}, n)
        got = indexed_filter(flt, indexes, cols, n)
        assert got is not None, expr
        assert got.tolist() == scan.tolist(), expr


def test_unselective_filters_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    schema, n = data_schema(), 10_000
    cols = columns(n)
    indexes = {"big": SortedIndex(cols["big"])}
    flt = compile_filter("big > 0", schema)  # half the rows: a numpy scan is faster
    assert indexed_filter(flt, indexes, cols, n) is None
    monkeypatch.setitem(scalar_index.MAX_SHARE, "compare", 1.0)
    got = indexed_filter(flt, indexes, cols, n)
    assert got is not None and got.tolist() == (cols["big"] > 0).tolist()
    assert indexed_filter(compile_filter("big > 0 or id < 5", schema), indexes, cols, n) is None


def test_loaded_segments_build_their_scalar_indexes() -> None:
    schema, n = data_schema(), 3000
    cols = columns(n, seed=2)
    storage = MemoryStorage()
    binlogs = {}
    ts_field = Field(field_id=1, name="Timestamp", dtype=DataType.INT64)
    storage.put("ts", binlog.encode_column(ts_field, np.ones(n, dtype=np.int64)))
    binlogs[1] = ["ts"]
    for f in schema.fields:
        if f.name in cols:
            storage.put(f.name, binlog.encode_column(f, cols[f.name], cols.get(f.name + ".valid")))
            binlogs[f.field_id] = [f.name]
    seg_rec = {"id": 9, "partition_id": 1, "vchannel": "v", "num_rows": n, "binlogs": binlogs}
    builds = [
        {"build_id": 1, "field_id": schema.get("age").field_id, "files": [], "scalar": True},  # type: ignore[union-attr]
        {"build_id": 2, "field_id": schema.get("name").field_id, "files": [], "scalar": True},  # type: ignore[union-attr]
    ]
    indexed = load_segment(storage, schema, seg_rec, "1,2", builds)
    plain = load_segment(storage, schema, seg_rec, "raw", [])
    assert set(indexed.scalar_indexes) == {"age", "name"} and not plain.scalar_indexes
    assert indexed.memory_bytes() > plain.memory_bytes()
    for expr in ("age == 7", "name in ['n0001', 'n0100']", "age > 100 and name < 'n1000'"):
        flt = compile_filter(expr, schema)
        assert indexed.count(flt, 10) == plain.count(flt, 10) > 0, expr
        got = indexed.retrieve(flt, 10, ["age"], None)
        want = plain.retrieve(flt, 10, ["age"], None)
        assert got["id"].tolist() == want["id"].tolist()
