"""AddCollectionField end to end (pymilvus MilvusClient and REST v2), standalone and cluster.

Rows written before a field was added read as its default (or null) in query, search output and
filters, through flush, sealed loading and compaction; new rows may carry it; refused requests
name the problem with Milvus's code and leave the schema and the data as they were.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient, MilvusException

from tests.e2e.rest_call import post_v2
from tests.e2e.server import StandaloneServer

DIM = 8


def _collection(c: MilvusClient, name: str, rows: int = 30) -> list[dict[str, Any]]:
    schema = c.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("tag", DataType.VARCHAR, max_length=16)
    index = c.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    rng = np.random.default_rng(7)
    data = [{"id": i, "v": rng.random(DIM).tolist(), "tag": f"t{i}"} for i in range(rows)]
    c.insert(name, data)
    return data


def _by_id(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {int(r["id"]): r for r in rows}


def _wait_compacted(c: MilvusClient, job: int) -> None:
    deadline = time.monotonic() + 120
    while c.get_compaction_state(job) != "Completed":
        assert time.monotonic() < deadline, "compaction did not complete"
        time.sleep(0.5)


def test_added_fields_read_as_default_or_null_everywhere(server: StandaloneServer) -> None:
    c = MilvusClient(uri=server.uri)
    name = "addf_main"
    old = _collection(c, name)
    c.flush(name)  # some old rows sealed, some growing after the next insert
    c.insert(name, [{"id": 100, "v": [0.5] * DIM, "tag": "g"}])
    c.add_collection_field(name, "score", DataType.INT64, nullable=True, default_value=7)
    c.add_collection_field(name, "note", DataType.VARCHAR, max_length=32, nullable=True)
    described = c.describe_collection(name)
    added = {f["name"]: f for f in described["fields"] if f["name"] in ("score", "note")}
    assert set(added) == {"score", "note"} and added["score"]["params"].get("default_value", 7) in (7, "7")
    ids = {f["name"]: f["field_id"] for f in described["fields"]}
    assert ids["note"] == ids["score"] + 1 > ids["tag"]

    rows = _by_id(c.query(name, filter="id >= 0", output_fields=["score", "note"]))
    assert len(rows) == len(old) + 1
    assert all(r["score"] == 7 and r["note"] is None for r in rows.values())
    c.insert(name, [{"id": 200, "v": [0.1] * DIM, "tag": "n", "score": 42, "note": "hello"},
                    {"id": 201, "v": [0.2] * DIM, "tag": "n"}])
    got = _by_id(c.query(name, filter="id >= 200", output_fields=["score", "note"]))
    assert (got[200]["score"], got[200]["note"]) == (42, "hello")
    assert (got[201]["score"], got[201]["note"]) == (7, None)
    assert c.query(name, filter="score == 42", output_fields=["id"]) == [{"id": 200}]
    assert len(c.query(name, filter="score == 7", output_fields=["id"])) == len(old) + 2
    assert c.query(name, filter="note is null", output_fields=["count(*)"])[0]["count(*)"] == len(old) + 2
    hits = c.search(name, data=[[0.1] * DIM], limit=5, output_fields=["score", "note"])[0]
    assert hits[0]["id"] == 200 and hits[0]["entity"]["score"] == 42
    assert all(h["entity"]["score"] == 7 and h["entity"]["note"] is None for h in hits[1:])

    # flush the mixed data, reload from sealed segments, compact old with new: values survive
    c.flush(name)
    c.release_collection(name)
    c.load_collection(name)
    again = _by_id(c.query(name, filter="id >= 0", output_fields=["score", "note"]))
    assert again[200]["note"] == "hello" and again[0]["score"] == 7 and again[0]["note"] is None
    _wait_compacted(c, c.compact(name))
    after = _by_id(c.query(name, filter="id >= 0", output_fields=["score", "note"]))
    assert after == again


def test_add_field_refusals_leave_schema_and_data(server: StandaloneServer) -> None:
    c = MilvusClient(uri=server.uri)
    name = "addf_bad"
    _collection(c, name, rows=10)
    before = c.describe_collection(name)["fields"]
    cases = [
        (dict(field_name="x", data_type=DataType.INT64), 1100, "added field must be nullable"),
        (dict(field_name="tag", data_type=DataType.INT64, nullable=True), 1100, "duplicate field name: tag"),
        (dict(field_name="w", data_type=DataType.FLOAT_VECTOR, dim=1, nullable=True), 1100, "invalid dimension: 1"),
        (dict(field_name="s", data_type=DataType.VARCHAR, nullable=True), 1101,
         "type param(max_length) should be specified"),
        (dict(field_name="1bad", data_type=DataType.INT64, nullable=True), 1701, "field name invalid"),
        (dict(field_name="p", data_type=DataType.INT64, nullable=True, is_partition_key=True), 1100,
         "not support to add partition key field"),
    ]
    for kwargs, code, text in cases:
        with pytest.raises(MilvusException) as err:
            c.add_collection_field(name, **kwargs)
        assert err.value.code == code and text in err.value.message, (kwargs, err.value)
    with pytest.raises(MilvusException) as err:  # pymilvus 3 drops fields through AlterCollectionSchema
        c.drop_collection_field(name, field_name="tag")
    assert err.value.code == 10 and "not supported" in err.value.message
    assert c.describe_collection(name)["fields"] == before
    assert len(c.query(name, filter="id >= 0", output_fields=["tag"])) == 10
    with pytest.raises(MilvusException) as err:
        c.add_collection_field("addf_missing", "x", DataType.INT64, nullable=True)
    assert err.value.code == 100


def test_too_many_fields(server: StandaloneServer) -> None:
    c = MilvusClient(uri=server.uri)
    name = "addf_many"
    _collection(c, name, rows=2)
    for i in range(61):  # id, v, tag + 61 = 64 fields, Milvus's maximum
        c.add_collection_field(name, f"f{i}", DataType.INT8, nullable=True)
    with pytest.raises(MilvusException) as err:
        c.add_collection_field(name, "one_more", DataType.INT8, nullable=True)
    assert err.value.code == 1100 and "The number of fields has reached the maximum value 64" in err.value.message
    rows = c.query(name, filter="id >= 0", output_fields=["f60"])
    assert [r["f60"] for r in rows] == [None, None]


def test_rest_add_field(server: StandaloneServer) -> None:
    c = MilvusClient(uri=server.uri)
    name = "addf_rest"
    _collection(c, name, rows=5)
    body = {"collectionName": name,
            "schema": {"fieldName": "level", "dataType": "Int32", "nullable": True, "defaultValue": 3}}
    assert post_v2(server, "/collections/fields/add", body)["code"] == 0
    assert all(r["level"] == 3 for r in c.query(name, filter="id >= 0", output_fields=["level"]))
    bad = post_v2(server, "/collections/fields/add",
                {"collectionName": name, "schema": {"fieldName": "z", "dataType": "Int32"}})
    assert bad["code"] == 1100 and "added field must be nullable" in bad["message"]
    desc = post_v2(server, "/collections/describe", {"collectionName": name})["data"]
    assert [f["name"] for f in desc["fields"]][-1] == "level"


def test_orm_properties_rename_truncate(server: StandaloneServer) -> None:
    """The ORM API's set_properties, utility.rename_collection and Collection.truncate."""
    from pymilvus import Collection, connections, utility

    alias = f"orm-{server.grpc_port}"
    connections.connect(alias=alias, uri=server.uri)
    try:
        c = MilvusClient(uri=server.uri)
        _collection(c, "orm_a", rows=12)
        coll = Collection("orm_a", using=alias)
        coll.set_properties({"collection.ttl.seconds": 600})
        assert c.describe_collection("orm_a")["properties"]["collection.ttl.seconds"] == "600"
        utility.rename_collection("orm_a", "orm_b", using=alias)
        assert utility.has_collection("orm_b", using=alias) and not utility.has_collection("orm_a", using=alias)
        renamed = Collection("orm_b", using=alias)
        assert renamed.query("id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 12
        renamed.truncate()
        assert renamed.query("id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 0
    finally:
        connections.disconnect(alias)


ADD_FIELD_26 = """
import sys
from pymilvus import DataType, MilvusClient
c = MilvusClient(uri=sys.argv[1])
c.add_collection_field("addf_26", "extra", DataType.DOUBLE, nullable=True, default_value=1.5)
rows = c.query("addf_26", filter="id >= 0", output_fields=["extra"])
assert len(rows) == 4 and all(r["extra"] == 1.5 for r in rows), rows
try:
    c.add_collection_field("addf_26", "bad", DataType.INT64)
except Exception as exc:
    assert "added field must be nullable" in str(exc), exc
else:
    raise SystemExit("non-nullable field accepted")
print("OK")
"""


def test_pymilvus_26_add_collection_field(server: StandaloneServer) -> None:
    """pymilvus 2.6 calls AddCollectionField directly (3.0 tries AlterCollectionSchema first)."""
    import subprocess

    from tests.e2e.client_venvs import IndexUnreachable, ensure_env

    try:
        env = ensure_env("2.6.17")
    except IndexUnreachable as exc:
        pytest.skip(f"no pymilvus 2.6 venv: {exc}")
    c = MilvusClient(uri=server.uri)
    _collection(c, "addf_26", rows=4)
    out = subprocess.run([str(env.python), "-c", ADD_FIELD_26, server.uri], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("OK"), out.stdout + out.stderr
