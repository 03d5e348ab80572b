"""Index handling as Milvus's own L0 suite checks it (docs/milvus-l0.md), each rule pinned here.

- index names follow validateIndexName (letters, digits, ``_``; a letter or ``_`` first; at most
  255 bytes) with Milvus's "Invalid index name: ..." message, and a refused name stores nothing;
- an unknown index type reads ``invalid parameter[expected=valid index][actual=invalid index type: X]``,
  a scalar type on a vector field is refused the way Milvus's checkTrain refuses it;
- on a loaded collection only vector indexes are refused a drop; scalar ones go, and queries
  keep giving the same answers without them;
- DescribeIndex gives the pairs the client sent back (``params`` stays the client's JSON).
"""

from __future__ import annotations

import grpc
import pytest
from pymilvus import Collection, DataType, MilvusClient, MilvusException, connections
from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc

pytestmark = pytest.mark.e2e
DIM = 8
NB = 3000


def _fresh(client: MilvusClient, name: str, sparse: bool = False) -> None:
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("age", DataType.INT64)
    schema.add_field("tag", DataType.VARCHAR, max_length=16)
    schema.add_field("score", DataType.FLOAT)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    if sparse:
        schema.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
    client.create_collection(name, schema=schema, consistency_level="Strong")


def _error(call: object, *args: object, **kwargs: object) -> MilvusException:
    with pytest.raises(MilvusException) as err:
        call(*args, **kwargs)  # type: ignore[operator]
    return err.value


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("12name", "The first character of a index name must be an underscore or letter."),
        ("n12 ame", "Index name can only contain numbers, letters, and underscores."),
        ("n-ame", "Index name can only contain numbers, letters, and underscores."),
        ("nam(e)", "Index name can only contain numbers, letters, and underscores."),
        ("name\u4e2d\u6587", "Index name can only contain numbers, letters, and underscores."),
        ("name%$#", "Index name can only contain numbers, letters, and underscores."),
        ("a" * 256, "The length of a index name must be less than 255 characters."),
    ],
)
def test_index_names_are_validated_like_milvus(client: MilvusClient, name: str, why: str) -> None:
    _fresh(client, "rules")
    p = client.prepare_index_params()
    p.add_index("vec", index_type="FLAT", metric_type="L2", index_name=name)
    err = _error(client.create_index, "rules", p)
    assert err.code == 1100 and err.message == f"Invalid index name: {name}. {why}"
    assert client.list_indexes("rules") == []  # nothing stored
    client.drop_index("rules", name)  # dropping a name that cannot exist succeeds, as in Milvus
    ok = client.prepare_index_params()
    ok.add_index("vec", index_type="FLAT", metric_type="L2", index_name="_ok_Name9")
    client.create_index("rules", ok)
    assert client.list_indexes("rules") == ["_ok_Name9"]


def test_unknown_and_misplaced_index_types(client: MilvusClient) -> None:
    _fresh(client, "rules", sparse=True)
    for field, index_type in (("vec", "non_exiting_type"), ("vec", "100"), ("age", "NOPE")):
        p = client.prepare_index_params()
        p.add_index(field, index_type=index_type, metric_type="L2" if field == "vec" else "")
        err = _error(client.create_index, "rules", p)
        assert err.message == (f"invalid parameter[expected=valid index][actual=invalid index type: {index_type}]"), (
            field
        )
    for metric, message in (
        (None, "metric type not set for vector index"),
        ("L2", "only IP&BM25 is the supported metric type for sparse index"),
        ("IP", "data type SparseFloatVector can't build with this index BITMAP"),
    ):
        p = client.prepare_index_params()
        p.add_index("sp", index_type="BITMAP", **({"metric_type": metric} if metric else {}))
        assert _error(client.create_index, "rules", p).message == message
    p = client.prepare_index_params()
    p.add_index("score", index_type="BITMAP")
    err = _error(client.create_index, "rules", p)
    assert err.message == "bitmap index are only supported on bool, int, string and array field"
    assert client.list_indexes("rules") == []


