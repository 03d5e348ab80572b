"""Search iterators (v1 and v2) and query iterators, with pymilvus 2.5.x, 2.6.x and 3.0.x.

The client flow (tests/e2e/clients/search_features_flow.py) iterates over a collection where
every vector occurs three times (equal scores across page borders) and checks that each
matching entity comes back exactly once, in score order (search) or pk order (query); it runs
under every client release. The tests here also check the wire protocol of iterator v2
(token, last bound, session timestamp) and its parameter errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from pymilvus import MilvusClient
from pymilvus.client.prepare import Prepare
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc

from tests.e2e import search_model as model
from tests.e2e.client_venvs import ClientEnv, VenvBuildError
from tests.e2e.search_data import DIM, DataSet, build
from tests.e2e.server import StandaloneServer
from tests.e2e.test_client_versions import CLIENTS, OWN, client_env, client_envs, run_flow  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def stub(server: StandaloneServer) -> Iterator[milvus_pb2_grpc.MilvusServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield milvus_pb2_grpc.MilvusServiceStub(channel)


@pytest.fixture(scope="module")
def data(server: StandaloneServer) -> DataSet:
    client = MilvusClient(uri=server.uri)
    try:
        return build(client, "iterating", n=300, seed=9, sealed=200)
    finally:
        client.close()


def _request(query: np.ndarray, batch: int, **extra: object) -> milvus_pb2.SearchRequest:
    kwargs = {"iterator": True, "search_iter_v2": True, "search_iter_batch_size": batch, **extra}
    return Prepare.search_requests_with_expr(
        "iterating", anns_field="v_ip", param={"metric_type": "IP"}, limit=batch, data=[query.tolist()], **kwargs
    )


def test_iterator_v2_pages_by_last_bound(stub: milvus_pb2_grpc.MilvusServiceStub, data: DataSet) -> None:
    q = np.random.default_rng(1).standard_normal(DIM).astype(np.float32)
    want = model.ranked("IP", data.vectors["v_ip"], q, data.pks)
    first = stub.Search(_request(q, 40))
    assert first.status.code == 0, first.status
    token = first.results.search_iterator_v2_results.token
    uuid.UUID(token)
    assert first.session_ts > 0
    seen = list(first.results.ids.int_id.data)
    assert seen == [pk for pk, _ in want[:40]]
    assert first.results.search_iterator_v2_results.last_bound == pytest.approx(want[39][1], rel=1e-5)
    bound = first.results.search_iterator_v2_results.last_bound
    while True:
        page = stub.Search(
            _request(q, 40, search_iter_id=token, search_iter_last_bound=bound, guarantee_timestamp=first.session_ts)
        )
        assert page.status.code == 0, page.status
        assert page.results.search_iterator_v2_results.token == token
        assert page.session_ts == 0  # only the first page (no guarantee timestamp yet) reports one
        ids = list(page.results.ids.int_id.data)
        if not ids:
            assert page.results.search_iterator_v2_results.last_bound == bound
            break
        assert all(s < bound for s in page.results.scores)
        seen += ids
        bound = page.results.search_iterator_v2_results.last_bound
    assert seen == [pk for pk, _ in want]


def _kv(req: milvus_pb2.SearchRequest, key: str, value: str) -> milvus_pb2.SearchRequest:
    params = [kv for kv in req.search_params if kv.key != key]
    del req.search_params[:]
    req.search_params.extend([*params, common_pb2.KeyValuePair(key=key, value=value)])
    return req


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("iterator", "False", "both iterator and search_iter_v2 must be set in the SDK"),
        ("search_iter_id", "not-a-uuid", "invalid token format"),
        ("search_iter_batch_size", "", "batch size is required"),
        ("search_iter_batch_size", "0", "batch size is invalid"),
        ("search_iter_last_bound", "abc", "failed to parse input last bound"),
        ("offset", "5", "Setting an offset is not permitted when using a search iterator v2"),
        ("group_by_field", "cat", "Not allowed to do groupBy when doing iteration"),
    ],
)
def test_iterator_v2_bad_params(
    stub: milvus_pb2_grpc.MilvusServiceStub, data: DataSet, key: str, value: str, message: str
) -> None:
    resp = stub.Search(_kv(_request(np.ones(DIM, dtype=np.float32), 10), key, value))
    assert resp.status.code == 1100, resp.status
    assert message in resp.status.reason


def test_query_iterator_session_ts(stub: milvus_pb2_grpc.MilvusServiceStub, data: DataSet) -> None:
    params = [common_pb2.KeyValuePair(key=k, value=v) for k, v in {"iterator": "True", "limit": "10"}.items()]
    first = stub.Query(milvus_pb2.QueryRequest(collection_name="iterating", expr="id > 0", query_params=params))
    assert first.status.code == 0 and first.session_ts > 0
    again = stub.Query(
        milvus_pb2.QueryRequest(
            collection_name="iterating", expr="id > 0", query_params=params, guarantee_timestamp=first.session_ts
        )
    )
    assert again.session_ts == 0
    assert list(again.fields_data[0].scalars.long_data.data) == [int(p) for p in data.pks[:10]]


@pytest.mark.parametrize("client", CLIENTS)
def test_client_iterates_every_entity_once(
    client: str,
    client_envs: dict[str, ClientEnv | VenvBuildError],  # noqa: F811
    server: StandaloneServer,
    tmp_path: Path,
) -> None:
    env = client_env(client_envs, client)
    collection = f"features_{env.tag}"
    code, output, seconds = run_flow(env, "search_features_flow.py", server, collection, tmp_path)
    print(f"pymilvus {env.pymilvus_version}: exit {code} in {seconds:.1f}s\n{output}")
    lines = output.strip().splitlines()
    if code != 0 or not lines or lines[-1].strip() != "OK":
        pytest.fail(f"pymilvus {env.pymilvus_version} flow failed:\n{output}\n--- server log ---\n{server.log()}")
    if client != OWN:
        assert f"pymilvus {env.pymilvus_version}," in lines[0]
