"""Quotas and limits without a server: Milvus's token bucket, Go float text, the proxy gate's checks."""

from __future__ import annotations

import pytest
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from common.config import QuotaConfig
from common.errors import Code, MilvusError
from common.limits import (
    MB,
    TokenBucket,
    check_collection_count,
    check_database_count,
    check_partition_count,
    check_shard_num,
    go_float,
)
from services.proxy.quota import QuotaGate, grpc_server_options, request_cost


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.1, "0.1"), (5.0, "5"), (100.0, "100"), (123456.0, "123456"), (1e6, "1e+06"), (5242880.0, "5.24288e+06"),
     (1048576.0, "1.048576e+06"), (0.0001, "0.0001"), (0.00001, "1e-05"), (2.5, "2.5"), (0.0, "0")],
)
def test_go_float_prints_like_go_percent_v(value: float, text: str) -> None:
    assert go_float(value) == text


def test_token_bucket_allows_debt_then_refills_at_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(10, clock)
    assert bucket.allow(25)  # full bucket (10) and not in debt: a large request passes once
    assert not bucket.allow(1)  # now 15 in debt
    clock.now += 1.0
    assert not bucket.allow(1)  # -5
    clock.now += 0.5
    assert bucket.allow(1)  # 0 -> -1
    clock.now += 100
    assert bucket.allow(10) and bucket.allow(0.5)  # refilled to the burst (10), no more
    assert not bucket.allow(0.5)


def test_token_bucket_unlimited_zero_and_cancel() -> None:
    clock = Clock()
    assert all(TokenBucket(-1, clock).allow(1e12) for _ in range(3))
    assert not TokenBucket(0, clock).allow(1)
    bucket = TokenBucket(2, clock)
    assert bucket.allow(2)
    bucket.cancel(2)
    assert bucket.allow(2)


def test_count_checks_use_milvus_codes_and_messages() -> None:
    q = QuotaConfig(max_database_num=2, max_collection_num=3, max_collection_num_per_db=2, max_partition_num=4,
                    max_shard_num=2)
    with pytest.raises(MilvusError) as e:
        check_database_count(q, 2)
    assert e.value.code == Code.DATABASE_NUM_LIMIT and e.value.message.endswith("[limit=2]")
    check_collection_count(q, "db1", 1, 2)
    with pytest.raises(MilvusError) as e:
        check_collection_count(q, "db1", 2, 2)
    assert e.value.code == Code.COLLECTION_NUM_LIMIT
    assert e.value.message == "exceeded the limit number of collections[dbName=db1][limit=2]"
    with pytest.raises(MilvusError) as e:
        check_collection_count(q, "db2", 0, 3)
    assert e.value.message == "exceeded the limit number of collections[dbName=db2][limit=3]"
    with pytest.raises(MilvusError) as e:
        check_partition_count(q, 4, "c")
    assert e.value.message == "partition number (4) exceeds max configuration (4), collection: c"
    check_shard_num(q, 2)
    with pytest.raises(MilvusError, match="maximum shards's number should be limited to 2"):
        check_shard_num(q, 3)


def _search(nq: int, topk: int, collection: str = "c") -> milvus_pb2.SearchRequest:
    return milvus_pb2.SearchRequest(
        collection_name=collection, nq=nq, search_params=[common_pb2.KeyValuePair(key="topk", value=str(topk))]
    )


def test_gate_rates_are_cluster_then_collection_with_refund() -> None:
    clock = Clock()
    q = QuotaConfig(dql_enabled=True, search_rate=10, search_rate_collection=4)
    gate = QuotaGate(q, clock=clock)
    gate.check_rate("DQLSearch", 4, collection_id=1)  # cluster 10 -> 6, collection 4 -> 0
    gate.check_rate("DQLSearch", 1, collection_id=1)  # collection 0 -> -1 (not in debt yet)
    with pytest.raises(MilvusError) as e:
        gate.check_rate("DQLSearch", 1, collection_id=1)
    assert e.value.code == Code.RATE_LIMIT
    assert e.value.message.endswith("rate limit exceeded[rate=4]")
    assert e.value.retriable
    gate.check_rate("DQLSearch", 5, collection_id=2)  # the refused call gave its cluster tokens back: 5 -> 0
    gate.check_rate("DQLSearch", 1, collection_id=3)  # 0 is not debt: -> -1
    with pytest.raises(MilvusError, match=r"rate limit exceeded\[rate=10\]"):
        gate.check_rate("DQLSearch", 1, collection_id=3)


