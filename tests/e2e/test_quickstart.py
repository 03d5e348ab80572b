"""The MilvusClient quick-start flow against a real standalone server.

create_collection(dimension=...) (auto index, dynamic fields, loaded at once), insert rows
with extra keys, search with and without a filter, query by filter and by ids, delete by ids
and by filter, drop.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus import MilvusClient

DIM = 64
SUBJECTS = ["history", "biology", "math"]



@pytest.fixture(scope="module")
def docs(client: MilvusClient) -> np.ndarray:
    client.create_collection(collection_name="demo_collection", dimension=DIM, consistency_level="Strong")
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((30, DIM)).astype(np.float32)
    data = [
        {"id": i, "vector": vectors[i].tolist(), "text": f"doc {i}", "subject": SUBJECTS[i % 3]}
        for i in range(len(vectors))
    ]
    res = client.insert(collection_name="demo_collection", data=data)
    assert res["insert_count"] == 30
    return vectors


def test_collection_is_ready(client: MilvusClient, docs: np.ndarray) -> None:
    assert client.has_collection("demo_collection")
    assert "demo_collection" in client.list_collections()
    desc = client.describe_collection("demo_collection")
    assert desc["enable_dynamic_field"] is True
    names = [f["name"] for f in desc["fields"]]
    assert names == ["id", "vector"]
    assert client.get_load_state("demo_collection")["state"].name == "Loaded"


def test_search(client: MilvusClient, docs: np.ndarray) -> None:
    res = client.search(
        collection_name="demo_collection", data=[docs[5].tolist()], limit=2, output_fields=["text", "subject"]
    )
    assert len(res) == 1 and len(res[0]) == 2
    top = res[0][0]
    assert top["id"] == 5
    assert top["distance"] == pytest.approx(1.0, abs=1e-4)  # COSINE similarity with itself
    assert top["entity"]["text"] == "doc 5"
    assert top["entity"]["subject"] == "math"


def test_search_with_filter(client: MilvusClient, docs: np.ndarray) -> None:
    res = client.search(
        collection_name="demo_collection",
        data=[docs[5].tolist()],
        filter="subject == 'biology'",
        limit=5,
        output_fields=["text", "subject"],
    )
    assert len(res[0]) == 5
    assert all(h["entity"]["subject"] == "biology" for h in res[0])
    sims = docs @ docs[5] / (np.linalg.norm(docs, axis=1) * np.linalg.norm(docs[5]))
    bio = [i for i in range(30) if i % 3 == 1]
    best = sorted(bio, key=lambda i: -sims[i])[:5]
    assert [h["id"] for h in res[0]] == best


def test_query(client: MilvusClient, docs: np.ndarray) -> None:
    rows = client.query(
        collection_name="demo_collection", filter="subject == 'history'", output_fields=["text", "subject"]
    )
    assert sorted(r["id"] for r in rows) == list(range(0, 30, 3))
    got = client.query(collection_name="demo_collection", ids=[0, 2], output_fields=["vector", "text", "subject"])
    assert [r["id"] for r in got] == [0, 2]
    assert np.allclose(got[1]["vector"], docs[2], atol=1e-6)
    assert got[1]["text"] == "doc 2"
    assert client.get(collection_name="demo_collection", ids=[4])[0]["subject"] == "biology"


def test_delete(client: MilvusClient, docs: np.ndarray) -> None:
    res = client.delete(collection_name="demo_collection", ids=[0, 2])
    assert res["delete_count"] == 2
    assert client.query(collection_name="demo_collection", ids=[0, 2]) == []
    client.delete(collection_name="demo_collection", filter="subject == 'biology'")
    left = client.query(collection_name="demo_collection", filter="id >= 0", output_fields=["subject"])
    assert sorted(r["id"] for r in left) == [i for i in range(30) if i % 3 != 1 and i not in (0, 2)]
    count = client.query(collection_name="demo_collection", filter="", output_fields=["count(*)"])
    assert count[0]["count(*)"] == len(left)


def test_drop(client: MilvusClient, docs: np.ndarray) -> None:
    client.drop_collection("demo_collection")
    assert not client.has_collection("demo_collection")
