"""Partial-update upserts (Milvus 2.6): fields left out keep their stored values; array ops merge.

Found by Milvus's own L0 suite (milvus_client/test_milvus_client_partial_update*.py), which Quiver
failed with "partial update is not supported". Each case checks stored rows after the upsert, and
the bad-input cases check the Milvus error and that nothing was written.
"""

from __future__ import annotations

from typing import Any

import pytest
from pymilvus import DataType, FieldOp, MilvusClient, MilvusException

pytestmark = pytest.mark.e2e
DIM = 4



def _make(client: MilvusClient, name: str, dynamic: bool = False) -> None:
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=dynamic)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("title", DataType.VARCHAR, max_length=32)
    schema.add_field("price", DataType.FLOAT, nullable=True)
    schema.add_field("stock", DataType.INT64, default_value=7)
    schema.add_field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=5)
    index = client.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")


def _rows(client: MilvusClient, name: str) -> dict[int, dict[str, Any]]:
    got = client.query(name, filter="id >= 0", output_fields=["*"])
    return {r["id"]: r for r in got}


def test_partial_update_keeps_unsent_fields_and_inserts_new_keys(client: MilvusClient) -> None:
    name = "pu_basic"
    _make(client, name)
    client.insert(name, [
        {"id": i, "vec": [float(i)] * DIM, "title": f"t{i}", "price": 1.5 * i, "stock": i, "tags": [i]}
        for i in range(3)
    ])
    # id 1 changes its title only; id 9 is new: price (nullable) and stock (default) are filled.
    res = client.upsert(name, [{"id": 1, "title": "renamed"}], partial_update=True)
    assert res["upsert_count"] == 1
    client.upsert(name, [{"id": 9, "vec": [9.0] * DIM, "title": "new", "tags": []}], partial_update=True)
    rows = _rows(client, name)
    assert sorted(rows) == [0, 1, 2, 9]
    assert rows[1]["title"] == "renamed"
    assert rows[1]["price"] == pytest.approx(1.5) and rows[1]["stock"] == 1 and rows[1]["tags"] == [1]
    assert rows[1]["vec"] == pytest.approx([1.0] * DIM)
    assert rows[9]["price"] is None and rows[9]["stock"] == 7 and rows[9]["title"] == "new"
    assert rows[0]["title"] == "t0" and rows[2]["title"] == "t2"
    # an explicit null replaces the stored value
    client.upsert(name, [{"id": 2, "price": None}], partial_update=True)
    assert _rows(client, name)[2]["price"] is None
    client.drop_collection(name)


def test_partial_update_merges_dynamic_keys(client: MilvusClient) -> None:
    name = "pu_dynamic"
    _make(client, name, dynamic=True)
    client.insert(name, [{"id": 1, "vec": [1.0] * DIM, "title": "a", "tags": [], "color": "red", "size": 3}])
    client.upsert(name, [{"id": 1, "size": 4, "shape": "round"}], partial_update=True)
    row = _rows(client, name)[1]
    assert (row["color"], row["size"], row["shape"], row["title"]) == ("red", 4, "round", "a")
    client.drop_collection(name)


def test_array_append_and_remove(client: MilvusClient) -> None:
    name = "pu_arrays"
    _make(client, name)
    client.insert(name, [
        {"id": 1, "vec": [1.0] * DIM, "title": "a", "tags": [10, 20, 10]},
        {"id": 2, "vec": [2.0] * DIM, "title": "b", "tags": [5]},
    ])
    client.upsert(name, [{"id": 1, "tags": [10]}], field_ops={"tags": FieldOp.array_remove()})
    client.upsert(name, [{"id": 2, "tags": [6, 7]}], field_ops={"tags": FieldOp.array_append()})
    rows = _rows(client, name)
    assert rows[1]["tags"] == [20] and rows[1]["title"] == "a"
    assert rows[2]["tags"] == [5, 6, 7] and rows[2]["title"] == "b"
    client.drop_collection(name)


def test_bad_partial_updates_are_rejected_and_change_nothing(client: MilvusClient) -> None:
    name = "pu_bad"
    _make(client, name)
    client.insert(name, [{"id": 1, "vec": [1.0] * DIM, "title": "a", "tags": [1, 2, 3]}])
    before = _rows(client, name)
    cases: list[tuple[dict[str, Any], str]] = [
        # appending past max_capacity (5)
        (dict(data=[{"id": 1, "tags": [4, 5, 6]}], field_ops={"tags": FieldOp.array_append()}), "max_capacity"),
        # an array op on a scalar field
        (dict(data=[{"id": 1, "title": "x"}], field_ops={"title": FieldOp.array_append()}), "requires Array field"),
        # a new key without the required vector and title
        (dict(data=[{"id": 5, "tags": []}], partial_update=True), "fieldSchema(vec) has no corresponding fieldData"),
        # the same key twice in one batch
        (dict(data=[{"id": 1, "title": "x"}, {"id": 1, "title": "y"}], partial_update=True), "duplicate primary"),
    ]
    for kwargs, message in cases:
        with pytest.raises(MilvusException) as err:
            client.upsert(name, **kwargs)
        assert err.value.code == 1100, err.value
        assert message in err.value.message, err.value.message
    assert _rows(client, name) == before
    client.drop_collection(name)
