"""HybridSearch (gRPC and REST) against an exact numpy model of Milvus's RRF and weighted ranking.

Every sub-request is an exact FLAT search, so the model can compute the sub-results (ids and
scores) by brute force and fuse them with Milvus's formulas; ids must match exactly and scores
to float32 precision. Bad rank parameters must fail with Milvus's code and message.
"""

from __future__ import annotations

import grpc
import httpx
import numpy as np
import pytest
from pymilvus import (
    AnnSearchRequest,
    Function,
    FunctionType,
    MilvusClient,
    MilvusException,
    RRFRanker,
    WeightedRanker,
)
from pymilvus.client.prepare import Prepare
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc

from tests.e2e import search_model as model
from tests.e2e.search_data import DIM, METRICS, DataSet, build
from tests.e2e.server import StandaloneServer

pytestmark = pytest.mark.e2e



@pytest.fixture(scope="module")
def data(client: MilvusClient) -> DataSet:
    return build(client, "hybrid")


def _queries(seed: int, nq: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f: rng.standard_normal((nq, DIM)).astype(np.float32) for f in METRICS}


def _sub_results(data: DataSet, queries: dict[str, np.ndarray], q: int, limits: dict[str, int], masks=None):
    masks = masks or {}
    return [model.topk(METRICS[f], data.vectors[f], queries[f][q], data.pks, limits[f], masks.get(f)) for f in limits]


def _check(got, expected: list[tuple[object, float]]) -> None:
    assert [h["id"] for h in got] == [pk for pk, _ in expected]
    assert [h["distance"] for h in got] == pytest.approx([s for _, s in expected], rel=1e-5, abs=1e-6)


def _requests(queries: dict[str, np.ndarray], limits: dict[str, int], filters=None) -> list[AnnSearchRequest]:
    filters = filters or {}
    return [
        AnnSearchRequest(
            data=queries[f].tolist(),
            anns_field=f,
            param={"metric_type": METRICS[f]},
            limit=limits[f],
            expr=filters.get(f),
        )
        for f in limits
    ]


def test_rrf_matches_model(client: MilvusClient, data: DataSet) -> None:
    queries = _queries(1, 3)
    limits = {"v_l2": 20, "v_ip": 15, "v_cos": 25}
    filters = {"v_ip": "cat < 6"}
    reqs = _requests(queries, limits, filters)
    res = client.hybrid_search(data.name, reqs, RRFRanker(30), limit=12, output_fields=["cat", "tag"])
    assert len(res) == 3
    masks = {"v_ip": data.cat < 6}
    for q in range(3):
        acc = model.rrf(_sub_results(data, queries, q, limits, masks), 30)
        expected = model.fused_order(acc)[:12]
        _check(res[q], expected)
        by_pk = {int(p): i for i, p in enumerate(data.pks)}
        for hit in res[q]:
            i = by_pk[hit["id"]]
            assert hit["entity"]["cat"] == data.cat[i] and hit["entity"]["tag"] == data.tag[i]


@pytest.mark.parametrize("norm", [True, False])
def test_weighted_mixed_metrics_matches_model(client: MilvusClient, data: DataSet, norm: bool) -> None:
    queries = _queries(2, 2)
    limits = {"v_l2": 30, "v_ip": 30, "v_cos": 30}
    weights = [0.2, 0.5, 0.3]
    res = client.hybrid_search(
        data.name, _requests(queries, limits), WeightedRanker(*weights, norm_score=norm), limit=10
    )
    for q in range(2):
        acc = model.weighted(_sub_results(data, queries, q, limits), list(METRICS.values()), weights, norm)
        _check(res[q], model.fused_order(acc)[:10])


def test_weighted_l2_only_without_norm_sorts_ascending(client: MilvusClient, data: DataSet) -> None:
    """Un-normalised L2 scores: smaller sums are better (Milvus 2.6)."""
    q1, q2 = _queries(3, 1)["v_l2"], _queries(4, 1)["v_l2"]
    reqs = [
        AnnSearchRequest(data=q1.tolist(), anns_field="v_l2", param={}, limit=20),
        AnnSearchRequest(data=q2.tolist(), anns_field="v_l2", param={}, limit=20),
    ]
    res = client.hybrid_search(data.name, reqs, WeightedRanker(0.6, 0.4, norm_score=False), limit=8)
    subs = [model.topk("L2", data.vectors["v_l2"], q[0], data.pks, 20) for q in (q1, q2)]
    acc = model.weighted(subs, ["L2", "L2"], [0.6, 0.4], False)
    _check(res[0], model.fused_order(acc, descending=False)[:8])


