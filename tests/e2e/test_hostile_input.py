"""Hostile input: hundreds of malformed requests, each answered with a clear Milvus error.

Hand-written and hypothesis-generated malformed gRPC messages (sent with pymilvus's generated
stub, bypassing the client's own validation) and malformed filter expressions hit a real
standalone server. Each must get a non-zero Milvus status code with a message -- never a gRPC
transport error (INTERNAL/UNKNOWN), a hang, a crash, or Quiver's "unexpected error" code, which
means an unhandled exception in a handler. Afterwards the stored data, the collection list and
the index must be exactly as before, and a normal search must return the same hits.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymilvus import DataType, MilvusClient
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc, schema_pb2

from tests.e2e.server import StandaloneServer

DIM = 8
COLL = "hostile"
UNEXPECTED = 65535
VALID_INDEX_TYPES = {"FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "AUTOINDEX", "DISKANN", "SCANN", "STL_SORT",
                     "INVERTED", "TRIE", "BITMAP", "BIN_FLAT", "BIN_IVF_FLAT", "SPARSE_INVERTED_INDEX", "SPARSE_WAND"}
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@dataclass
class Tally:
    """Distinct malformed requests sent (method + serialized bytes) and any bad answers."""

    seen: set[tuple[str, bytes]] = field(default_factory=set)
    rejected: set[tuple[str, bytes]] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)


TALLY = Tally()


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneServer]:
    srv = StandaloneServer(Path(tmp_path_factory.mktemp("quiver-hostile")) / "data")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(hostile_server: StandaloneServer) -> MilvusClient:
    c = MilvusClient(uri=hostile_server.uri)
    schema = c.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("name", DataType.VARCHAR, max_length=16)
    schema.add_field("score", DataType.DOUBLE)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    index = c.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    c.create_collection(COLL, schema=schema, index_params=index, consistency_level="Strong")
    rng = np.random.default_rng(7)
    rows = [{"id": i, "name": f"n{i}", "score": float(i), "vec": rng.random(DIM).tolist()} for i in range(200)]
    c.insert(COLL, rows)
    return c


@pytest.fixture(scope="module")
def stub(hostile_server: StandaloneServer) -> Iterator[milvus_pb2_grpc.MilvusServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{hostile_server.grpc_port}") as ch:
        yield milvus_pb2_grpc.MilvusServiceStub(ch)


def snapshot(c: MilvusClient) -> dict[str, Any]:
    count = c.query(COLL, filter="", output_fields=["count(*)"])[0]["count(*)"]
    ids = sorted(r["id"] for r in c.query(COLL, filter="id >= 0", output_fields=["id"], limit=10000))
    hits = c.search(COLL, data=[[0.5] * DIM], limit=10, output_fields=["score"])
    idx = c.describe_index(COLL, "vec")
    return {
        "count": count,
        "ids": ids,
        "collections": sorted(c.list_collections()),
        "index": {k: v for k, v in idx.items() if k not in ("indexed_rows", "pending_index_rows", "total_rows")},
        "hits": [(h["id"], round(h["distance"], 5)) for h in hits[0]],
    }


def send(stub: milvus_pb2_grpc.MilvusServiceStub, method: str, request: Any, must_fail: bool = True) -> None:
    """Send one request; record it and any answer that is not a clear Milvus error."""
    key = (method, request.SerializeToString(deterministic=True))
    TALLY.seen.add(key)
    try:
        resp = getattr(stub, method)(request, timeout=20)
    except grpc.RpcError as exc:
        TALLY.failures.append(f"{method}: gRPC {exc.code()} {exc.details()!r} for {request!r:.300}")
        return
    st_ = resp if isinstance(resp, common_pb2.Status) else resp.status
    if st_.code != 0:
        TALLY.rejected.add(key)
    if st_.code == UNEXPECTED:
        TALLY.failures.append(f"{method}: unexpected error {st_.reason!r} for {request!r:.300}")
    elif st_.code != 0 and not st_.reason:
        TALLY.failures.append(f"{method}: code {st_.code} without a message for {request!r:.300}")
    elif must_fail and st_.code == 0:
        TALLY.failures.append(f"{method}: malformed request accepted: {request!r:.300}")


def kvs(d: dict[str, str]) -> list[common_pb2.KeyValuePair]:
    return [common_pb2.KeyValuePair(key=k, value=v) for k, v in d.items()]


def float_placeholder(vectors: list[list[float]], tag: str = "$0",
                      ptype: int = common_pb2.PlaceholderType.FloatVector) -> bytes:
    ph = common_pb2.PlaceholderValue(tag=tag, type=ptype)  # type: ignore[arg-type]
    for v in vectors:
        ph.values.append(struct.pack(f"<{len(v)}f", *v))
    return common_pb2.PlaceholderGroup(placeholders=[ph]).SerializeToString()


GOOD_PH = float_placeholder([[0.5] * DIM])


def search_req(params: dict[str, str] | None = None, ph: bytes = GOOD_PH, name: str = COLL, dsl: str = "",
               output: list[str] | None = None) -> milvus_pb2.SearchRequest:
    p = {"anns_field": "vec", "topk": "5", "metric_type": "L2", "params": "{}"}
    p.update(params or {})
    return milvus_pb2.SearchRequest(collection_name=name, dsl=dsl, dsl_type=common_pb2.DslType.BoolExprV1,
                                    placeholder_group=ph, search_params=kvs(p), output_fields=output or [])


def query_req(expr: str, params: dict[str, str] | None = None, name: str = COLL,
              output: list[str] | None = None) -> milvus_pb2.QueryRequest:
    return milvus_pb2.QueryRequest(collection_name=name, expr=expr, output_fields=output or ["id"],
                                   query_params=kvs(params or {}))


# --- hand-written -----------------------------------------------------------------------------------------

HUGE = ["-1", "0", "16385", "99999999999999999999", "-99999999999999999999", "1e308", "nan", "inf", "abc", "",
        "1.5", "[1]", "{}", "null", "true", "\u00e9", "0x10", " 5", "5 ", "--1"]


def handwritten_search() -> list[milvus_pb2.SearchRequest]:
    reqs = [search_req({"topk": v}) for v in HUGE]
    reqs += [search_req({"offset": v}) for v in HUGE if v not in ("0", "")]
    reqs += [search_req({"round_decimal": v}) for v in ("abc", "1e308", "[1]", "99999999999999999999")]
    reqs += [search_req({"params": v}) for v in ("{", "[1,2]", "\"x\"", "null", "1", '{"nprobe": -1}',
                                                   '{"nprobe": "x"}', '{"ef": 1e999}', "\u0000", '{"radius": "x"}')]
    reqs += [search_req({"metric_type": v}) for v in ("IP", "COSINE", "HAMMING", "BOGUS", "", "l2 ")]
    reqs += [search_req({"anns_field": v}) for v in ("score", "id", "nope", "\u2603", "vec ")]
    reqs += [search_req(ph=p) for p in (
        b"", b"\x00", b"garbage bytes", b"\xff" * 40,
        float_placeholder([[0.5] * (DIM - 1)]), float_placeholder([[0.5] * (DIM * 2)]), float_placeholder([]),
        float_placeholder([[0.5] * DIM], ptype=common_pb2.PlaceholderType.BinaryVector),
        float_placeholder([[0.5] * DIM], ptype=common_pb2.PlaceholderType.Int64),
        float_placeholder([[0.5] * DIM], ptype=common_pb2.PlaceholderType.VarChar),
        float_placeholder([[float("nan")] * DIM]),
        common_pb2.PlaceholderGroup(placeholders=[common_pb2.PlaceholderValue(
            tag="$0", type=common_pb2.PlaceholderType.FloatVector, values=[b"\x01\x02\x03"])]).SerializeToString(),
    )]
    reqs += [search_req(name=n) for n in ("", "missing", " ", "\u00e9\u00e9", "a" * 1000, "../x", "\x00")]
    reqs += [search_req(dsl=e) for e in ("id >", "nope == 1", "vec > 1", "score like 'x%'", "((((")]
    reqs += [search_req(output=o) for o in (["nope"], ["vec", "vec2"], ["*", "ghost"], [""])]
    return reqs


BAD_EXPRS = [
    "id >", "id in [1,", "id == 'a'", "name > 3", "score in ['x']", "nope == 1", "vec == 1", "id == 1 and",
    "(id == 1", "id == 1)", "not", "id ==== 1", "name like 3", "json_contains(id, 1)", "array_length(name) > 1",
    "id in {1}", "id == 99999999999999999999999", "score == 1e99999", "id % 0 == 1", "\u0000", "'unterminated",
    "id == {x}", "id like 'a%'", "exists id", "id is null and", "text_match(name)", "random_fn(id)", "id // 2 == 1",
    "id == 1 ||| id == 2", "id @ 3", "1 == 1 == 1 ==", "id in [1, 'a']", "id == true", "score == \"x\"",
]


def handwritten_query() -> list[milvus_pb2.QueryRequest]:
    reqs = [query_req(e) for e in BAD_EXPRS]
    reqs += [query_req("id > 0", {"limit": v}) for v in HUGE if v not in ("0", "")]
    reqs += [query_req("id > 0", {"limit": "5", "offset": v}) for v in ("-1", "abc", "99999999999999999999", "1e9")]
    reqs += [query_req("", {})]
    reqs += [query_req("id > 0", output=o) for o in (["nope"], ["count(*)", "id"], ["count(id)"], ["sum(score)"])]
    reqs += [query_req("id > 0", name=n) for n in ("", "missing", "\x00", "a" * 500)]
    return reqs


def col(name: str, dtype: int, values: Any = None, dim: int = 0) -> schema_pb2.FieldData:
    fd = schema_pb2.FieldData(field_name=name, type=dtype)  # type: ignore[arg-type]
    if dtype == DataType.INT64:
        fd.scalars.long_data.data.extend(values or [])
    elif dtype == DataType.DOUBLE:
        fd.scalars.double_data.data.extend(values or [])
    elif dtype == DataType.VARCHAR:
        fd.scalars.string_data.data.extend(values or [])
    elif dtype == DataType.FLOAT_VECTOR:
        fd.vectors.dim = dim
        fd.vectors.float_vector.data.extend(values or [])
    return fd


def good_cols(n: int = 1) -> dict[str, schema_pb2.FieldData]:
    return {
        "id": col("id", DataType.INT64, list(range(5000, 5000 + n))),
        "name": col("name", DataType.VARCHAR, ["x"] * n),
        "score": col("score", DataType.DOUBLE, [1.0] * n),
        "vec": col("vec", DataType.FLOAT_VECTOR, [0.1] * (DIM * n), DIM),
    }


def insert_req(cols: dict[str, schema_pb2.FieldData], num_rows: int = 1, name: str = COLL) -> milvus_pb2.InsertRequest:
    return milvus_pb2.InsertRequest(collection_name=name, fields_data=list(cols.values()), num_rows=num_rows)


def handwritten_insert() -> list[milvus_pb2.InsertRequest]:
    reqs = []
    for dim in (0, 1, DIM - 1, DIM + 1, 32768):
        reqs.append(insert_req(good_cols() | {"vec": col("vec", DataType.FLOAT_VECTOR, [0.1] * max(dim, 1), dim)}))
    reqs.append(insert_req(good_cols() | {"vec": col("vec", DataType.FLOAT_VECTOR, [0.1] * 5, DIM)}))
    reqs.append(insert_req(good_cols() | {"vec": col("vec", DataType.FLOAT_VECTOR, [float("nan")] * DIM, DIM)}))
    reqs.append(insert_req(good_cols() | {"vec": col("vec", DataType.FLOAT_VECTOR, [float("inf")] * DIM, DIM)}))
    for missing in ("id", "name", "score", "vec"):
        reqs.append(insert_req({k: v for k, v in good_cols().items() if k != missing}))
    reqs.append(insert_req(good_cols() | {"score": col("score", DataType.VARCHAR, ["high"])}))
    reqs.append(insert_req(good_cols() | {"id": col("id", DataType.VARCHAR, ["a"])}))
    reqs.append(insert_req(good_cols() | {"id": col("id", DataType.DOUBLE, [1.0])}))
    reqs.append(insert_req(good_cols() | {"name": col("name", DataType.VARCHAR, ["x" * 17])}))
    reqs.append(insert_req(good_cols() | {"extra": col("extra", DataType.INT64, [1])}))
    reqs.append(insert_req(good_cols() | {"id": col("id", DataType.INT64, [1, 2])}))
    reqs.append(insert_req(good_cols(), num_rows=0))
    reqs.append(insert_req(good_cols(), num_rows=5))
    reqs.append(insert_req(good_cols(), num_rows=2**31))
    reqs.append(insert_req(good_cols(), name=""))
    reqs.append(insert_req(good_cols(), name="missing"))
    reqs.append(insert_req({}, num_rows=1))
    reqs.append(insert_req(good_cols() | {"dup": col("id", DataType.INT64, [6000])}))
    reqs.append(insert_req(good_cols() | {"name": schema_pb2.FieldData(field_name="name", type=DataType.VARCHAR)}))
    return reqs


def handwritten_delete() -> list[milvus_pb2.DeleteRequest]:
    # Deleting by any valid expression is legal (score > 1, id == 10**23 deletes nothing): only invalid ones here.
    exprs = [e for e in BAD_EXPRS[:20] if "9999" not in e] + ["", "name == 'n1' or", "id in [1 2]"]
    reqs = [milvus_pb2.DeleteRequest(collection_name=COLL, expr=e) for e in exprs]
    reqs += [milvus_pb2.DeleteRequest(collection_name=n, expr="id in [1]") for n in ("", "missing", "\x00")]
    reqs += [milvus_pb2.DeleteRequest(collection_name=COLL, expr="id in [1]", partition_name="ghost")]
    return reqs


def schema_bytes(fields: list[schema_pb2.FieldSchema], name: str = "newc") -> bytes:
    return schema_pb2.CollectionSchema(name=name, fields=fields).SerializeToString()


def fs(name: str, dtype: int, pk: bool = False, params: dict[str, str] | None = None,
       auto: bool = False) -> schema_pb2.FieldSchema:
    return schema_pb2.FieldSchema(name=name, data_type=dtype, is_primary_key=pk,  # type: ignore[arg-type]
                                  type_params=kvs(params or {}), autoID=auto)


def handwritten_create_collection() -> list[milvus_pb2.CreateCollectionRequest]:
    pk = fs("pk", DataType.INT64, pk=True)
    bad_schemas: list[tuple[str, bytes]] = [
        ("newc", b""), ("newc", b"\xff\xfe garbage"), ("newc", schema_bytes([])),
        ("newc", schema_bytes([fs("v", DataType.FLOAT_VECTOR, params={"dim": "8"})])),
        ("newc", schema_bytes([pk, pk, fs("v", DataType.FLOAT_VECTOR, params={"dim": "8"})])),
        ("newc", schema_bytes([pk, fs("pk2", DataType.INT64, pk=True), fs("v", DataType.FLOAT_VECTOR,
                                                                          params={"dim": "8"})])),
        ("newc", schema_bytes([fs("pk", DataType.DOUBLE, pk=True), fs("v", DataType.FLOAT_VECTOR,
                                                                      params={"dim": "8"})])),
        ("newc", schema_bytes([fs("pk", DataType.VARCHAR, pk=True), fs("v", DataType.FLOAT_VECTOR,
                                                                       params={"dim": "8"})])),
        ("newc", schema_bytes([fs("pk", DataType.VARCHAR, pk=True, params={"max_length": "-1"}),
                               fs("v", DataType.FLOAT_VECTOR, params={"dim": "8"})])),
        ("newc", schema_bytes([fs("pk", DataType.VARCHAR, pk=True, params={"max_length": "abc"}),
                               fs("v", DataType.FLOAT_VECTOR, params={"dim": "8"})])),
        ("newc", schema_bytes([pk, fs("s", 999), fs("v", DataType.FLOAT_VECTOR, params={"dim": "8"})])),
        ("newc", schema_bytes([pk, fs("", DataType.INT64), fs("v", DataType.FLOAT_VECTOR, params={"dim": "8"})])),
        ("newc", schema_bytes([pk, fs("1bad", DataType.INT64), fs("v", DataType.FLOAT_VECTOR,
                                                                   params={"dim": "8"})])),
        ("newc", schema_bytes([pk, fs("v\u2603", DataType.FLOAT_VECTOR, params={"dim": "8"})])),
        ("", schema_bytes([pk, fs("v", DataType.FLOAT_VECTOR, params={"dim": "8"})], name="")),
        (COLL, schema_bytes([pk, fs("v", DataType.FLOAT_VECTOR, params={"dim": "8"})], name=COLL)),
        ("a" * 300, schema_bytes([pk, fs("v", DataType.FLOAT_VECTOR, params={"dim": "8"})], name="a" * 300)),
        ("bad name!", schema_bytes([pk, fs("v", DataType.FLOAT_VECTOR, params={"dim": "8"})], name="bad name!")),
        ("\u00e9t\u00e9", schema_bytes([pk, fs("v", DataType.FLOAT_VECTOR, params={"dim": "8"})],
                                       name="\u00e9t\u00e9")),
    ]
    for dim in ("0", "-1", "abc", "1e3", "99999999999", "", "32769", "8.5"):
        bad_schemas.append(("newc", schema_bytes([pk, fs("v", DataType.FLOAT_VECTOR, params={"dim": dim})])))
    reqs = [milvus_pb2.CreateCollectionRequest(collection_name=n, schema=s) for n, s in bad_schemas]
    reqs += [milvus_pb2.CreateCollectionRequest(collection_name="newc", shards_num=n,
                                                schema=schema_bytes([pk, fs("v", DataType.FLOAT_VECTOR,
                                                                            params={"dim": "8"})]))
             for n in (10**6, 2**31 - 1)]  # <= 0 means the default, as in Milvus
    return reqs


def index_req(fieldname: str, params: dict[str, str], name: str = COLL, index_name: str = "") -> Any:
    return milvus_pb2.CreateIndexRequest(collection_name=name, field_name=fieldname, extra_params=kvs(params),
                                         index_name=index_name)


def handwritten_create_index() -> list[milvus_pb2.CreateIndexRequest]:
    reqs = [index_req("vec", {"index_type": t, "metric_type": "L2", "params": "{}"}) for t in ("BOGUS", "", "flat ")]
    reqs += [index_req("vec", {"index_type": "HNSW", "metric_type": "L2", "params": p})
             for p in ("{", "[]", '{"M": -1, "efConstruction": 10}', '{"M": "x"}', '{"M": 1e99}', "null")]
    reqs += [index_req("vec", {"index_type": "IVF_FLAT", "metric_type": m, "params": '{"nlist": 8}'})
             for m in ("HAMMING", "JACCARD", "BOGUS")]
    reqs += [index_req(f, {"index_type": "FLAT", "metric_type": "L2", "params": "{}"}) for f in ("", "nope", "\x00")]
    reqs += [index_req("score", {"index_type": "HNSW", "metric_type": "L2", "params": '{"M": 8}'})]
    reqs += [index_req("vec", {"index_type": "FLAT", "metric_type": "L2", "params": "{}"}, name=n)
             for n in ("", "missing")]
    return reqs


# --- the tests --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def before(client: MilvusClient) -> dict[str, Any]:
    return snapshot(client)


def test_handwritten(stub: milvus_pb2_grpc.MilvusServiceStub, before: dict[str, Any]) -> None:
    for r in handwritten_search():
        send(stub, "Search", r, must_fail=False)
    for q in handwritten_query():
        send(stub, "Query", q, must_fail=False)
    for i in handwritten_insert():
        send(stub, "Insert", i)
    for d in handwritten_delete():
        send(stub, "Delete", d)
    for c in handwritten_create_collection():
        send(stub, "CreateCollection", c)
    for x in handwritten_create_index():
        send(stub, "CreateIndex", x)
    assert not TALLY.failures, "\n".join(TALLY.failures)


text = st.text(max_size=40)
numbers = st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True).map(repr), text)


@SETTINGS
@given(params=st.dictionaries(st.sampled_from(["topk", "offset", "round_decimal", "params", "metric_type",
                                               "anns_field", "radius", "range_filter", "group_by_field", "x"]),
                              numbers.map(str), max_size=6),
       ph=st.one_of(st.binary(max_size=64),
                    st.lists(st.lists(st.floats(width=32), max_size=12), max_size=3).map(float_placeholder)))
def test_generated_search(stub: milvus_pb2_grpc.MilvusServiceStub, before: dict[str, Any],
                          params: dict[str, str], ph: bytes) -> None:
    send(stub, "Search", search_req(params, ph=ph), must_fail=False)
    assert not TALLY.failures, TALLY.failures[-1]


VALID_EXPRS = ["id > 5", "id in [1, 2, 3]", "name == 'n1'", "score >= 1.5 and id < 10", "name like 'n1%'",
               "not (id == 3)", "id % 2 == 0", "score between 1 and 3" if False else "1 < score < 3"]


@st.composite
def mutated_expr(draw: st.DrawFn) -> str:
    base = draw(st.sampled_from(VALID_EXPRS))
    pos = draw(st.integers(0, len(base)))
    op = draw(st.sampled_from(["insert", "delete", "replace", "truncate", "dup"]))
    junk = draw(st.text(alphabet="()[]{}'\"=<>!&|,.%*+-/ \\$#@~`^", min_size=1, max_size=4) | st.text(max_size=4))
    if op == "insert":
        return base[:pos] + junk + base[pos:]
    if op == "delete":
        return base[:pos] + base[pos + len(junk):]
    if op == "replace":
        return base[:pos] + junk + base[pos + len(junk):]
    if op == "truncate":
        return base[:pos]
    return base + " " + base


@SETTINGS
@given(expr=st.one_of(st.text(max_size=60), mutated_expr()),
       limit=st.one_of(st.none(), st.integers(-5, 20000).map(str), text))
def test_generated_query(stub: milvus_pb2_grpc.MilvusServiceStub, before: dict[str, Any],
                         expr: str, limit: str | None) -> None:
    send(stub, "Query", query_req(expr, {"limit": limit} if limit is not None else {"limit": "10"}), must_fail=False)
    assert not TALLY.failures, TALLY.failures[-1]


@SETTINGS
@given(expr=st.one_of(st.text(max_size=60), mutated_expr()))
def test_generated_delete_on_missing_collection(stub: milvus_pb2_grpc.MilvusServiceStub, before: dict[str, Any],
                                                expr: str) -> None:
    # Aim at a collection that does not exist: a mutation can yield a valid delete that must not touch data.
    send(stub, "Delete", milvus_pb2.DeleteRequest(collection_name="no_such_collection", expr=expr))
    assert not TALLY.failures, TALLY.failures[-1]


field_names = st.sampled_from(["id", "name", "score", "vec", "ghost", ""]) | text
dtypes = st.sampled_from([int(DataType.INT64), int(DataType.DOUBLE), int(DataType.VARCHAR),
                          int(DataType.FLOAT_VECTOR), 0, 999])


@st.composite
def garbage_field(draw: st.DrawFn) -> schema_pb2.FieldData:
    n = draw(st.integers(0, 3))
    dtype = draw(dtypes)
    name = draw(field_names)
    if dtype == DataType.INT64:
        return col(name, dtype, draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)))
    if dtype == DataType.DOUBLE:
        return col(name, dtype, draw(st.lists(st.floats(), min_size=n, max_size=n)))
    if dtype == DataType.VARCHAR:
        return col(name, dtype, draw(st.lists(text, min_size=n, max_size=n)))
    if dtype == DataType.FLOAT_VECTOR:
        dim = draw(st.integers(-3, 40).filter(lambda d: d != DIM))  # never the right dim: must always fail
        return col(name, dtype, draw(st.lists(st.floats(width=32), max_size=20)), dim)
    return schema_pb2.FieldData(field_name=name, type=dtype)  # type: ignore[arg-type]


@SETTINGS
@given(fields=st.lists(garbage_field(), max_size=5), num_rows=st.integers(0, 2**32 - 1))
def test_generated_insert(stub: milvus_pb2_grpc.MilvusServiceStub, before: dict[str, Any],
                          fields: list[schema_pb2.FieldData], num_rows: int) -> None:
    # garbage_field never draws the right dim, so a vec column is always wrong; without one a row is incomplete.
    send(stub, "Insert", milvus_pb2.InsertRequest(collection_name=COLL, fields_data=fields, num_rows=num_rows))
    assert not TALLY.failures, TALLY.failures[-1]


@SETTINGS
@given(name=text, schema=st.one_of(
    st.binary(max_size=80),
    st.lists(st.builds(fs, field_names, dtypes, st.booleans(),
                       st.dictionaries(st.sampled_from(["dim", "max_length", "x"]), numbers.map(str), max_size=2)),
             max_size=4).map(lambda fields: schema_bytes([f for f in fields if not f.is_primary_key] +
                                                         [fs("p", DataType.INT64, pk=True),
                                                          fs("p", DataType.INT64, pk=True)]))))
def test_generated_create_collection(stub: milvus_pb2_grpc.MilvusServiceStub, before: dict[str, Any],
                                     name: str, schema: bytes) -> None:
    # Random bytes or a schema with two primary keys: never a valid collection.
    send(stub, "CreateCollection", milvus_pb2.CreateCollectionRequest(collection_name=name, schema=schema))
    assert not TALLY.failures, TALLY.failures[-1]


@SETTINGS
@given(fieldname=field_names,
       index_type=text.filter(lambda t: t.strip() != "" and t.upper().strip() not in VALID_INDEX_TYPES),
       metric=text, params=st.one_of(text, st.dictionaries(text, numbers, max_size=3).map(json.dumps)))
def test_generated_create_index(stub: milvus_pb2_grpc.MilvusServiceStub, before: dict[str, Any],
                                fieldname: str, index_type: str, metric: str, params: str) -> None:
    req = index_req(fieldname, {"index_type": index_type, "metric_type": metric, "params": params})
    send(stub, "CreateIndex", req)
    assert not TALLY.failures, TALLY.failures[-1]


def test_regression_delete_pk_beyond_int64(stub: milvus_pb2_grpc.MilvusServiceStub, before: dict[str, Any]) -> None:
    """Was an unexpected OverflowError: a pk literal outside int64 names no row, so nothing is deleted."""
    resp = stub.Delete(milvus_pb2.DeleteRequest(collection_name=COLL, expr="id in [99999999999999999999999, -1]"))
    assert resp.status.code == 0, resp.status.reason
    assert resp.delete_cnt == 1  # only -1 is an int64 (it matches no stored row either)


@pytest.mark.parametrize("value", ["99999999999999999999", "1e308", "7", "-2"])
def test_regression_round_decimal_out_of_range(stub: milvus_pb2_grpc.MilvusServiceStub, value: str) -> None:
    """Was an unexpected OverflowError from numpy: round_decimal must be -1 or 0..6, as in Milvus."""
    resp = stub.Search(search_req({"round_decimal": value}))
    assert resp.status.code == 1100
    assert "round_decimal" in resp.status.reason


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN"])
def test_regression_query_limit_infinity(stub: milvus_pb2_grpc.MilvusServiceStub, value: str) -> None:
    """Was an unexpected OverflowError: JSON's Infinity as a limit is an invalid parameter."""
    resp = stub.Query(query_req("id > 0", {"limit": value}))
    assert resp.status.code == 1100
    assert "limit" in resp.status.reason


