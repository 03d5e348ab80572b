"""Search with group_by (gRPC, REST, and inside HybridSearch) against an exact model on FLAT.

The model walks every row in score order: a group takes a hit while it has fewer than
group_size, a new group opens while fewer than offset + limit exist; the groups come out in
order of their best hit and the first ``offset`` are skipped. Milvus's rules on which fields
may be grouped, and its messages, are checked too.
"""

from __future__ import annotations

import grpc
import httpx
import numpy as np
import pytest
from pymilvus import AnnSearchRequest, MilvusClient, MilvusException, RRFRanker
from pymilvus.client.prepare import Prepare
from pymilvus.grpc_gen import milvus_pb2_grpc

from tests.e2e import search_model as model
from tests.e2e.search_data import DIM, METRICS, DataSet, build, wait_indexed
from tests.e2e.server import StandaloneServer

pytestmark = pytest.mark.e2e



@pytest.fixture(scope="module")
def data(client: MilvusClient) -> DataSet:
    return build(client, "grouping", n=500, seed=3, sealed=300)


def _query(seed: int, nq: int = 1, field: str = "v_l2") -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((nq, DIM)).astype(np.float32)


def _expected(data: DataSet, field: str, q: np.ndarray, group: str, limit: int, size: int, offset=0, mask=None):
    hits = model.ranked(METRICS[field], data.vectors[field], q, data.pks, mask)
    return model.group_search(hits, data.group_of(group), limit, size, offset)


def _check(got, expected, group: str) -> None:
    assert [h["id"] for h in got] == [pk for pk, _, _ in expected]
    assert [h["distance"] for h in got] == pytest.approx([s for _, s, _ in expected], rel=1e-5, abs=1e-5)
    assert [h["entity"][group] for h in got] == [g for _, _, g in expected]


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize(("field", "group"), [("v_l2", "cat"), ("v_ip", "tag"), ("v_cos", "flag")])
def test_group_by_matches_model(client: MilvusClient, data: DataSet, field: str, group: str, strict: bool) -> None:
    q = _query(11, nq=2)
    res = client.search(
        data.name,
        q.tolist(),
        anns_field=field,
        limit=4,
        output_fields=[group],
        group_by_field=group,
        group_size=3,
        strict_group_size=strict,
    )
    for i in range(2):
        _check(res[i], _expected(data, field, q[i], group, 4, 3), group)


def test_more_groups_asked_than_exist(client: MilvusClient, data: DataSet) -> None:
    """5 tags exist; asking for 8 groups of 10 returns every tag's best 10 (data exhausted)."""
    q = _query(12)
    res = client.search(
        data.name, q.tolist(), anns_field="v_l2", limit=8, output_fields=["tag"], group_by_field="tag", group_size=10
    )
    expected = _expected(data, "v_l2", q[0], "tag", 8, 10)
    assert len(expected) == 50
    _check(res[0], expected, "tag")


def test_filter_offset_and_group_values(server: StandaloneServer, data: DataSet) -> None:
    q = _query(13)
    req = Prepare.search_requests_with_expr(
        data.name,
        anns_field="v_l2",
        param={},
        limit=3,
        data=q.tolist(),
        expr="price < 30",
        output_fields=["cat"],
        offset=2,
        group_by_field="cat",
        group_size=2,
    )
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        resp = milvus_pb2_grpc.MilvusServiceStub(channel).Search(req)
    assert resp.status.code == 0, resp.status
    expected = _expected(data, "v_l2", q[0], "cat", 3, 2, offset=2, mask=data.price < 30)
    assert list(resp.results.ids.int_id.data) == [pk for pk, _, _ in expected]
    values = resp.results.group_by_field_value
    assert values.field_name == "cat"
    assert list(values.scalars.long_data.data) == [g for _, _, g in expected]
    assert list(resp.results.topks) == [len(expected)]


@pytest.mark.parametrize(
    ("kwargs", "code", "message"),
    [
        ({"group_by_field": "price"}, 1100, "unsupported data type Float for group by operator"),
        ({"group_by_field": "v_ip"}, 1100, "unsupported data type FloatVector for group by operator"),
        ({"group_by_field": "nope"}, 1700, "groupBy field not found in schema: field not found[field=nope]"),
        ({"group_by_field": "cat", "group_size": 11}, 1100, "input group size:11 exceeds configured max group size:10"),
        ({"group_by_field": "cat", "group_size": 0}, 1100, "input group size:0 is negative"),
    ],
)
def test_bad_group_by(client: MilvusClient, data: DataSet, kwargs, code: int, message: str) -> None:
    with pytest.raises(MilvusException) as err:
        client.search(data.name, _query(1).tolist(), anns_field="v_l2", limit=3, **kwargs)
    assert err.value.code == code
    assert message in err.value.message


