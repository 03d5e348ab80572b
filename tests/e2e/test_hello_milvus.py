"""pymilvus's examples/hello_milvus.py flow, step by step, against a real standalone server.

VARCHAR primary key + DOUBLE + FLOAT_VECTOR(8), 3000 rows, flush, IVF_FLAT, load, search,
query with output fields and pagination, filtered search, delete, drop — each step checked
against what the same data must give.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections, utility

from tests.e2e.server import StandaloneServer

warnings.filterwarnings("ignore", category=DeprecationWarning)
NUM, DIM = 3000, 8


@pytest.fixture(scope="module")
def hello(server: StandaloneServer):  # type: ignore[no-untyped-def]
    connections.connect("default", host="127.0.0.1", port=str(server.grpc_port))
    assert not utility.has_collection("hello_milvus")
    fields = [
        FieldSchema(name="pk", dtype=DataType.VARCHAR, is_primary=True, auto_id=False, max_length=100),
        FieldSchema(name="random", dtype=DataType.DOUBLE),
        FieldSchema(name="embeddings", dtype=DataType.FLOAT_VECTOR, dim=DIM),
    ]
    schema = CollectionSchema(fields, "hello_milvus is the simplest demo to introduce the APIs")
    coll = Collection("hello_milvus", schema, consistency_level="Strong")
    rng = np.random.default_rng(seed=19530)
    entities = [[str(i) for i in range(NUM)], rng.random(NUM).tolist(), rng.random((NUM, DIM))]
    insert_result = coll.insert(entities)
    yield coll, entities, insert_result
    connections.disconnect("default")


def test_insert_and_flush(hello) -> None:  # type: ignore[no-untyped-def]
    coll, entities, insert_result = hello
    assert insert_result.insert_count == NUM
    assert list(insert_result.primary_keys[:3]) == ["0", "1", "2"]
    coll.flush()
    assert coll.num_entities == NUM
    assert utility.has_collection("hello_milvus")


def test_index_and_load(hello) -> None:  # type: ignore[no-untyped-def]
    coll, _, _ = hello
    coll.create_index("embeddings", {"index_type": "IVF_FLAT", "metric_type": "L2", "params": {"nlist": 128}})
    coll.load()
    assert utility.load_state("hello_milvus").name == "Loaded"
    idx = coll.index()
    assert idx.params["index_type"] == "IVF_FLAT"


def test_search_finds_itself(hello) -> None:  # type: ignore[no-untyped-def]
    coll, entities, _ = hello
    vectors = entities[-1][-2:]
    res = coll.search(
        vectors, "embeddings", {"metric_type": "L2", "params": {"nprobe": 10}}, limit=3, output_fields=["random"]
    )
    assert len(res) == 2
    for i, hits in enumerate(res):
        assert len(hits) == 3
        assert hits[0].id == str(NUM - 2 + i)
        assert hits[0].distance == pytest.approx(0.0, abs=1e-5)
        assert hits[0].entity.get("random") == pytest.approx(entities[1][NUM - 2 + i])
        dists = [h.distance for h in hits]
        assert dists == sorted(dists)
        # the exact answer, by brute force
        data = np.asarray(entities[2])
        exact = np.argsort(((data - data[NUM - 2 + i]) ** 2).sum(1))[:3]
        assert [h.id for h in hits] == [str(j) for j in exact]


def test_query_with_output_fields(hello) -> None:  # type: ignore[no-untyped-def]
    coll, entities, _ = hello
    rows = coll.query(expr="random > 0.5", output_fields=["random", "embeddings"])
    expected = {str(i) for i, r in enumerate(entities[1]) if r > 0.5}
    assert {r["pk"] for r in rows} == expected
    row = rows[0]
    i = int(row["pk"])
    assert row["random"] == pytest.approx(entities[1][i])
    assert np.allclose(row["embeddings"], entities[2][i], atol=1e-6)


def test_query_pagination(hello) -> None:  # type: ignore[no-untyped-def]
    coll, entities, _ = hello
    r1 = coll.query(expr="random > 0.5", limit=4, output_fields=["random"])
    r2 = coll.query(expr="random > 0.5", offset=1, limit=3, output_fields=["random"])
    assert len(r1) == 4 and len(r2) == 3
    assert [r["pk"] for r in r1[1:]] == [r["pk"] for r in r2]
    assert all(r["random"] > 0.5 for r in r1)


def test_filtered_search(hello) -> None:  # type: ignore[no-untyped-def]
    coll, entities, _ = hello
    res = coll.search(
        entities[-1][-2:],
        "embeddings",
        {"metric_type": "L2", "params": {"nprobe": 10}},
        limit=3,
        expr="random > 0.5",
        output_fields=["random"],
    )
    for hits in res:
        assert len(hits) == 3
        assert all(h.entity.get("random") > 0.5 for h in hits)


def test_delete_is_visible_at_once(hello) -> None:  # type: ignore[no-untyped-def]
    coll, _, insert_result = hello
    ids = insert_result.primary_keys
    expr = f'pk in ["{ids[0]}" , "{ids[1]}"]'
    assert len(coll.query(expr=expr, output_fields=["random", "embeddings"])) == 2
    coll.delete(expr)
    assert coll.query(expr=expr, output_fields=["random", "embeddings"]) == []
    count = coll.query(expr="", output_fields=["count(*)"])[0]["count(*)"]
    assert count == NUM - 2


def test_drop_collection(hello) -> None:  # type: ignore[no-untyped-def]
    utility.drop_collection("hello_milvus")
    assert not utility.has_collection("hello_milvus")