def test_schemathesis_rest(hostile_server: StandaloneServer, before: dict[str, Any]) -> None:
    """Schemathesis fuzzes every operation of the REST OpenAPI document: a JSON envelope, never a 500."""
    import schemathesis

    base = f"http://127.0.0.1:{hostile_server.http_port}"
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    problems: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]

        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            nonlocal calls
            # Keep the fuzzed calls away from the collection the other tests compare before and after.
            if isinstance(case.body, dict) and "collectionName" in case.body:
                case.body["collectionName"] = "rest_fuzz_" + str(case.body["collectionName"])[:20]
            response = case.call(base_url=base, timeout=20)
            calls += 1
            if response.status_code >= 500:
                problems.append(f"{case.method} {case.path} -> {response.status_code}: {response.text[:200]}")
                return
            if not case.path.startswith("/v2/"):
                return  # /healthz and /metrics answer plain text by design
            try:
                envelope = response.json()
            except ValueError:
                problems.append(f"{case.method} {case.path} -> not JSON: {response.text[:200]}")
                return
            if not isinstance(envelope, dict) or "code" not in envelope:
                problems.append(f"{case.method} {case.path} -> no Milvus envelope: {response.text[:200]}")
            elif envelope["code"] != 0 and not envelope.get("message"):
                problems.append(f"{case.method} {case.path} -> code {envelope['code']} without a message")

        fuzz()
    assert calls > 0
    assert not problems, "\n".join(problems[:20])


def test_zz_nothing_changed(client: MilvusClient, before: dict[str, Any]) -> None:
    """Runs last in the module: at least 300 distinct malformed requests, and the server is unharmed."""
    print(f"distinct malformed requests rejected: {len(TALLY.rejected)} (sent {len(TALLY.seen)})")
    assert len(TALLY.rejected) >= 300, len(TALLY.rejected)
    assert not TALLY.failures, "\n".join(TALLY.failures)
    assert snapshot(client) == before