def test_offset_and_round_decimal(client: MilvusClient, data: DataSet) -> None:
    queries = _queries(5, 1)
    limits = {"v_l2": 25, "v_cos": 25}
    reqs = _requests(queries, limits)
    res = client.hybrid_search(data.name, reqs, RRFRanker(), limit=5, offset=4, round_decimal=3)
    acc = model.rrf(_sub_results(data, queries, 0, limits), 60)
    expected = model.fused_order(acc)[4:9]
    assert [h["id"] for h in res[0]] == [pk for pk, _ in expected]
    assert [h["distance"] for h in res[0]] == pytest.approx([round(s, 3) for _, s in expected], abs=1.1e-3)
    for h in res[0]:
        assert abs(h["distance"] * 1000 - round(h["distance"] * 1000)) < 1e-3


def test_partitions_and_empty_sub_results(client: MilvusClient, data: DataSet) -> None:
    queries = _queries(6, 1)
    limits = {"v_l2": 10, "v_ip": 10}
    reqs = _requests(queries, limits, {"v_l2": "cat == 1000", "v_ip": "flag == true"})
    res = client.hybrid_search(data.name, reqs, RRFRanker(10), limit=5, partition_names=["_default"])
    acc = model.rrf([[], _sub_results(data, queries, 0, {"v_ip": 10}, {"v_ip": data.flag})[0]], 10)
    _check(res[0], model.fused_order(acc)[:5])
    none = client.hybrid_search(
        data.name, _requests(queries, limits, {"v_l2": "cat < 0", "v_ip": "cat < 0"}), RRFRanker(), limit=5
    )
    assert len(none) == 1 and len(none[0]) == 0


def _raw_hybrid(
    server: StandaloneServer, rank: dict[str, str], nqs: tuple[int, ...] = (1, 1)
) -> milvus_pb2.SearchResults:
    subs = []
    for i, nq in enumerate(nqs):
        field = ["v_l2", "v_ip"][i % 2]
        subs.append(
            Prepare.search_requests_with_expr(
                "hybrid", anns_field=field, param={}, limit=5, data=np.ones((nq, DIM), dtype=np.float32).tolist()
            )
        )
    req = milvus_pb2.HybridSearchRequest(
        collection_name="hybrid",
        requests=subs,
        rank_params=[common_pb2.KeyValuePair(key=k, value=v) for k, v in rank.items()],
    )
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        return milvus_pb2_grpc.MilvusServiceStub(channel).HybridSearch(req)


@pytest.mark.parametrize(
    ("rank", "nqs", "message"),
    [
        (
            {"strategy": "rrf", "params": '{"k": 0}', "limit": "5"},
            (1, 1),
            "the rank params k should be in range (0, 16384)",
        ),
        ({"strategy": "rrf", "params": '{"k": "a"}', "limit": "5"}, (1, 1), "the type of rank param k should be float"),
        ({"strategy": "nope", "params": "{}", "limit": "5"}, (1, 1), "unsupported rank type nope"),
        ({"strategy": "rrf", "limit": "5"}, (1, 1), "params not found in rank_params"),
        (
            {"strategy": "weighted", "params": '{"weights": [0.5]}', "limit": "5"},
            (1, 1),
            "invalid parameter[expected=2][actual=1]: the length of weights param mismatch with ann search requests",
        ),
        (
            {"strategy": "weighted", "params": '{"weights": [0.5, 2]}', "limit": "5"},
            (1, 1),
            "rank param weight should be in range [0, 1]",
        ),
        ({"strategy": "weighted", "params": "{}", "limit": "5"}, (1, 1), "weights not found"),
        ({"strategy": "rrf", "params": "{}"}, (1, 1), "limit not found in rank_params"),
        ({"strategy": "rrf", "params": "{}", "limit": "0"}, (1, 1), "(offset+limit) should be in range [1, 16384]"),
        (
            {"strategy": "rrf", "params": "{}", "limit": "5", "round_decimal": "9"},
            (1, 1),
            "round_decimal [9] is invalid",
        ),
        ({"strategy": "rrf", "params": "{}", "limit": "5"}, (1, 2), "sub search request nq should be the same"),
        ({"strategy": "rrf", "params": "{}", "limit": "5"}, (), "at least one ann search request"),
    ],
)
def test_bad_rank_params(server: StandaloneServer, data: DataSet, rank: dict[str, str], nqs, message: str) -> None:
    resp = _raw_hybrid(server, rank, nqs)
    assert resp.status.code == 1100, resp.status
    assert message in resp.status.reason


def test_default_strategy_is_rrf_60(server: StandaloneServer, data: DataSet) -> None:
    resp = _raw_hybrid(server, {"limit": "3"})
    assert resp.status.code == 0, resp.status
    ones = np.ones(DIM, dtype=np.float32)
    subs = [model.topk(METRICS[f], data.vectors[f], ones, data.pks, 5) for f in ("v_l2", "v_ip")]
    expected = model.fused_order(model.rrf(subs, 60))[:3]
    assert list(resp.results.ids.int_id.data) == [pk for pk, _ in expected]


