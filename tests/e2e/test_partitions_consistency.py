"""Partitions (create, load, search and query inside, drop rules) and the consistency levels."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient, MilvusException

from tests.e2e.server import StandaloneServer

DIM = 8


@pytest.fixture(scope="module")
def client(server: StandaloneServer) -> MilvusClient:
    c = MilvusClient(uri=server.uri)
    schema = c.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    index = c.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_collection("parts", schema=schema, index_params=index, consistency_level="Strong")
    c.create_partition("parts", "p1")
    c.create_partition("parts", "p2")
    rng = np.random.default_rng(2)
    for pid, name in ((0, "_default"), (1, "p1"), (2, "p2")):
        rows = [{"id": pid * 100 + i, "v": rng.random(DIM).tolist()} for i in range(50)]
        c.insert("parts", rows, partition_name=name)
    return c


def test_partition_listing_and_stats(client: MilvusClient) -> None:
    assert client.list_partitions("parts") == ["_default", "p1", "p2"]
    assert client.has_partition("parts", "p1") and not client.has_partition("parts", "p9")
    client.flush("parts")
    assert client.get_partition_stats("parts", "p2")["row_count"] == 50
    assert client.get_collection_stats("parts")["row_count"] == 150


def test_search_and_query_in_partitions(client: MilvusClient) -> None:
    rows = client.query("parts", filter="id >= 0", partition_names=["p1"], output_fields=["id"])
    assert sorted(r["id"] for r in rows) == list(range(100, 150))
    hits = client.search("parts", data=[[0.5] * DIM], limit=10, partition_names=["p2", "_default"])
    assert all(h["id"] < 100 or h["id"] >= 200 for h in hits[0]) and len(hits[0]) == 10
    with pytest.raises(MilvusException) as err:
        client.query("parts", filter="id >= 0", partition_names=["nope"])
    assert err.value.code == 200


def test_partial_load_and_drop_rules(client: MilvusClient) -> None:
    client.release_collection("parts")
    client.load_partitions("parts", ["p1"])
    assert client.get_load_state("parts", partition_name="p1")["state"].name == "Loaded"
    assert client.get_load_state("parts", partition_name="p2")["state"].name == "NotLoad"
    with pytest.raises(MilvusException) as err:
        client.query("parts", filter="id >= 0", partition_names=["p2"])
    assert err.value.code == 201
    rows = client.query("parts", filter="id >= 0", output_fields=["id"])
    assert sorted(r["id"] for r in rows) == list(range(100, 150))
    with pytest.raises(MilvusException) as err:
        client.drop_partition("parts", "p1")
    assert "release" in str(err.value)
    with pytest.raises(MilvusException):
        client.drop_partition("parts", "_default")
    client.drop_partition("parts", "p2")
    assert client.list_partitions("parts") == ["_default", "p1"]
    client.load_collection("parts")


def test_consistency_levels(client: MilvusClient) -> None:
    client.insert("parts", [{"id": 9000, "v": [0.0] * DIM}])
    # Strong: the write is visible to the very next read
    assert client.query("parts", filter="id == 9000", consistency_level="Strong")
    # Bounded and Eventually: visible once the channel's timetick passed it, which is quick
    for level in ("Bounded", "Eventually", "Session"):
        deadline = time.monotonic() + 5
        while not client.query("parts", filter="id == 9000", consistency_level=level):
            assert time.monotonic() < deadline, level
            time.sleep(0.05)
    client.delete("parts", ids=[9000])
    assert client.query("parts", filter="id == 9000", consistency_level="Strong") == []
