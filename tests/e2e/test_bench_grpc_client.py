"""The bench's lean gRPC client finds what pymilvus finds, and reports the server's errors.

bench.faiss_ab measures Quiver through bench.grpc_client next to pymilvus; those numbers only
mean something if both clients ask the same question and read the same answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient

from bench.grpc_client import LeanSearchClient, SearchFailed
from tests.e2e.server import StandaloneServer

NAME = "lean_client"
DIM = 16
ROWS = 600


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StandaloneServer, MilvusClient, np.ndarray]]:
    srv = StandaloneServer(Path(tmp_path_factory.mktemp("quiver-lean")) / "data")
    srv.start()
    client = MilvusClient(uri=srv.uri)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection(NAME, schema=schema, consistency_level="Strong")
    base = np.random.default_rng(7).standard_normal((ROWS, DIM), dtype=np.float32)
    client.insert(NAME, [{"id": i, "v": base[i]} for i in range(ROWS)])
    params = client.prepare_index_params()
    params.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_index(NAME, params)
    client.load_collection(NAME)
    yield srv, client, base
    client.close()
    srv.stop()


def test_same_neighbours_and_distances_as_pymilvus_and_the_exact_model(prepared: tuple) -> None:
    srv, client, base = prepared
    queries = np.random.default_rng(8).standard_normal((7, DIM), dtype=np.float32)
    lean = LeanSearchClient(srv.uri, NAME, "v")
    try:
        got = lean.search(queries, 5, {})
    finally:
        lean.close()
    via_pymilvus = client.search(NAME, data=queries, limit=5, anns_field="v", search_params={"metric_type": "L2"})
    exact = ((queries[:, None, :] - base[None, :, :]) ** 2).sum(axis=2)
    assert len(got.ids) == len(got.scores) == 7
    for q in range(7):
        order = np.argsort(exact[q], kind="stable")[:5]
        assert got.ids[q].tolist() == order.tolist()
        assert got.ids[q].tolist() == [h["id"] for h in via_pymilvus[q]]
        np.testing.assert_allclose(got.scores[q], exact[q][order], rtol=1e-4)
        np.testing.assert_allclose(got.scores[q], [h["distance"] for h in via_pymilvus[q]], rtol=1e-6)


def test_a_filter_is_applied(prepared: tuple) -> None:
    srv, _, base = prepared
    lean = LeanSearchClient(srv.uri, NAME, "v")
    try:
        got = lean.search(base[:3], 10, {}, expr="id < 100")
    finally:
        lean.close()
    for q, ids in enumerate(got.ids):
        assert len(ids) == 10 and all(i < 100 for i in ids.tolist())
        assert ids[0] == q  # a stored row is its own nearest neighbour


def test_the_servers_error_is_raised_with_its_code_and_message(prepared: tuple) -> None:
    srv, _, base = prepared
    lean = LeanSearchClient(srv.uri, "no_such_collection", "v")
    try:
        with pytest.raises(SearchFailed) as err:
            lean.search(base[:1], 5, {})
    finally:
        lean.close()
    assert err.value.code == 100
    assert "no_such_collection" in err.value.reason


def test_queries_must_be_rows() -> None:
    lean = LeanSearchClient("http://127.0.0.1:1", NAME, "v")
    try:
        with pytest.raises(ValueError, match="2-d array"):
            lean.request(np.zeros(DIM, dtype=np.float32), 5, {})
    finally:
        lean.close()
