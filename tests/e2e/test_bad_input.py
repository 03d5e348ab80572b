"""Bad input gets a Milvus error code and a message naming the problem, and changes nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient, MilvusException
from pymilvus.exceptions import ParamError

from tests.e2e.server import StandaloneServer

DIM = 8


@pytest.fixture(scope="module")
def client(server: StandaloneServer) -> MilvusClient:
    c = MilvusClient(uri=server.uri)
    schema = c.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("name", DataType.VARCHAR, max_length=10)
    schema.add_field("score", DataType.DOUBLE)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    index = c.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    c.create_collection("strict", schema=schema, index_params=index, consistency_level="Strong")
    rng = np.random.default_rng(1)
    rows = [{"id": i, "name": f"n{i}", "score": float(i), "vec": rng.random(DIM).tolist()} for i in range(100)]
    c.insert("strict", rows)
    return c


def _snapshot(c: MilvusClient) -> tuple[int, list[int]]:
    count = c.query("strict", filter="", output_fields=["count(*)"])[0]["count(*)"]
    hits = c.search("strict", data=[[0.5] * DIM], limit=5)
    return count, [h["id"] for h in hits[0]]


def _row(**over: object) -> dict[str, object]:
    row: dict[str, object] = {"id": 1000, "name": "ok", "score": 1.0, "vec": [0.1] * DIM}
    row.update(over)
    return row


CASES = [
    ("wrong dimension", _row(vec=[0.1] * (DIM * 2)), 1100, "dim"),
    ("wrong type", _row(score="high"), None, "score"),
    ("missing field", {k: v for k, v in _row().items() if k != "score"}, None, "score"),
    ("unknown field", _row(color="red"), None, "color"),
    ("NaN in vector", _row(vec=[math.nan] + [0.1] * (DIM - 1)), 1100, "NaN"),
    ("over-long string", _row(name="x" * 11), 1100, "name"),
]


@pytest.mark.parametrize(("what", "row", "code", "needle"), CASES, ids=[c[0] for c in CASES])
def test_bad_rows_are_rejected(client: MilvusClient, what: str, row: dict, code: int | None, needle: str) -> None:  # type: ignore[type-arg]
    before = _snapshot(client)
    with pytest.raises((MilvusException, ParamError)) as err:
        client.insert("strict", [row])
    assert needle.lower() in str(err.value).lower(), f"{what}: {err.value}"
    if code is not None and isinstance(err.value, MilvusException) and not isinstance(err.value, ParamError):
        assert err.value.code == code, f"{what}: {err.value}"
    assert _snapshot(client) == before


@pytest.mark.parametrize(
    ("expr", "needle"),
    [("score >>> 3", "cannot parse expression"), ("nope > 1", "nope"), ("name > 3", "name"), ("vec > 1", "vec")],
)
def test_bad_filters(client: MilvusClient, expr: str, needle: str) -> None:
    before = _snapshot(client)
    with pytest.raises(MilvusException) as err:
        client.query("strict", filter=expr)
    assert err.value.code == 1100
    assert needle in str(err.value)
    with pytest.raises(MilvusException):
        client.delete("strict", filter=expr)
    assert _snapshot(client) == before


def test_duplicate_field_names_rejected(client: MilvusClient) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    with pytest.raises(MilvusException) as err:
        client.create_collection("dupe", schema=schema)
    assert "v" in str(err.value) and "duplicat" in str(err.value).lower()
    assert not client.has_collection("dupe")


def test_unknown_collection(client: MilvusClient) -> None:
    with pytest.raises(MilvusException) as err:
        client.query("does_not_exist", filter="id > 0")
    assert err.value.code == 100
    assert "does_not_exist" in str(err.value)


def test_bad_search_requests(client: MilvusClient) -> None:
    with pytest.raises(MilvusException) as err:
        client.search("strict", data=[[0.1] * (DIM + 1)], limit=3)
    assert err.value.code == 1100 and "dim" in str(err.value)
    with pytest.raises(MilvusException) as err:
        client.search("strict", data=[[0.1] * DIM], limit=0)
    assert "topk" in str(err.value).lower() or "limit" in str(err.value).lower()
    with pytest.raises(MilvusException) as err:
        client.search("strict", data=[[0.1] * DIM], limit=3, search_params={"metric_type": "IP"})
    assert "metric type not match" in str(err.value)


def test_unsupported_rpc_answers_clearly(client: MilvusClient) -> None:
    with pytest.raises(MilvusException) as err:
        client.list_file_resources()
    assert err.value.code == 10 and "not supported" in str(err.value)