def test_gate_dml_rate_is_megabytes_and_disabled_switches() -> None:
    clock = Clock()
    gate = QuotaGate(QuotaConfig(dml_enabled=True, insert_rate=1), clock=clock)
    gate.check_rate("DMLInsert", 2 * MB, None)
    with pytest.raises(MilvusError, match=r"rate limit exceeded\[rate=1.048576e\+06\]"):
        gate.check_rate("DMLInsert", 1, None)
    gate.check_rate("DMLDelete", 10 * MB, None)  # no delete rate configured
    off = QuotaGate(QuotaConfig(dml_enabled=False, insert_rate=1), clock=clock)
    for _ in range(3):
        off.check_rate("DMLInsert", 2 * MB, None)
    zero = QuotaGate(QuotaConfig(dml_enabled=True, insert_rate=0), clock=clock)
    with pytest.raises(MilvusError) as e:
        zero.check_rate("DMLInsert", 1, None)
    assert e.value.code == Code.QUOTA_EXCEEDED and e.value.message == "quota exceeded[reason=rate type: DMLInsert]"


def test_gate_deny_switches() -> None:
    gate = QuotaGate(QuotaConfig(deny_writing=True))
    gate.check_rate("DQLQuery", 1, None)
    cost = request_cost("Import", milvus_pb2.ImportRequest(collection_name="c"))
    assert cost is not None and cost[0] == "DMLBulkLoad"
    with pytest.raises(MilvusError, match="disabled by the administrator"):
        gate.check_rate(cost[0], cost[1], None)  # bulk loads are writes too
    with pytest.raises(MilvusError) as e:
        gate.check_rate("DMLDelete", 1, None)
    assert e.value.code == Code.QUOTA_EXCEEDED
    assert e.value.message == "quota exceeded[reason=access has been disabled by the administrator]"
    reads = QuotaGate(QuotaConfig(deny_reading=True))
    reads.check_rate("DMLInsert", 1, None)
    with pytest.raises(MilvusError, match="disabled by the administrator"):
        reads.check_rate("DQLSearch", 1, None)
    QuotaGate(QuotaConfig(deny_reading=True, enabled=False)).check_rate("DQLSearch", 1, None)


def test_gate_divides_the_cluster_rate_among_live_proxies() -> None:
    clock = Clock()
    proxies = [4]
    gate = QuotaGate(QuotaConfig(dql_enabled=True, query_rate=8), proxies=lambda: proxies[0], clock=clock)
    with pytest.raises(MilvusError, match=r"\[rate=2\]"):
        for _ in range(4):
            gate.check_rate("DQLQuery", 1, None)
    proxies[0] = 1
    clock.now += 10  # past the recount interval
    gate.refresh_share()
    clock.now += 10  # the bucket refills to the new burst (8)
    for _ in range(9):  # 8 -> 0, then 0 is not yet debt
        gate.check_rate("DQLQuery", 1, None)
    with pytest.raises(MilvusError, match=r"\[rate=8\]"):
        gate.check_rate("DQLQuery", 1, None)


