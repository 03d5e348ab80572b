"""Collection, field, index and database properties; rename; TTL; truncate — standalone and cluster.

Every refused request is checked for Milvus's code and message and for leaving the stored
metadata and data as they were.
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


def _make(c: MilvusClient, name: str, rows: int = 20, **kwargs: Any) -> None:
    schema = c.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("tag", DataType.VARCHAR, max_length=8)
    index = c.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2", index_name="v_idx")
    c.create_collection(name, schema=schema, index_params=index, consistency_level="Strong", **kwargs)
    rng = np.random.default_rng(3)
    if rows:
        c.insert(name, [{"id": i, "v": rng.random(DIM).tolist(), "tag": f"t{i}"} for i in range(rows)])


def _count(c: MilvusClient, name: str, **kwargs: Any) -> int:
    return int(c.query(name, filter="", output_fields=["count(*)"], **kwargs)[0]["count(*)"])


def _refused(fn: Any, code: int, text: str) -> None:
    with pytest.raises(MilvusException) as err:
        fn()
    assert err.value.code == code and text in err.value.message, err.value


def test_collection_properties(server: StandaloneServer) -> None:
    c = MilvusClient(uri=server.uri)
    _make(c, "props_coll")
    c.alter_collection_properties("props_coll", {"collection.ttl.seconds": 3600,
                                                 "collection.autocompaction.enabled": False})
    props = c.describe_collection("props_coll")["properties"]
    assert props["collection.ttl.seconds"] == "3600" and props["collection.autocompaction.enabled"] == "False"
    assert _count(c, "props_coll") == 20  # an hour's TTL hides nothing just written
    c.drop_collection_properties("props_coll", ["collection.autocompaction.enabled"])
    assert "collection.autocompaction.enabled" not in c.describe_collection("props_coll")["properties"]
    _refused(lambda: c.alter_collection_properties("props_coll", {"collection.ttl.seconds": "soon"}), 1100,
             "collection TTL is not a valid positive integer")
    _refused(lambda: c.alter_collection_properties("props_coll", {"collection.ttl.seconds": -5}), 1100,
             "collection TTL is out of range, expect [-1, 3155760000], got -5")
    _refused(lambda: c.alter_collection_properties("props_coll", {"mmap.enabled": True}), 104,
             "can not alter mmap properties if collection loaded")
    _refused(lambda: c.alter_collection_properties("props_missing", {"a": "b"}), 100, "props_missing")
    assert c.describe_collection("props_coll")["properties"]["collection.ttl.seconds"] == "3600"
    c.release_collection("props_coll")
    c.alter_collection_properties("props_coll", {"mmap.enabled": True})
    assert c.describe_collection("props_coll")["properties"]["mmap.enabled"] == "True"
    rest = post_v2(server, "/collections/alter_properties",
                 {"collectionName": "props_coll", "properties": {"collection.ttl.seconds": 60}})
    assert rest["code"] == 0
    desc = post_v2(server, "/collections/describe", {"collectionName": "props_coll"})["data"]
    assert {"key": "collection.ttl.seconds", "value": "60"} in desc["properties"]
    assert post_v2(server, "/collections/drop_properties",
                 {"collectionName": "props_coll", "propertyKeys": ["mmap.enabled"]})["code"] == 0
    assert "mmap.enabled" not in c.describe_collection("props_coll")["properties"]


def test_field_index_and_database_properties(server: StandaloneServer) -> None:
    c = MilvusClient(uri=server.uri)
    _make(c, "props_field")
    _refused(lambda: c.alter_collection_field("props_field", "tag", {"max_length": 70000}), 1100,
             "70000 exceeds the maximum allowed value 65535")
    _refused(lambda: c.alter_collection_field("props_field", "id", {"max_length": 10}), 1100,
             "can not modify the maxlength for non-string types")
    _refused(lambda: c.alter_collection_field("props_field", "tag", {"dim": 3}), 1100,
             "dim does not allow update in collection field param")
    _refused(lambda: c.alter_collection_field("props_field", "tag", {"mmap.enabled": True}), 104,
             "can not alter collection field properties if collection loaded")
    _refused(lambda: c.insert("props_field", [{"id": 99, "v": [0.0] * DIM, "tag": "x" * 12}]), 1100, "tag")
    c.alter_collection_field("props_field", "tag", {"max_length": 16})
    tag = next(f for f in c.describe_collection("props_field")["fields"] if f["name"] == "tag")
    assert tag["params"]["max_length"] == 16
    c.insert("props_field", [{"id": 99, "v": [0.0] * DIM, "tag": "x" * 12}])
    assert c.query("props_field", filter="id == 99", output_fields=["tag"])[0]["tag"] == "x" * 12
    rest = post_v2(server, "/collections/fields/alter_properties",
                 {"collectionName": "props_field", "fieldName": "tag", "fieldParams": {"max_length": 20}})
    assert rest["code"] == 0

    _refused(lambda: c.alter_index_properties("props_field", "v_idx", {"mmap.enabled": True}), 104,
             "can't alter index on loaded collection")
    c.release_collection("props_field")
    _refused(lambda: c.alter_index_properties("props_field", "v_idx", {"nlist": 8}), 1100,
             "nlist is not a configable index property")
    _refused(lambda: c.alter_index_properties("props_field", "nope", {"mmap.enabled": True}), 700,
             "index not found[indexName=nope]")
    c.alter_index_properties("props_field", "v_idx", {"mmap.enabled": True})
    assert c.describe_index("props_field", "v_idx")["mmap.enabled"].lower() == "true"
    assert post_v2(server, "/indexes/describe",
                 {"collectionName": "props_field", "indexName": "v_idx"})["data"][0]["mmapEnabled"].lower() == "true"
    c.drop_index_properties("props_field", "v_idx", ["mmap.enabled"])
    assert "mmap.enabled" not in c.describe_index("props_field", "v_idx")
    c.alter_collection_field("props_field", "tag", {"mmap.enabled": True})
    c.load_collection("props_field")
    assert _count(c, "props_field") == 21

    c.create_database("props_db")
    c.alter_database_properties("props_db", {"database.max.collections": 5})
    assert c.describe_database("props_db")["database.max.collections"] == "5"
    c.drop_database_properties("props_db", ["database.max.collections"])
    assert "database.max.collections" not in c.describe_database("props_db")
    _refused(lambda: c.alter_database_properties("props_nodb", {"a": "b"}), 800, "database not found")
    assert post_v2(server, "/databases/alter", {"dbName": "props_db", "properties": {"k": "v"}})["code"] == 0
    got = post_v2(server, "/databases/describe", {"dbName": "props_db"})["data"]
    assert {"key": "k", "value": "v"} in got["properties"]


def test_rename_collection(server: StandaloneServer) -> None:
    c = MilvusClient(uri=server.uri)
    _make(c, "ren_a")
    _make(c, "ren_b", rows=0)
    _refused(lambda: c.rename_collection("ren_a", "ren_b"), 65535,
             "duplicated new collection name default:ren_b with other collection name or alias")
    _refused(lambda: c.rename_collection("ren_a", "1bad"), 1100, "Invalid collection name: 1bad")
    _refused(lambda: c.rename_collection("ren_a", "ren_c", target_db="ren_nodb"), 65535,
             "target database:ren_nodb not found")
    c.create_alias("ren_a", "ren_alias")
    _refused(lambda: c.rename_collection("ren_alias", "ren_c"), 65535, "unsupported use an alias")
    c.create_database("ren_db")
    _refused(lambda: c.rename_collection("ren_a", "ren_c", target_db="ren_db"), 65535,
             "must drop all aliases of this collection before rename")
    assert _count(c, "ren_a") == 20
    c.rename_collection("ren_a", "ren_c")
    assert not c.has_collection("ren_a") and _count(c, "ren_c") == 20
    assert _count(c, "ren_alias") == 20  # the alias follows the collection
    c.drop_alias("ren_alias")
    c.rename_collection("ren_c", "ren_d", target_db="ren_db")
    assert "ren_c" not in c.list_collections()
    other = MilvusClient(uri=server.uri, db_name="ren_db")
    assert other.list_collections() == ["ren_d"] and _count(other, "ren_d") == 20
    assert other.describe_collection("ren_d")["collection_name"] == "ren_d"
    assert post_v2(server, "/collections/rename", {"dbName": "ren_db", "collectionName": "ren_d",
                                                 "newCollectionName": "ren_e"})["code"] == 0
    assert other.list_collections() == ["ren_e"]


def test_ttl_hides_then_compaction_drops(server: StandaloneServer) -> None:
    c = MilvusClient(uri=server.uri)
    _make(c, "ttl_coll", rows=30)
    c.flush("ttl_coll")
    c.insert("ttl_coll", [{"id": 100 + i, "v": [0.1] * DIM, "tag": "g"} for i in range(5)])  # growing
    assert _count(c, "ttl_coll") == 35
    time.sleep(1.5)
    c.alter_collection_properties("ttl_coll", {"collection.ttl.seconds": 1})
    assert _count(c, "ttl_coll") == 0  # every row is older than the TTL
    assert c.query("ttl_coll", filter="id >= 0", output_fields=["id"]) == []
    assert c.search("ttl_coll", data=[[0.1] * DIM], limit=5)[0] == []
    c.flush("ttl_coll")
    job = c.compact("ttl_coll")
    deadline = time.monotonic() + 120
    while c.get_compaction_state(job) != "Completed":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    # physically gone: the statistics count stored rows, expired or not
    assert c.get_collection_stats("ttl_coll")["row_count"] == 0
    # Reload: a querynode may still hold growing copies of segments compaction dropped before their
    # sealed copies were loaded (see the report); from storage, the expired rows are gone for good.
    c.release_collection("ttl_coll")
    c.load_collection("ttl_coll")
    c.drop_collection_properties("ttl_coll", ["collection.ttl.seconds"])
    assert _count(c, "ttl_coll") == 0
    c.insert("ttl_coll", [{"id": 500, "v": [0.3] * DIM, "tag": "n"}])
    assert _count(c, "ttl_coll") == 1


def test_truncate_collection(server: StandaloneServer) -> None:
    c = MilvusClient(uri=server.uri)
    _make(c, "trunc_coll", rows=25)
    c.flush("trunc_coll")
    c.insert("trunc_coll", [{"id": 1000 + i, "v": [0.2] * DIM, "tag": "g"} for i in range(5)])
    c.truncate_collection("trunc_coll")
    assert _count(c, "trunc_coll") == 0
    assert c.search("trunc_coll", data=[[0.2] * DIM], limit=3)[0] == []
    assert c.get_collection_stats("trunc_coll")["row_count"] == 0
    assert c.get_load_state("trunc_coll")["state"].name == "Loaded"
    assert [i for i in c.list_indexes("trunc_coll")] == ["v_idx"]
    c.insert("trunc_coll", [{"id": 1, "v": [0.4] * DIM, "tag": "after"}])
    assert c.query("trunc_coll", filter="id >= 0", output_fields=["tag"]) == [{"id": 1, "tag": "after"}]
    _refused(lambda: c.truncate_collection("trunc_missing"), 100, "trunc_missing")
    assert post_v2(server, "/collections/truncate", {"collectionName": "trunc_coll"})["code"] == 0
    assert _count(c, "trunc_coll") == 0
