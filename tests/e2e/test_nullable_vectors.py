"""Nullable vector fields (Milvus 2.6), through pymilvus, standalone and as a cluster.

A null vector is sent as nothing in the field's compact payload plus ``valid_data`` (pymilvus does
that for ``None``), comes back as ``None`` from query and search outputs, and is never a search
hit, growing, sealed brute force or indexed. A vector field added to a collection with data is
nullable and null for every row written before it; it can be indexed and searched like any other.
Results are compared with an exact numpy model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient, MilvusException

from tests.e2e.search_data import wait_indexed

DIM = 8
ROWS = 600


def _vec(i: int) -> list[float]:
    phases = np.arange(1, DIM + 1, dtype=np.float64)
    return np.sin(i * 0.37 * phases).astype(np.float32).tolist()


def _present(i: int) -> bool:
    return i % 3 != 0


def _exact(ids: list[int], query: list[float], metric: str, k: int) -> list[int]:
    data = np.array([_vec(i) for i in ids], dtype=np.float64)
    q = np.array(query, dtype=np.float64)
    if metric == "L2":
        order = np.argsort(((data - q) ** 2).sum(axis=1), kind="stable")
    else:  # COSINE
        sims = data @ q / (np.linalg.norm(data, axis=1) * np.linalg.norm(q))
        order = np.argsort(-sims, kind="stable")
    return [ids[j] for j in order[:k]]


def _hits(c: MilvusClient, name: str, field: str, query: list[float], k: int, **extra: Any) -> list[int]:
    res = c.search(name, data=[query], anns_field=field, limit=k, consistency_level="Strong", **extra)
    return [int(h["id"]) for h in res[0]]


@pytest.mark.parametrize("metric,index", [("L2", "FLAT"), ("COSINE", "IVF_FLAT")])
def test_null_vectors_are_stored_returned_as_none_and_never_hit(server: Any, metric: str, index: str) -> None:
    c = MilvusClient(uri=server.uri)
    name = f"nullvec_{metric.lower()}"
    schema = c.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM, nullable=True)
    c.create_collection(name, schema=schema, consistency_level="Strong")
    assert [f.get("nullable") for f in c.describe_collection(name)["fields"]] == [None, True]
    params = c.prepare_index_params()
    params.add_index("v", index_type=index, metric_type=metric, params={"nlist": 8} if index == "IVF_FLAT" else {})
    c.create_index(name, params)
    c.load_collection(name)
    c.insert(name, [{"id": i, "v": _vec(i) if _present(i) else None} for i in range(ROWS)])
    present = [i for i in range(ROWS) if _present(i)]
    query = _vec(10_001)
    search_params = {"params": {"nprobe": 8}}

    # growing: nulls read back as None and never come up in a search, even asking for every row
    got = c.query(name, filter="id in [0, 1, 2, 3]", output_fields=["v"])
    assert {r["id"]: r["v"] is None for r in got} == {0: True, 1: False, 2: False, 3: True}
    assert np.allclose(next(r["v"] for r in got if r["id"] == 1), _vec(1))
    assert _hits(c, name, "v", query, 10, search_params=search_params) == _exact(present, query, metric, 10)
    everything = _hits(c, name, "v", query, 1000, search_params=search_params)
    assert sorted(everything) == present
    assert c.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == ROWS

    # sealed and indexed, after a reload: the same
    c.flush(name)
    wait_indexed(c, name, "v", ROWS)
    c.release_collection(name)
    c.load_collection(name)
    assert _hits(c, name, "v", query, 10, search_params=search_params) == _exact(present, query, metric, 10)
    assert sorted(_hits(c, name, "v", query, 1000, search_params=search_params)) == present
    res = c.search(name, data=[query], anns_field="v", limit=3, output_fields=["v"], search_params=search_params)
    assert all(h["entity"]["v"] is not None for h in res[0])
    got = c.query(name, filter="id in [0, 1]", output_fields=["v"])
    assert {r["id"]: r["v"] is None for r in got} == {0: True, 1: False}
    c.drop_collection(name)
    c.close()


def test_an_added_vector_field_is_null_for_older_rows_and_searchable(server: Any) -> None:
    c = MilvusClient(uri=server.uri)
    name = "nullvec_added"
    schema = c.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    c.create_collection(name, schema=schema, consistency_level="Strong")
    c.insert(name, [{"id": i, "v": _vec(i)} for i in range(200)])
    c.flush(name)  # a sealed segment written before the new field exists
    params = c.prepare_index_params()
    params.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_index(name, params)
    c.load_collection(name)
    c.add_collection_field(name, "w", DataType.FLOAT_VECTOR, dim=DIM, nullable=True)
    c.insert(name, [{"id": i, "v": _vec(i), "w": _vec(i + 7) if i % 2 else None} for i in range(200, 300)])
    got = c.query(name, filter="id in [5, 200, 201]", output_fields=["w"])
    assert {r["id"]: r["w"] is None for r in got} == {5: True, 200: True, 201: False}
    params = c.prepare_index_params()
    params.add_index("w", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 64})
    c.release_collection(name)
    c.create_index(name, params)
    c.flush(name)
    wait_indexed(c, name, "w", 300)
    c.load_collection(name)
    with_w = [i for i in range(200, 300) if i % 2]
    query = _vec(207 + 7)
    data = np.array([_vec(i + 7) for i in with_w], dtype=np.float64)
    order = np.argsort(((data - np.array(query)) ** 2).sum(axis=1), kind="stable")
    want = [with_w[j] for j in order[:5]]
    assert _hits(c, name, "w", query, 5, search_params={"params": {"ef": 64}}) == want
    assert sorted(_hits(c, name, "w", query, 500, search_params={"params": {"ef": 600}})) == with_w
    assert _hits(c, name, "v", _vec(3), 1) == [3]  # the old field is untouched
    c.drop_collection(name)
    c.close()


def test_search_by_primary_keys(server: Any) -> None:
    """Search with ``ids``: each id's own vector is its query (a null one gets an empty result), in
    the order given; duplicate, missing and mistyped ids are refused."""
    c = MilvusClient(uri=server.uri)
    name = "nullvec_by_pk"
    schema = c.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM, nullable=True)
    c.create_collection(name, schema=schema, consistency_level="Strong")
    params = c.prepare_index_params()
    params.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_index(name, params)
    c.load_collection(name)
    c.insert(name, [{"id": i, "v": _vec(i) if _present(i) else None} for i in range(ROWS)])
    present = [i for i in range(ROWS) if _present(i)]
    asked = [5, 3, 10, 6]  # 3 and 6 are null
    res = c.search(name, ids=asked, anns_field="v", limit=4)
    assert len(res) == len(asked)
    for pk, hits in zip(asked, res, strict=True):
        got = [int(h["id"]) for h in hits]
        assert got == (_exact(present, _vec(pk), "L2", 4) if _present(pk) else []), pk
        assert not got or got[0] == pk  # a row is nearest to itself
    assert [len(h) for h in c.search(name, ids=[3, 6], anns_field="v", limit=4)] == [0, 0]
    for bad, text in (([5, 5], "duplicate IDs found in search request"),
                      ([5, 100_000], "some of the provided primary key IDs do not exist: missing IDs = [100000]"),
                      (["5"], "primary key is int64, but IDs type mismatch")):
        with pytest.raises(MilvusException) as err:
            c.search(name, ids=bad, anns_field="v", limit=4)
        assert err.value.code == 1100 and text in err.value.message, err.value.message

    strings = f"{name}_str"
    schema = c.create_schema(auto_id=False)
    schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=16)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    c.create_collection(strings, schema=schema, consistency_level="Strong")
    c.create_index(strings, params)
    c.load_collection(strings)
    c.insert(strings, [{"pk": f"k{i}", "v": _vec(i)} for i in range(50)])
    res = c.search(strings, ids=["k7", "k2"], anns_field="v", limit=1)
    assert [[h["pk"] for h in hits] for hits in res] == [["k7"], ["k2"]]
    for n in (name, strings):
        c.drop_collection(n)
    c.close()