def test_scalar_index_dropped_on_loaded_collection(client: MilvusClient) -> None:
    _fresh(client, "rules")
    rows = [
        {"id": i, "age": i % 97, "tag": f"t{i % 13}", "score": i / 7, "vec": [float(i % 11)] * DIM} for i in range(NB)
    ]
    client.insert("rules", rows)
    client.flush("rules")
    p = client.prepare_index_params()
    p.add_index("vec", index_type="FLAT", metric_type="L2", index_name="vec_idx")
    p.add_index("age", index_type="STL_SORT", index_name="age_idx")
    p.add_index("tag", index_type="BITMAP", index_name="tag_idx")
    client.create_index("rules", p)
    client.load_collection("rules")
    expr = "age < 3 and tag in ['t1', 't2']"
    want = sorted(r["id"] for r in rows if r["age"] < 3 and r["tag"] in ("t1", "t2"))

    def ids() -> list[int]:
        return sorted(r["id"] for r in client.query("rules", filter=expr, output_fields=["id"], limit=NB))

    assert ids() == want
    cid = client.describe_collection("rules")["collection_id"]
    err = _error(client.drop_index, "rules", "vec_idx")
    assert err.code == 1100 and err.message == f"vector index cannot be dropped on loaded collection: {cid}"
    assert sorted(client.list_indexes("rules")) == ["age_idx", "tag_idx", "vec_idx"]  # nothing dropped
    client.drop_index("rules", "age_idx")
    client.drop_index("rules", "tag_idx")
    assert client.list_indexes("rules") == ["vec_idx"]
    assert ids() == want  # the querynodes answer the same without the scalar indexes
    # re-create on the loaded collection (Milvus's test_bitmap_on_empty_collection), load again, drop again
    p = client.prepare_index_params()
    p.add_index("tag", index_type="BITMAP", index_name="tag_idx")
    client.create_index("rules", p)
    client.load_collection("rules")
    assert ids() == want
    client.drop_index("rules", "tag_idx")
    assert ids() == want
    client.release_collection("rules")
    client.drop_index("rules", "vec_idx")  # released: the vector index may go
    assert client.list_indexes("rules") == []


def test_describe_index_gives_the_params_as_sent(client: MilvusClient, server: object) -> None:
    _fresh(client, "rules")
    p = client.prepare_index_params()
    p.add_index("vec", index_type="IVF_SQ8", metric_type="COSINE", index_name="v", params={"nlist": 64})
    p.add_index("age", index_type="STL_SORT", index_name="a")
    client.create_index("rules", p)
    desc = client.describe_index("rules", "v")
    assert desc["index_type"] == "IVF_SQ8" and desc["metric_type"] == "COSINE"
    # MilvusClient flattens build params into pairs of their own: they come back as those pairs
    assert desc["nlist"] == "64" and "params" not in desc
    assert client.describe_index("rules", "a")["index_type"] == "STL_SORT"
    # the ORM view Milvus's suite compares against (Collection.indexes / Collection.index())
    alias = "rules_orm"
    connections.connect(alias=alias, uri=server.uri)  # type: ignore[attr-defined]
    try:
        coll = Collection("rules", using=alias)
        coll.drop_index(index_name="v")
        coll.create_index(
            "vec", {"index_type": "IVF_SQ8", "metric_type": "COSINE", "params": {"nlist": 64}}, index_name="v"
        )  # the ORM sends build params as one JSON pair
        by_name = {i.index_name: i.params for i in coll.indexes}
        assert by_name["v"] == {"index_type": "IVF_SQ8", "metric_type": "COSINE", "params": {"nlist": 64}}
        assert by_name["a"] == {"index_type": "STL_SORT"}
        coll.drop_index(index_name="v")
        coll.create_index("vec", {})  # AUTOINDEX with no params
        assert coll.index(index_name="vec").params == {"index_type": "AUTOINDEX", "metric_type": "COSINE"}
    finally:
        connections.disconnect(alias)


@pytest.mark.parametrize("metric", ["SUBSTRUCTURE", "SUPERSTRUCTURE"])
def test_bin_flat_structure_metrics(client: MilvusClient, metric: str) -> None:
    name = "rules_bin"
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("bv", DataType.BINARY_VECTOR, dim=16)
    client.create_collection(name, schema=schema, consistency_level="Strong")
    rows = [{"id": i, "bv": bytes([i % 256, (i * 7) % 256])} for i in range(2000)]
    client.insert(name, rows)
    client.flush(name)
    bad = client.prepare_index_params()
    bad.add_index("bv", index_type="BIN_IVF_FLAT", metric_type=metric, params={"nlist": 16})
    err = _error(client.create_index, name, bad)
    assert err.message == f"metric type {metric} not found or not supported, supported: [HAMMING JACCARD]"
    p = client.prepare_index_params()
    p.add_index("bv", index_type="BIN_FLAT", metric_type=metric)
    client.create_index(name, p)
    client.load_collection(name)
    q = bytes([0b0000_0101, 0b0000_0011]) if metric == "SUBSTRUCTURE" else bytes([0b1111_0111, 0b1011_1111])
    qi = int.from_bytes(q, "little")

    def matches(v: bytes) -> bool:
        x = int.from_bytes(v, "little")
        return (x & qi) == (qi if metric == "SUBSTRUCTURE" else x)

    want = {r["id"] for r in rows if matches(r["bv"])}
    assert 0 < len(want) < 1000
    hits = client.search(name, data=[q], anns_field="bv", limit=1000, search_params={"metric_type": metric})[0]
    assert {h["id"] for h in hits} == want and all(h["distance"] == 0.0 for h in hits)
    client.drop_collection(name)