def test_group_by_with_range_search_is_refused(client: MilvusClient, data: DataSet) -> None:
    with pytest.raises(MilvusException, match="Not allowed to do range-search when doing search-group-by"):
        client.search(
            data.name,
            _query(1).tolist(),
            anns_field="v_l2",
            limit=3,
            group_by_field="cat",
            search_params={"params": {"radius": 10.0}},
        )


def test_hybrid_search_group_by(client: MilvusClient, data: DataSet) -> None:
    q1, q2 = _query(21), _query(22)
    reqs = [
        AnnSearchRequest(data=q1.tolist(), anns_field="v_l2", param={}, limit=4),
        AnnSearchRequest(data=q2.tolist(), anns_field="v_cos", param={}, limit=4),
    ]
    res = client.hybrid_search(
        data.name, reqs, RRFRanker(10), limit=3, output_fields=["cat"], group_by_field="cat", group_size=2
    )
    groups = data.group_of("cat")
    subs = [
        [(pk, s) for pk, s, _ in _expected(data, "v_l2", q1[0], "cat", 4, 2)],
        [(pk, s) for pk, s, _ in _expected(data, "v_cos", q2[0], "cat", 4, 2)],
    ]
    fused = model.fused_order(model.rrf(subs, 10))
    buckets: dict[object, list[tuple[object, float]]] = {}
    for pk, s in fused:
        members = buckets.setdefault(groups[pk], [])
        if len(members) < 2:
            members.append((pk, s))
    ranked = sorted(buckets.items(), key=lambda kv: (-max(s for _, s in kv[1]), -len(kv[1]), kv[1][0][0]))[:3]
    expected = [(pk, s, g) for g, members in ranked for pk, s in members]
    _check(res[0], expected, "cat")


def test_rest_search_grouping_field(server: StandaloneServer, data: DataSet) -> None:
    q = _query(31)
    body = {
        "collectionName": data.name,
        "data": q.tolist(),
        "annsField": "v_ip",
        "limit": 3,
        "groupingField": "tag",
        "groupSize": 2,
        "outputFields": ["tag"],
    }
    with httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=60) as http:
        reply = http.post("/v2/vectordb/entities/search", json=body).json()
    assert reply["code"] == 0, reply
    expected = _expected(data, "v_ip", q[0], "tag", 3, 2)
    assert [(r["id"], r["tag"]) for r in reply["data"]] == [(pk, g) for pk, _, g in expected]


def test_group_by_on_hnsw_with_ef_below_the_candidates_it_needs(client: MilvusClient) -> None:
    """ef is checked against the limit the user asked for, not the wider candidate list grouping
    walks (Milvus groups with an index iterator): ef=4 with limit 4 x group_size 3 must work."""
    from pymilvus import DataType

    name = "grouping_hnsw"
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("cat", DataType.INT64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("v", index_type="HNSW", metric_type="L2", params={"M": 16, "efConstruction": 64})
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    rng = np.random.default_rng(21)
    n = 1200  # a segment of fewer than 1024 rows is searched exactly, with no index (Milvus's rule)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    client.insert(name, [{"id": i, "cat": i % 7, "v": vectors[i]} for i in range(n)])
    client.flush(name)
    wait_indexed(client, name, "v", n)
    client.release_collection(name)
    client.load_collection(name)
    res = client.search(
        name, _query(13).tolist(), anns_field="v", limit=4, output_fields=["cat"], group_by_field="cat",
        group_size=3, strict_group_size=True, search_params={"params": {"ef": 4}},
    )  # fmt: skip
    cats = [h["entity"]["cat"] for h in res[0]]
    assert len(cats) == 12 and len(set(cats)) == 4 and all(cats.count(c) == 3 for c in set(cats))
    with pytest.raises(MilvusException, match=r"ef\(3\) should be larger than k\(4\)"):
        client.search(name, _query(13).tolist(), anns_field="v", limit=4, search_params={"params": {"ef": 3}})
    client.drop_collection(name)
