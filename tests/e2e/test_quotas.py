"""Quotas and limits end to end (standalone and a local cluster), over pymilvus and REST v2.

A server with tiny limits (common/config.py QuotaConfig) checks each limit's Milvus code and
message: database, collection (per database and in total), partition, shard, field, vector field
and dimension counts; insert and message sizes; topK / nq / query window; token-bucket rates per
collection and cluster-wide. A second server with the deny switches on refuses every write and
read with "quota exceeded". Rates are so small (0.1 requests or vectors per second, a few KB/s)
that the second call of a pair is refused however slow the machine is; no test asserts a duration.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException

from quiver.devcluster import ClusterLayout
from tests.e2e.cluster_server import ClusterServer
from tests.e2e.conftest import MODES
from tests.e2e.rest_call import post_v2
from tests.e2e.server import StandaloneServer

pytestmark = pytest.mark.e2e

DIM = 8
LIMITS: dict[str, Any] = {
    "max_database_num": 8,
    "max_collection_num": 9,
    "max_collection_num_per_db": 3,
    "max_partition_num": 3,
    "max_shard_num": 2,
    "max_field_num": 4,
    "max_vector_field_num": 1,
    "max_dimension": 16,
    "server_max_recv_size": 256 * 1024,
    "max_insert_size": 40_000,
    "top_k": 50,
    "nq": 3,
    "max_query_result_window": 60,
    "dml_enabled": True,
    "insert_rate_collection": 0.0002,  # MB/s: 209.7152 bytes a second
    "upsert_rate_collection": 0.0002,
    "delete_rate": 0.00005,  # cluster-wide: 52.4288 bytes a second
    "dql_enabled": True,
    "search_rate_collection": 0.1,  # vectors a second, per collection
    "query_rate": 0.1,  # requests a second, cluster-wide
}
DENY: dict[str, Any] = {"deny_writing": True, "deny_reading": True}
NO_RETRY = {"retry_on_rate_limit": False}


def _start(mode: str, workdir: Path, quota: dict[str, Any]) -> StandaloneServer | ClusterServer:
    if mode == "standalone":
        path = workdir / "quiver.yaml"
        path.write_text(yaml.safe_dump({"quota": quota}))
        env = {"QUIVER_CONFIG": str(path)}
        srv: StandaloneServer | ClusterServer = StandaloneServer(workdir / "data", extra_env=env)
    else:
        srv = ClusterServer(workdir)
        srv.cluster.extra_config = {"quota": quota}
    srv.start()
    return srv


@pytest.fixture(scope="module", params=MODES)
def limited(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    srv = _start(request.param, Path(tmp_path_factory.mktemp(f"quota-{request.param}")), LIMITS)
    yield srv
    srv.stop()


@pytest.fixture(scope="module", params=MODES)
def denied(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    srv = _start(request.param, Path(tmp_path_factory.mktemp(f"deny-{request.param}")), DENY)
    yield srv
    srv.stop()


def _client(srv: Any) -> MilvusClient:
    return MilvusClient(uri=srv.uri)


def _fails(code: int, call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(MilvusException) as exc:
        call(*args, **kwargs)
    assert exc.value.code == code, exc.value
    return str(exc.value.message)


def _make(client: MilvusClient, name: str, **kwargs: Any) -> None:
    client.create_collection(name, dimension=DIM, **kwargs)


def _rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": start + i, "vector": [random.random() for _ in range(DIM)]} for i in range(n)]


def test_schema_limits(limited: Any) -> None:
    client = _client(limited)
    client.create_database("schema_db")
    client.use_database("schema_db")
    message = _fails(1100, client.create_collection, "shards", dimension=DIM, shards_num=3)
    assert message == "maximum shards's number should be limited to 2"
    message = _fails(1100, client.create_collection, "wide", dimension=17)
    assert "invalid dimension: 17 of field vector. float vector dimension should be in range 2 ~ 16" in message
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v1", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("v2", DataType.FLOAT_VECTOR, dim=DIM)
    message = _fails(1100, client.create_collection, "two_vectors", schema=schema)
    assert message == "maximum vector field's number should be limited to 1"
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    for name in ("a", "b", "c"):
        schema.add_field(name, DataType.INT64)
    message = _fails(1100, client.create_collection, "five_fields", schema=schema)
    assert message == "maximum field's number should be limited to 4"
    assert client.list_collections() == []
    client.close()


def test_request_size_and_read_shape_limits(limited: Any) -> None:
    client = _client(limited)
    client.create_database("shape_db")
    client.use_database("shape_db")
    _make(client, "shape")
    client.insert("shape", _rows(10))
    message = _fails(1102, client.insert, "shape", _rows(1500, 100))  # ~60 KB > maxInsertSize 40000
    assert message == "parameter too large[message=insert request size exceeds maxInsertSize]"
    with pytest.raises((MilvusException, grpc.RpcError)) as exc:  # ~300 KB > serverMaxRecvSize
        client.insert("shape", [{"id": i, "vector": [0.5] * DIM, "pad": "x" * 300} for i in range(1000)])
    assert "larger than max" in str(exc.value) or "RESOURCE_EXHAUSTED" in str(exc.value)
    reply = post_v2(limited, "entities/insert", {"dbName": "shape_db", "collectionName": "shape",
                                               "data": [{"id": 5000 + i, "vector": [0.1] * DIM} for i in range(1500)]})
    assert reply["code"] == 1102 and "maxInsertSize" in reply["message"], reply
    big = [{"id": 7000 + i, "vector": [0.1] * DIM, "pad": "x" * 300} for i in range(1000)]
    reply = post_v2(limited, "entities/insert", {"dbName": "shape_db", "collectionName": "shape", "data": big})
    assert reply["code"] == 1102 and "exceeds serverMaxRecvSize 262144" in reply["message"], reply
    client.load_collection("shape")
    vectors = [[0.1] * DIM for _ in range(4)]
    message = _fails(1100, client.search, "shape", vectors, limit=1)
    assert message.startswith("nq (number of search vector per search request) should be in range [1, 3], but got 4")
    message = _fails(1100, client.search, "shape", vectors[:1], limit=51)
    assert "topk [51] is invalid, it should be in range [1, 50], but got 51" in message
    message = _fails(1100, client.query, "shape", filter="id >= 0", limit=40, offset=30)
    assert "(offset+limit) should be in range [1, 60], but got 70" in message
    client.flush("shape")
    assert client.get_collection_stats("shape")["row_count"] == 10  # nothing refused was written
    # (no query here: the cluster-wide query rate belongs to the rate test)
    client.close()


def test_rates_per_collection_and_cluster_wide(limited: Any) -> None:
    client = _client(limited)
    client.create_database("rate_db")
    client.use_database("rate_db")
    for name in ("ra", "rb"):
        _make(client, name)
    rows = _rows(300)  # ~12 KB: about a minute of the collection insert rate
    client.insert("ra", rows, **NO_RETRY)
    message = _fails(8, client.insert, "ra", _rows(5, 1000), **NO_RETRY)
    assert message.endswith("rate limit exceeded[rate=209.7152]")
    client.insert("rb", rows, **NO_RETRY)  # another collection has its own bucket
    reply = post_v2(limited, "entities/insert", {"dbName": "rate_db", "collectionName": "rb",
                                               "data": _rows(2, 2000)})
    assert reply["code"] == 8 and "rate limit exceeded[rate=209.7152]" in reply["message"], reply
    client.upsert("ra", _rows(300), **NO_RETRY)  # upserts have their own rate
    assert _fails(8, client.upsert, "ra", _rows(1), **NO_RETRY).endswith("rate limit exceeded[rate=209.7152]")
    client.delete("ra", ids=list(range(1000)), **NO_RETRY)  # ~5 KB: over the cluster delete rate 52.4288 B/s
    assert _fails(8, client.delete, "rb", ids=[1], **NO_RETRY).endswith("rate limit exceeded[rate=52.4288]")
    for name in ("ra", "rb"):
        client.load_collection(name)
    vector = [[0.1] * DIM]
    client.search("ra", vector, limit=1, **NO_RETRY)
    assert _fails(8, client.search, "ra", vector, limit=1, **NO_RETRY).endswith("rate limit exceeded[rate=0.1]")
    client.search("rb", vector, limit=1, **NO_RETRY)  # per-collection search rate
    client.query("ra", filter="id >= 0", limit=1, **NO_RETRY)
    assert _fails(8, client.query, "rb", filter="id >= 0", limit=1, **NO_RETRY).endswith("[rate=0.1]")
    reply = post_v2(limited, "entities/query", {"dbName": "rate_db", "collectionName": "ra", "filter": "id >= 0",
                                                "limit": 5})
    assert reply["code"] == 8 and reply["message"].endswith("rate limit exceeded[rate=0.1]"), reply
    client.close()


def test_collection_database_and_partition_counts(limited: Any) -> None:
    """Runs last in this module: it fills the databases and collections up to their limits."""
    client = _client(limited)
    client.use_database("default")
    for i in range(3):
        _make(client, f"per_db_{i}")
    message = _fails(102, _make, client, "per_db_3")
    assert message == "exceeded the limit number of collections[dbName=default][limit=3]"
    reply = post_v2(limited, "collections/create", {"collectionName": "per_db_rest", "dimension": DIM})
    assert reply["code"] == 102 and "[limit=3]" in reply["message"], reply
    # partitions: _default + 2
    client.create_partition("per_db_0", "p1")
    client.create_partition("per_db_0", "p2")
    message = _fails(1100, client.create_partition, "per_db_0", "p3")
    assert message == "partition number (3) exceeds max configuration (3), collection: per_db_0"
    # the cluster-wide collection limit (9), counted across databases
    total = 0
    for db in client.list_databases():
        client.use_database(db)
        total += len(client.list_collections())
    assert total < 9
    refused = ""
    db_index = 0
    while not refused:
        db_index += 1
        client.create_database(f"q{db_index}")
        client.use_database(f"q{db_index}")
        for j in range(3):
            try:
                _make(client, f"c{j}")
                total += 1
            except MilvusException as exc:
                assert exc.code == 102
                refused = str(exc.message)
                break
    assert total == 9
    assert refused == f"exceeded the limit number of collections[dbName=q{db_index}][limit=9]"
    # databases: create until refused at 8
    while len(client.list_databases()) < 8:
        client.create_database(f"fill{len(client.list_databases())}")
    message = _fails(801, client.create_database, "one_too_many")
    assert message == "exceeded the limit number of database[limit=8]"
    assert len(client.list_databases()) == 8
    client.close()


@pytest.fixture(scope="module")
def two_proxies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterServer]:
    srv = ClusterServer(Path(tmp_path_factory.mktemp("quota-proxies")), ClusterLayout(querynodes=1, proxies=2))
    srv.cluster.extra_config = {"quota": {"dql_enabled": True, "query_rate": 0.2}}
    srv.start()
    yield srv
    srv.stop()


def test_cluster_rate_is_shared_among_proxies(two_proxies: ClusterServer) -> None:
    """Cluster only: 0.2 queries/s over two live proxies is 0.1/s at each, as Milvus's quota center splits it."""
    proxies = two_proxies.cluster.proxies()
    clients = [MilvusClient(uri=f"http://127.0.0.1:{p.grpc_port}") for p in proxies]
    _make(clients[0], "shared")
    clients[0].load_collection("shared")
    for client in clients:
        client.query("shared", filter="id >= 0", limit=1, **NO_RETRY)
        message = _fails(8, client.query, "shared", filter="id >= 0", limit=1, **NO_RETRY)
        assert message.endswith("rate limit exceeded[rate=0.1]")
    for client in clients:
        client.close()


def test_deny_writing_and_reading(denied: Any) -> None:
    client = _client(denied)
    _make(client, "denied")  # DDL stays allowed
    reason = "quota exceeded[reason=access has been disabled by the administrator]"
    assert _fails(9, client.insert, "denied", _rows(2)) == reason
    assert _fails(9, client.upsert, "denied", _rows(2)) == reason
    assert _fails(9, client.delete, "denied", ids=[1]) == reason
    reply = post_v2(denied, "entities/insert", {"collectionName": "denied", "data": _rows(1)})
    assert reply["code"] == 9 and reply["message"] == reason, reply
    client.load_collection("denied")
    assert _fails(9, client.search, "denied", [[0.1] * DIM], limit=1) == reason
    assert _fails(9, client.query, "denied", filter="id >= 0", limit=1) == reason
    reply = post_v2(denied, "entities/search", {"collectionName": "denied", "data": [[0.1] * DIM], "limit": 1})
    assert reply["code"] == 9, reply
    client.close()
