"""Every field type of this release round-trips and filters; every index type and metric searches
correctly (the inserted vector finds itself, results match brute force where the index is exact)."""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient

from tests.e2e.search_data import wait_indexed

N, DIM = 2000, 16



def _all_types(client: MilvusClient) -> list[dict]:  # type: ignore[type-arg]
    schema = client.create_schema(auto_id=True, enable_dynamic_field=False)
    schema.add_field("pk", DataType.INT64, is_primary=True, auto_id=True)
    schema.add_field("b", DataType.BOOL)
    schema.add_field("i8", DataType.INT8)
    schema.add_field("i16", DataType.INT16)
    schema.add_field("i32", DataType.INT32)
    schema.add_field("i64", DataType.INT64)
    schema.add_field("f", DataType.FLOAT)
    schema.add_field("d", DataType.DOUBLE)
    schema.add_field("s", DataType.VARCHAR, max_length=20)
    schema.add_field("j", DataType.JSON)
    schema.add_field("bv", DataType.BINARY_VECTOR, dim=32)
    schema.add_field("fv", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("fv", index_type="FLAT", metric_type="L2")
    index.add_index("bv", index_type="BIN_FLAT", metric_type="HAMMING")
    client.create_collection("types", schema=schema, index_params=index, consistency_level="Strong")
    rng = np.random.default_rng(11)
    rows = [
        {
            "b": i % 2 == 0,
            "i8": (i % 200) - 100,
            "i16": i * 3 - 1000,
            "i32": i * 1000,
            "i64": (1 << 60) + i,
            "f": i / 4,
            "d": i / 3,
            "s": f"s{i:04d}",
            "j": {"n": i, "tag": ["a", "b"][i % 2], "nested": {"x": i % 7}},
            "bv": rng.integers(0, 256, 4, dtype=np.uint8).tobytes(),
            "fv": rng.random(DIM).tolist(),
        }
        for i in range(100)
    ]
    res = client.insert("types", rows)
    assert res["insert_count"] == 100
    ids = list(res["ids"])
    for row, pk in zip(rows, ids, strict=True):
        row["pk"] = pk
    return rows


def test_every_type_round_trips(client: MilvusClient) -> None:
    rows = _all_types(client)
    got = client.query("types", filter="i32 >= 0", output_fields=["*"])
    assert len(got) == 100
    by_pk = {r["pk"]: r for r in got}
    for row in rows:
        back = by_pk[row["pk"]]
        for name in ("b", "i8", "i16", "i32", "i64", "s", "j"):
            assert back[name] == row[name], name
        assert back["f"] == pytest.approx(row["f"]) and back["d"] == pytest.approx(row["d"])
        assert np.allclose(back["fv"], row["fv"], atol=1e-6)
        assert bytes(back["bv"][0]) == row["bv"]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("b == true", lambda r: r["b"]),
        ("i8 < -50", lambda r: r["i8"] < -50),
        ("i16 in [-1000, -997, 5]", lambda r: r["i16"] in (-1000, -997, 5)),
        ("i64 > 1152921504606846900", lambda r: r["i64"] > 1152921504606846900),
        ("f >= 10.5 and d < 20", lambda r: r["f"] >= 10.5 and r["d"] < 20),
        ('s like "s005%"', lambda r: r["s"].startswith("s005")),
        ("(i32 + 5) % 3 == 0 || not b", lambda r: (r["i32"] + 5) % 3 == 0 or not r["b"]),
        ('j["tag"] == "b" && j["nested"]["x"] > 3', lambda r: r["j"]["tag"] == "b" and r["j"]["nested"]["x"] > 3),
        ("s not in ['s0001', 's0002']", lambda r: r["s"] not in ("s0001", "s0002")),
    ],
)
def test_filters_on_every_type(client: MilvusClient, expr: str, expected) -> None:  # type: ignore[no-untyped-def]
    everything = client.query("types", filter="i32 >= 0", output_fields=["*"])
    want = sorted(r["pk"] for r in everything if expected(r))
    got = client.query("types", filter=expr, output_fields=["pk"])
    assert sorted(r["pk"] for r in got) == want


def test_binary_vector_search(client: MilvusClient) -> None:
    rows = client.query("types", filter="i32 >= 0", output_fields=["bv", "pk"], limit=5)
    probe = bytes(rows[3]["bv"][0])
    hits = client.search("types", data=[probe], anns_field="bv", limit=3, search_params={"metric_type": "HAMMING"})
    assert hits[0][0]["pk"] == rows[3]["pk"] and hits[0][0]["distance"] == 0


CASES = [(t, m) for t in ("FLAT", "IVF_FLAT", "HNSW") for m in ("L2", "IP", "COSINE")]
# Milvus 2.6's other dense types, one metric each (docs/index-types.md: how each is built)
CASES += [("IVF_RABITQ", "IP"), ("SCANN", "COSINE"), ("DISKANN", "L2")]
BUILD = {
    "IVF_FLAT": {"nlist": 32},
    "HNSW": {"M": 16, "efConstruction": 64},
    "IVF_RABITQ": {"nlist": 32, "refine": "true", "refine_type": "FP16"},
    "SCANN": {"nlist": 32},
    "DISKANN": {"max_degree": 32, "search_list_size": 64},
}
SEARCH = {
    "IVF_FLAT": {"nprobe": 32},
    "HNSW": {"ef": 64},
    "IVF_RABITQ": {"nprobe": 32, "refine_k": 40, "rbq_bits_query": 8},
    "SCANN": {"nprobe": 32, "reorder_k": 200},
    "DISKANN": {"search_list": 64},
}


@pytest.mark.parametrize(("index_type", "metric"), CASES)
def test_index_types_and_metrics(client: MilvusClient, index_type: str, metric: str) -> None:
    name = f"idx_{index_type.lower()}_{metric.lower()}"
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    params = BUILD.get(index_type, {})
    index = client.prepare_index_params()
    index.add_index("v", index_type=index_type, metric_type=metric, params=params)
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    rng = np.random.default_rng(5)
    data = rng.standard_normal((N, DIM)).astype(np.float32)
    client.insert(name, [{"id": i, "v": data[i]} for i in range(N)])
    client.flush(name)  # sealed, indexed segments next to nothing growing
    wait_indexed(client, name, "v", N)
    client.release_collection(name)
    client.load_collection(name)
    search = SEARCH.get(index_type, {})
    queries = data[:20]
    hits = client.search(name, data=queries.tolist(), limit=5, search_params={"metric_type": metric, "params": search})
    if metric == "L2":
        exact = ((data[None, :, :] - queries[:, None, :]) ** 2).sum(-1)
        order = np.argsort(exact, axis=1)
    else:
        norm = data / np.linalg.norm(data, axis=1, keepdims=True) if metric == "COSINE" else data
        qn = queries / np.linalg.norm(queries, axis=1, keepdims=True) if metric == "COSINE" else queries
        exact = -(qn @ norm.T)
        order = np.argsort(exact, axis=1)
    recall = np.mean([len({h["id"] for h in hits[i]} & set(order[i, :5].tolist())) / 5 for i in range(20)])
    assert recall >= (1.0 if index_type == "FLAT" else 0.9), recall
    for i in range(20):
        if metric != "IP":  # with IP another vector can beat a query's own
            assert hits[i][0]["id"] == i
        dists = [h["distance"] for h in hits[i]]
        assert dists == sorted(dists, reverse=metric != "L2")
    assert client.describe_index(name, "v")["index_type"] == index_type
    client.drop_collection(name)