@pytest.mark.parametrize("dynamic", [True, False])
def test_json_path_indexes(client: MilvusClient, dynamic: bool) -> None:
    name = "rules_json"
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=dynamic)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    if not dynamic:
        schema.add_field("my_json", DataType.JSON)
    client.create_collection(name, schema=schema, consistency_level="Strong")
    values: list[object] = [{"a": {"b": i}} for i in range(NB)] + [7, {}, {"a": [1, 2]}, {"a": [{"b": 1}]}]
    rows = [{"id": i, "vec": [float(i % 5)] * DIM, "my_json": v} for i, v in enumerate(values)]
    client.insert(name, rows)
    client.flush(name)
    exprs = ["my_json['a']['b'] < 10", "my_json['a']['b'] in [3, 5, 2999]", "my_json['a'][0]['b'] == 1"]

    def answers() -> list[list[int]]:
        return [
            sorted(r["id"] for r in client.query(name, filter=e, output_fields=["id"], limit=NB + 10)) for e in exprs
        ]

    p = client.prepare_index_params()
    p.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_index(name, p)
    client.load_collection(name)
    before = answers()
    assert before[0] == list(range(10)) and before[2] == [NB + 3]
    p = client.prepare_index_params()
    for path in ("my_json['a']['b']", "my_json['a']", "my_json", "my_json['a'][0]['b']"):
        p.add_index("my_json", index_type="INVERTED", params={"json_cast_type": "double", "json_path": path})
    client.create_index(name, p)
    client.create_index(name, p)  # the same indexes again: nothing new
    prefix = "$meta/my_json" if dynamic else "my_json"
    names = sorted(client.list_indexes(name))
    assert names == sorted(["vec", prefix, f"{prefix}/a", f"{prefix}/a/b", f"{prefix}/a/0/b"])
    desc = client.describe_index(name, f"{prefix}/a/b")
    assert desc["field_name"] == "my_json" and desc["index_type"] == "INVERTED"
    assert desc["json_path"] == "my_json['a']['b']" and desc["json_cast_type"] == "double"
    client.release_collection(name)
    client.load_collection(name)
    assert answers() == before  # the same rows with the indexes as without
    bad = client.prepare_index_params()
    bad.add_index("my_json", index_type="INVERTED", params={"json_path": "my_json['zz']"})
    err = _error(client.create_index, name, bad)
    assert err.message.startswith("json index must specify cast type")
    client.drop_index(name, f"{prefix}/a/b")  # a scalar index: allowed while loaded
    assert f"{prefix}/a/b" not in client.list_indexes(name)
    assert answers() == before
    client.drop_collection(name)


def test_get_index_statistics_answers_as_describe_index(client: MilvusClient, server: object) -> None:
    """The raw GetIndexStatistics RPC (no pymilvus wrapper calls it) gives DescribeIndex's rows."""
    _fresh(client, "rules")
    client.insert(
        "rules", [{"id": i, "age": i, "tag": "t", "score": 0.5, "vec": [float(i % 7)] * DIM} for i in range(50)]
    )
    client.flush("rules")
    p = client.prepare_index_params()
    p.add_index("vec", index_type="FLAT", metric_type="L2", index_name="v")
    client.create_index("rules", p)
    channel = grpc.insecure_channel(server.uri.removeprefix("http://"))  # type: ignore[attr-defined]
    try:
        stub = milvus_pb2_grpc.MilvusServiceStub(channel)
        described = stub.DescribeIndex(milvus_pb2.DescribeIndexRequest(collection_name="rules", index_name="v"))
        stats = stub.GetIndexStatistics(milvus_pb2.GetIndexStatisticsRequest(collection_name="rules", index_name="v"))
        assert stats.status.code == 0, stats.status.reason
        assert list(stats.index_descriptions) == list(described.index_descriptions)
        (only,) = stats.index_descriptions
        assert (only.index_name, only.field_name, only.total_rows) == ("v", "vec", 50)
        missing = stub.GetIndexStatistics(
            milvus_pb2.GetIndexStatisticsRequest(collection_name="rules", index_name="nope")
        )
        assert missing.status.code == 700 and "index not found[collection=rules]" in missing.status.reason
        unknown = stub.GetIndexStatistics(
            milvus_pb2.GetIndexStatisticsRequest(collection_name="no_such", index_name="v")
        )
        assert unknown.status.code == 100 and "no_such" in unknown.status.reason
    finally:
        channel.close()
