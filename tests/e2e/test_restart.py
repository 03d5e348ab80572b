"""Durability: every acknowledged insert and delete, the collection, its index and its load
state survive kill -9 and a clean SIGTERM restart on the same data directory."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient

from tests.e2e.server import StandaloneServer

DIM = 16


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[StandaloneServer]:
    srv = StandaloneServer(tmp_path / "data")
    srv.start()
    yield srv
    srv.stop()


def _schema(client: MilvusClient):  # type: ignore[no-untyped-def]
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tag", DataType.VARCHAR, max_length=32)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    return schema


def _rows(ids: np.ndarray, vectors: np.ndarray) -> list[dict]:  # type: ignore[type-arg]
    return [{"id": int(i), "tag": f"t{i % 5}", "vec": vectors[k].tolist()} for k, i in enumerate(ids)]


def _wait_loaded(client: MilvusClient, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get_load_state(name)["state"].name == "Loaded":
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} was not loaded again within {timeout}s")


def _check(client: MilvusClient, alive: set[int], vectors: dict[int, np.ndarray]) -> None:
    _wait_loaded(client, "durable")
    count = client.query("durable", filter="", output_fields=["count(*)"], consistency_level="Strong")
    assert count[0]["count(*)"] == len(alive)
    got = client.query("durable", filter="id >= 0", output_fields=["tag"], consistency_level="Strong")
    assert sorted(r["id"] for r in got) == sorted(alive)
    probe = sorted(alive)[len(alive) // 2]
    hits = client.search(
        "durable", data=[vectors[probe].tolist()], limit=1, anns_field="vec", consistency_level="Strong"
    )
    assert hits[0][0]["id"] == probe
    idx = client.describe_index("durable", index_name="vec")
    assert idx["index_type"] == "IVF_FLAT"


def test_kill9_and_sigterm_keep_everything(fresh_server: StandaloneServer) -> None:
    client = MilvusClient(uri=fresh_server.uri)
    client.create_collection("durable", schema=_schema(client), consistency_level="Strong")
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((3000, DIM)).astype(np.float32)
    vectors = {i: vecs[i] for i in range(3000)}
    # batch A: flushed and indexed
    client.insert("durable", _rows(np.arange(0, 2000), vecs[:2000]))
    client.flush("durable")
    index_params = client.prepare_index_params()
    index_params.add_index("vec", index_type="IVF_FLAT", metric_type="L2", params={"nlist": 16})
    client.create_index("durable", index_params)
    client.load_collection("durable")
    # batch B: acknowledged but never flushed
    client.insert("durable", _rows(np.arange(2000, 3000), vecs[2000:]))
    client.delete("durable", ids=[1, 2, 3, 2500, 2501])
    client.delete("durable", filter="id in [10, 2990]")
    alive = set(range(3000)) - {1, 2, 3, 2500, 2501, 10, 2990}
    _check(client, alive, vectors)
    client.close()

    fresh_server.kill()
    fresh_server.start()
    client = MilvusClient(uri=fresh_server.uri)
    assert client.list_collections() == ["durable"]
    _check(client, alive, vectors)
    # more writes after the crash, then a clean restart
    client.upsert("durable", _rows(np.array([5]), np.ones((1, DIM), dtype=np.float32)))
    client.delete("durable", ids=[6])
    alive.discard(6)
    vectors[5] = np.ones(DIM, dtype=np.float32)
    client.close()

    fresh_server.stop()
    fresh_server.start()
    client = MilvusClient(uri=fresh_server.uri)
    _check(client, alive, vectors)
    got = client.query("durable", ids=[5], output_fields=["vec"], consistency_level="Strong")
    assert len(got) == 1 and np.allclose(got[0]["vec"], 1.0)
    client.close()