def test_rest_hybrid_search(server: StandaloneServer, data: DataSet) -> None:
    queries = _queries(8, 1)
    body = {
        "collectionName": data.name,
        "search": [
            {"data": queries["v_l2"].tolist(), "annsField": "v_l2", "limit": 15, "filter": "cat >= 3"},
            {"data": queries["v_cos"].tolist(), "annsField": "v_cos", "limit": 15, "params": {}},
        ],
        "rerank": {"strategy": "weighted", "params": {"weights": [0.7, 0.3], "norm_score": True}},
        "limit": 6,
        "outputFields": ["tag"],
    }
    with httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=60) as http:
        reply = http.post("/v2/vectordb/entities/hybrid_search", json=body).json()
        assert reply["code"] == 0, reply
        subs = _sub_results(data, queries, 0, {"v_l2": 15, "v_cos": 15}, {"v_l2": data.cat >= 3})
        expected = model.fused_order(model.weighted(subs, ["L2", "COSINE"], [0.7, 0.3], True))[:6]
        assert [r["id"] for r in reply["data"]] == [pk for pk, _ in expected]
        assert [r["distance"] for r in reply["data"]] == pytest.approx([s for _, s in expected], rel=1e-5)
        assert all(r["tag"].startswith("t") for r in reply["data"])
        body["rerank"] = {"strategy": "rrf", "params": {"k": 20}}
        reply = http.post("/v2/vectordb/entities/hybrid_search", json=body).json()
        expected = model.fused_order(model.rrf(subs, 20))[:6]
        assert [r["id"] for r in reply["data"]] == [pk for pk, _ in expected]
        body["rerank"] = {"strategy": "rrf", "params": {"k": -1}}
        reply = http.post("/v2/vectordb/entities/hybrid_search", json=body).json()
        assert reply["code"] == 1100 and "the rank params k should be in range" in reply["message"]


def test_sub_request_on_missing_field_fails(client: MilvusClient, data: DataSet) -> None:
    """A sub-request on a missing field fails with Milvus's message, not a crash."""
    reqs = [AnnSearchRequest(data=[[0.0] * DIM], anns_field="nope", param={}, limit=3)]
    with pytest.raises(MilvusException, match="fieldName\\(nope\\) not found"):
        client.hybrid_search(data.name, reqs, RRFRanker(), limit=3)


def test_function_rerankers(client: MilvusClient, data: DataSet) -> None:
    """pymilvus 2.6+ ``Function`` rerankers (function_score) rank like the legacy rankers."""
    queries = _queries(9, 1)
    limits = {"v_ip": 20, "v_cos": 20}
    subs = _sub_results(data, queries, 0, limits)
    rrf = Function("rrf", input_field_names=[], function_type=FunctionType.RERANK, params={"reranker": "rrf", "k": 7})
    res = client.hybrid_search(data.name, _requests(queries, limits), rrf, limit=6)
    _check(res[0], model.fused_order(model.rrf(subs, 7))[:6])
    weighted = Function(
        "w",
        input_field_names=[],
        function_type=FunctionType.RERANK,
        params={"reranker": "weighted", "weights": [0.4, 0.6], "norm_score": True},
    )
    res = client.hybrid_search(data.name, _requests(queries, limits), weighted, limit=6)
    _check(res[0], model.fused_order(model.weighted(subs, ["IP", "COSINE"], [0.4, 0.6], True))[:6])
    decay = Function("d", input_field_names=["price"], function_type=FunctionType.RERANK, params={"reranker": "decay"})
    with pytest.raises(MilvusException, match="decay rerank function is not supported"):
        client.hybrid_search(data.name, _requests(queries, limits), decay, limit=6)


def test_all_output_fields(client: MilvusClient, data: DataSet) -> None:
    queries = _queries(10, 1)
    limits = {"v_l2": 5, "v_ip": 5}
    res = client.hybrid_search(data.name, _requests(queries, limits), RRFRanker(), limit=4, output_fields=["*"])
    by_pk = {int(p): i for i, p in enumerate(data.pks)}
    assert len(res[0]) == 4
    for hit in res[0]:
        i = by_pk[hit["id"]]
        entity = hit["entity"]
        assert set(entity) >= {"v_l2", "v_ip", "v_cos", "cat", "tag", "flag", "price"}
        for field in METRICS:
            assert np.allclose(entity[field], data.vectors[field][i], atol=1e-6)
        assert (entity["cat"], entity["tag"], entity["flag"]) == (data.cat[i], data.tag[i], data.flag[i])