def test_gate_shape_checks() -> None:
    gate = QuotaGate(QuotaConfig(top_k=10, nq=3, max_query_result_window=20, max_insert_size=100, max_field_num=3,
                                 max_vector_field_num=1, max_dimension=8, max_shard_num=2))
    gate.check_shape("Search", _search(3, 10), None)
    with pytest.raises(MilvusError, match=r"topk \[11\] is invalid, it should be in range \[1, 10\], but got 11"):
        gate.check_shape("Search", _search(1, 11), None)
    with pytest.raises(MilvusError, match=r"nq \(number of search vector per search request\) should be in range "
                                          r"\[1, 3\], but got 4"):
        gate.check_shape("Search", _search(4, 1), None)
    query = milvus_pb2.QueryRequest(query_params=[common_pb2.KeyValuePair(key="limit", value="10"),
                                                  common_pb2.KeyValuePair(key="offset", value="11")])
    with pytest.raises(MilvusError, match=r"\(offset\+limit\) should be in range \[1, 20\], but got 21"):
        gate.check_shape("Query", query, None)
    big = milvus_pb2.InsertRequest(collection_name="c", num_rows=1000, hash_keys=list(range(1000)))
    with pytest.raises(MilvusError) as e:
        gate.check_shape("Insert", big, None)
    assert e.value.code == Code.PARAMETER_TOO_LARGE
    assert e.value.message == "parameter too large[message=insert request size exceeds maxInsertSize]"

    def create(fields: list[schema_pb2.FieldSchema], shards: int = 1) -> milvus_pb2.CreateCollectionRequest:
        schema = schema_pb2.CollectionSchema(name="c", fields=fields)
        return milvus_pb2.CreateCollectionRequest(collection_name="c", schema=schema.SerializeToString(),
                                                  shards_num=shards)

    def vec(name: str, dim: int) -> schema_pb2.FieldSchema:
        return schema_pb2.FieldSchema(name=name, data_type=schema_pb2.DataType.FloatVector,
                                      type_params=[common_pb2.KeyValuePair(key="dim", value=str(dim))])

    pk = schema_pb2.FieldSchema(name="id", data_type=schema_pb2.DataType.Int64, is_primary_key=True)
    gate.check_shape("CreateCollection", create([pk, vec("v", 8)]), None)
    with pytest.raises(MilvusError, match="invalid dimension: 9 of field v. float vector dimension should be in "
                                          "range 2 ~ 8"):
        gate.check_shape("CreateCollection", create([pk, vec("v", 9)]), None)
    with pytest.raises(MilvusError, match="maximum vector field's number should be limited to 1"):
        gate.check_shape("CreateCollection", create([pk, vec("v", 8), vec("w", 8)]), None)
    with pytest.raises(MilvusError, match="maximum field's number should be limited to 3"):
        gate.check_shape("CreateCollection", create([pk, vec("v", 8), pk, pk]), None)
    with pytest.raises(MilvusError, match="maximum shards's number should be limited to 2"):
        gate.check_shape("CreateCollection", create([pk, vec("v", 8)], shards=3), None)


def test_request_cost() -> None:
    assert request_cost("Search", _search(3, 1)) == ("DQLSearch", 3.0)
    assert request_cost("Query", milvus_pb2.QueryRequest()) == ("DQLQuery", 1.0)
    insert = milvus_pb2.InsertRequest(collection_name="c", num_rows=2)
    assert request_cost("Insert", insert) == ("DMLInsert", float(insert.ByteSize()))
    assert request_cost("CreateCollection", milvus_pb2.CreateCollectionRequest()) is None


def test_the_grpc_server_accepts_pymilvus_keepalive_pings_on_idle_connections() -> None:
    """pymilvus pings every 10 s, also with no call in flight; gRPC's defaults (pings at most every
    5 min, only during calls) answer that with GOAWAY "too_many_pings", which broke the connection
    pymilvus shares between the clients of one address. Milvus's proxy allows pings every 5 s."""
    import inspect

    from pymilvus.client import grpc_handler

    assert '"grpc.keepalive_time_ms": 10000' in inspect.getsource(grpc_handler)  # what pymilvus sends
    options = dict(grpc_server_options(QuotaConfig()))
    assert options["grpc.http2.min_ping_interval_without_data_ms"] <= 10_000
    assert options["grpc.keepalive_permit_without_calls"] == 1
