"""Milvus's RESTful API v2 against a real standalone server, driven over HTTP with httpx.

Covers the collection lifecycle (quick setup and full schema), entities (insert, upsert,
query, get, search, delete), indexes, partitions, aliases, databases, Milvus's error
envelopes for bad requests (always HTTP 200 with a code), the OpenAPI document, and that a
collection made over REST works from pymilvus's MilvusClient and the other way round.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pymilvus import MilvusClient

from tests.e2e.server import StandaloneServer

pytestmark = pytest.mark.e2e

DIM = 4
ROWS = [
    {"id": 1, "vector": [1.0, 0.0, 0.0, 0.0], "color": "red", "size": 10},
    {"id": 2, "vector": [0.0, 1.0, 0.0, 0.0], "color": "green", "size": 20},
    {"id": 3, "vector": [0.0, 0.0, 1.0, 0.0], "color": "blue", "size": 30},
    {"id": 4, "vector": [0.7, 0.7, 0.0, 0.0], "color": "red", "size": 40},
]


class Rest:
    def __init__(self, http_port: int) -> None:
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{http_port}",
            headers={"Authorization": "Bearer root:Milvus"},
            timeout=60.0,
        )

    def raw(self, path: str, body: Any = None, **kwargs: Any) -> dict[str, Any]:
        resp = self.client.post(f"/v2/vectordb/{path}", json=body, **kwargs)
        assert resp.status_code == 200, resp.text  # Milvus answers errors with HTTP 200 too
        return resp.json()  # type: ignore[no-any-return]

    def ok(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        reply = self.raw(path, body, **kwargs)
        assert reply["code"] == 0, reply
        return reply["data"]

    def fail(self, path: str, body: Any, code: int, **kwargs: Any) -> str:
        reply = self.raw(path, body, **kwargs)
        assert reply["code"] == code, reply
        assert "data" not in reply
        return str(reply["message"])


@pytest.fixture(scope="module")
def rest(server: StandaloneServer) -> Iterator[Rest]:
    client = Rest(server.http_port)
    yield client
    client.client.close()


@pytest.fixture(scope="module")
def milvus(server: StandaloneServer) -> Iterator[MilvusClient]:
    client = MilvusClient(uri=server.uri)
    yield client
    client.close()


def quick_collection(rest: Rest, name: str, **extra: Any) -> None:
    body = {"collectionName": name, "dimension": DIM, "params": {"consistencyLevel": "Strong"}, **extra}
    assert rest.ok("collections/create", body) == {}


def test_quick_setup_collection_lifecycle(rest: Rest) -> None:
    quick_collection(rest, "quick")
    assert rest.ok("collections/has", {"collectionName": "quick"}) == {"has": True}
    assert "quick" in rest.ok("collections/list", {})
    desc = rest.ok("collections/describe", {"collectionName": "quick"})
    assert desc["collectionName"] == "quick"
    assert desc["autoId"] is False and desc["enableDynamicField"] is True
    assert desc["consistencyLevel"] == "Strong" and desc["load"] == "LoadStateLoaded"
    by_name = {f["name"]: f for f in desc["fields"]}
    assert set(by_name) == {"id", "vector"}
    assert by_name["id"]["type"] == "Int64" and by_name["id"]["primaryKey"] is True
    assert by_name["vector"]["type"] == "FloatVector"
    assert {"key": "dim", "value": str(DIM)} in by_name["vector"]["params"]
    assert desc["indexes"] == [{"indexName": "vector", "fieldName": "vector", "metricType": "COSINE"}]
    state = rest.ok("collections/get_load_state", {"collectionName": "quick"})
    assert state == {"loadState": "LoadStateLoaded", "loadProgress": 100}

    inserted = rest.ok("entities/insert", {"collectionName": "quick", "data": ROWS})
    assert inserted == {"insertCount": 4, "insertIds": [1, 2, 3, 4]}
    rest.ok("collections/flush", {"collectionName": "quick"})
    assert rest.ok("collections/get_stats", {"collectionName": "quick"}) == {"rowCount": 4}

    rest.ok("collections/release", {"collectionName": "quick"})
    assert rest.ok("collections/get_load_state", {"collectionName": "quick"}) == {"loadState": "LoadStateNotLoad"}
    rest.ok("collections/load", {"collectionName": "quick"})
    rest.ok("collections/drop", {"collectionName": "quick"})
    assert rest.ok("collections/has", {"collectionName": "quick"}) == {"has": False}
    assert "quick" not in rest.ok("collections/list")


def test_insert_query_get_search_delete(rest: Rest) -> None:
    quick_collection(rest, "entities")
    rest.ok("entities/insert", {"collectionName": "entities", "data": ROWS})

    rows = rest.ok("entities/query", {"collectionName": "entities", "filter": "size >= 20", "outputFields": ["*"]})
    assert sorted(r["id"] for r in rows) == [2, 3, 4]
    red = rest.ok(
        "entities/query", {"collectionName": "entities", "filter": 'color == "red"', "outputFields": ["size"]}
    )
    assert sorted((r["id"], r["size"]) for r in red) == [(1, 10), (4, 40)]
    assert all("vector" not in r for r in red)
    count = rest.ok("entities/query", {"collectionName": "entities", "filter": "", "outputFields": ["count(*)"]})
    assert count == [{"count(*)": 4}]
    page = rest.ok(
        "entities/query",
        {"collectionName": "entities", "filter": "id > 0", "limit": 2, "offset": 1, "outputFields": []},
    )
    assert len(page) == 2

    got = rest.ok("entities/get", {"collectionName": "entities", "id": [3, 1], "outputFields": ["vector", "color"]})
    assert {r["id"]: r["color"] for r in got} == {1: "red", 3: "blue"}
    assert {r["id"]: r["vector"] for r in got}[3] == [0.0, 0.0, 1.0, 0.0]
    assert rest.ok("entities/get", {"collectionName": "entities", "id": "2"})[0]["color"] == "green"

    hits = rest.ok(
        "entities/search",
        {"collectionName": "entities", "data": [[1.0, 0.0, 0.0, 0.0]], "limit": 2, "outputFields": ["color"]},
    )
    assert [h["id"] for h in hits] == [1, 4]
    assert hits[0]["color"] == "red" and hits[0]["distance"] == pytest.approx(1.0, abs=1e-5)
    assert hits[0]["distance"] >= hits[1]["distance"]
    two = rest.raw(
        "entities/search",
        {
            "collectionName": "entities",
            "data": [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]],
            "limit": 1,
            "filter": "size > 0",
            "searchParams": {"metricType": "COSINE", "params": {}},
        },
    )
    assert two["code"] == 0 and two["topks"] == [1, 1]
    assert [h["id"] for h in two["data"]] == [2, 3]
    filtered = rest.ok(
        "entities/search",
        {"collectionName": "entities", "data": [[1.0, 0.0, 0.0, 0.0]], "limit": 4, "filter": "size > 15"},
    )
    assert [h["id"] for h in filtered][0] == 4 and 1 not in [h["id"] for h in filtered]

    upserted = rest.ok(
        "entities/upsert",
        {
            "collectionName": "entities",
            "data": [{"id": 2, "vector": [0.0, 1.0, 0.0, 0.0], "color": "pink", "size": 21}],
        },
    )
    assert upserted == {"upsertCount": 1, "upsertIds": [2]}
    assert rest.ok("entities/get", {"collectionName": "entities", "id": 2})[0]["color"] == "pink"

    assert rest.ok("entities/delete", {"collectionName": "entities", "filter": "id in [1, 2]"}) == {"deleteCount": 2}
    assert rest.ok("entities/delete", {"collectionName": "entities", "id": 3})["deleteCount"] == 1
    left = rest.ok("entities/query", {"collectionName": "entities", "filter": "id > 0", "outputFields": ["id"]})
    assert [r["id"] for r in left] == [4]
    rest.ok("collections/drop", {"collectionName": "entities"})


def test_int64_values_as_strings_on_request(rest: Rest) -> None:
    quick_collection(rest, "int64s")
    headers = {"Accept-Type-Allow-Int64": "false"}
    inserted = rest.ok("entities/insert", {"collectionName": "int64s", "data": ROWS[:2]}, headers=headers)
    assert inserted["insertIds"] == ["1", "2"]
    rows = rest.ok("entities/get", {"collectionName": "int64s", "id": ["1"]}, headers=headers)
    assert rows[0]["id"] == "1"
    hits = rest.ok("entities/search", {"collectionName": "int64s", "data": [ROWS[0]["vector"]]}, headers=headers)
    assert hits[0]["id"] == "1"
    rest.ok("collections/drop", {"collectionName": "int64s"})


def test_full_schema_with_typed_fields(rest: Rest) -> None:
    schema = {
        "enableDynamicField": False,
        "fields": [
            {"fieldName": "pk", "dataType": "VarChar", "isPrimary": True, "elementTypeParams": {"max_length": 32}},
            {"fieldName": "age", "dataType": "Int32", "nullable": True},
            {"fieldName": "score", "dataType": "Double", "defaultValue": 1.5},
            {
                "fieldName": "tags",
                "dataType": "Array",
                "elementDataType": "VarChar",
                "elementTypeParams": {"max_capacity": 4, "max_length": 16},
            },
            {"fieldName": "meta", "dataType": "JSON"},
            {"fieldName": "bits", "dataType": "BinaryVector", "elementTypeParams": {"dim": 16}},
            {"fieldName": "sparse", "dataType": "SparseFloatVector"},
        ],
    }
    indexes = [
        {"fieldName": "bits", "indexName": "bits_idx", "metricType": "HAMMING", "indexType": "BIN_FLAT"},
        {"fieldName": "sparse", "metricType": "IP", "indexType": "SPARSE_INVERTED_INDEX"},
    ]
    body = {
        "collectionName": "typed",
        "schema": schema,
        "indexParams": indexes,
        "params": {"consistencyLevel": "Strong"},
    }
    rest.ok("collections/create", body)
    desc = rest.ok("collections/describe", {"collectionName": "typed"})
    fields = {f["name"]: f for f in desc["fields"]}
    assert fields["pk"]["type"] == "VarChar" and fields["age"]["nullable"] is True
    assert fields["tags"]["elementType"] == "VarChar" and fields["score"]["defaultValue"] == 1.5
    data = [
        {"pk": "a", "age": 3, "score": 2.5, "tags": ["x"], "meta": {"k": 1}, "bits": [1, 2], "sparse": {"1": 0.5}},
        {"pk": "b", "age": None, "tags": [], "meta": [1, 2], "bits": "AwQ=", "sparse": {"3": 1.0, "9": 0.5}},
    ]
    assert rest.ok("entities/insert", {"collectionName": "typed", "data": data})["insertIds"] == ["a", "b"]

    rows = {r["pk"]: r for r in rest.ok("entities/query", {"collectionName": "typed", "filter": 'pk != ""'})}
    assert rows["a"]["age"] == 3 and rows["b"]["age"] is None
    assert rows["b"]["score"] == 1.5 and rows["a"]["tags"] == ["x"]
    assert rows["a"]["meta"] == {"k": 1} and rows["b"]["meta"] == [1, 2]
    assert rows["a"]["bits"] == "AQI=" and rows["b"]["sparse"] == {"3": 1.0, "9": 0.5}

    bits = rest.ok("entities/search", {"collectionName": "typed", "annsField": "bits", "data": [[3, 4]], "limit": 1})
    assert bits == [{"id": "b", "distance": 0.0}]
    sparse = rest.ok("entities/search", {"collectionName": "typed", "annsField": "sparse", "data": [{"1": 1.0}]})
    assert [h["id"] for h in sparse] == ["a"]
    message = rest.fail("entities/search", {"collectionName": "typed", "data": [[3, 4]]}, 1801)
    assert "multiple vector fields" in message
    rest.ok("collections/drop", {"collectionName": "typed"})


def test_index_routes(rest: Rest) -> None:
    schema = {
        "fields": [
            {"fieldName": "id", "dataType": "Int64", "isPrimary": True},
            {"fieldName": "emb", "dataType": "FloatVector", "elementTypeParams": {"dim": DIM}},
        ]
    }
    rest.ok("collections/create", {"collectionName": "indexed", "schema": schema})
    state = rest.ok("collections/get_load_state", {"collectionName": "indexed"})
    assert state == {"loadState": "LoadStateNotLoad"}
    assert rest.ok("indexes/list", {"collectionName": "indexed"}) == []
    params = [
        {
            "fieldName": "emb",
            "indexName": "emb_ivf",
            "metricType": "L2",
            "indexType": "IVF_FLAT",
            "params": {"nlist": 8},
        }
    ]
    rest.ok("indexes/create", {"collectionName": "indexed", "indexParams": params})
    assert rest.ok("indexes/list", {"collectionName": "indexed"}) == ["emb_ivf"]
    (desc,) = rest.ok("indexes/describe", {"collectionName": "indexed", "indexName": "emb_ivf"})
    assert desc["indexName"] == "emb_ivf" and desc["fieldName"] == "emb"
    assert desc["indexType"] == "IVF_FLAT" and desc["metricType"] == "L2"
    assert desc["indexState"] == "Finished"
    rest.ok("collections/load", {"collectionName": "indexed"})
    assert rest.ok("collections/get_load_state", {"collectionName": "indexed"})["loadState"] == "LoadStateLoaded"
    rest.ok("collections/release", {"collectionName": "indexed"})
    rest.ok("indexes/drop", {"collectionName": "indexed", "indexName": "emb_ivf"})
    assert rest.ok("indexes/list", {"collectionName": "indexed"}) == []
    rest.ok("collections/drop", {"collectionName": "indexed"})


def test_partitions(rest: Rest) -> None:
    quick_collection(rest, "parted")
    rest.ok("partitions/create", {"collectionName": "parted", "partitionName": "p1"})
    assert rest.ok("partitions/has", {"collectionName": "parted", "partitionName": "p1"}) == {"has": True}
    assert rest.ok("partitions/has", {"collectionName": "parted", "partitionName": "p9"}) == {"has": False}
    assert set(rest.ok("partitions/list", {"collectionName": "parted"})) == {"_default", "p1"}
    rest.ok("entities/insert", {"collectionName": "parted", "partitionName": "p1", "data": ROWS[:3]})
    rest.ok("entities/insert", {"collectionName": "parted", "data": ROWS[3:]})
    rest.ok("collections/flush", {"collectionName": "parted"})
    assert rest.ok("partitions/get_stats", {"collectionName": "parted", "partitionName": "p1"}) == {"rowCount": 3}
    only = rest.ok("entities/query", {"collectionName": "parted", "filter": "id > 0", "partitionNames": ["p1"]})
    assert sorted(r["id"] for r in only) == [1, 2, 3]
    rest.ok("collections/release", {"collectionName": "parted"})
    rest.ok("partitions/load", {"collectionName": "parted", "partitionNames": ["p1"]})
    hits = rest.ok(
        "entities/search",
        {"collectionName": "parted", "partitionNames": ["p1"], "data": [ROWS[3]["vector"]], "limit": 4},
    )
    assert 4 not in [h["id"] for h in hits] and len(hits) == 3
    rest.ok("partitions/release", {"collectionName": "parted", "partitionNames": ["p1"]})
    rest.ok("partitions/drop", {"collectionName": "parted", "partitionName": "p1"})
    assert rest.ok("partitions/list", {"collectionName": "parted"}) == ["_default"]
    rest.ok("collections/drop", {"collectionName": "parted"})


def test_aliases(rest: Rest) -> None:
    quick_collection(rest, "target_a")
    quick_collection(rest, "target_b")
    rest.ok("entities/insert", {"collectionName": "target_b", "data": ROWS[:1]})
    rest.ok("aliases/create", {"collectionName": "target_a", "aliasName": "current"})
    described = rest.ok("aliases/describe", {"aliasName": "current"})
    assert described == {"dbName": "default", "collectionName": "target_a", "aliasName": "current"}
    assert "current" in rest.ok("aliases/list", {})
    assert rest.ok("aliases/list", {"collectionName": "target_a"}) == ["current"]
    assert rest.ok("collections/describe", {"collectionName": "target_a"})["aliases"] == ["current"]
    rest.ok("aliases/alter", {"collectionName": "target_b", "aliasName": "current"})
    assert rest.ok("aliases/describe", {"aliasName": "current"})["collectionName"] == "target_b"
    rows = rest.ok("entities/query", {"collectionName": "current", "filter": "id > 0"})
    assert [r["id"] for r in rows] == [1]
    rest.ok("aliases/drop", {"aliasName": "current"})
    assert rest.fail("aliases/describe", {"aliasName": "current"}, 1600)
    rest.ok("collections/drop", {"collectionName": "target_a"})
    rest.ok("collections/drop", {"collectionName": "target_b"})


def test_databases_and_db_name(rest: Rest) -> None:
    rest.ok("databases/create", {"dbName": "restdb"})
    assert set(rest.ok("databases/list", {})) >= {"default", "restdb"}
    desc = rest.ok("databases/describe", {"dbName": "restdb"})
    assert desc["dbName"] == "restdb" and desc["dbID"] > 0 and desc["properties"] == []
    quick_collection(rest, "in_db", dbName="restdb")
    assert rest.ok("collections/list", {"dbName": "restdb"}) == ["in_db"]
    assert rest.ok("collections/list", {}, headers={"DB-Name": "restdb"}) == ["in_db"]
    assert "in_db" not in rest.ok("collections/list", {})
    rest.ok("entities/insert", {"dbName": "restdb", "collectionName": "in_db", "data": ROWS[:2]})
    got = rest.ok("entities/get", {"dbName": "restdb", "collectionName": "in_db", "id": 2})
    assert got[0]["color"] == "green"
    rest.fail("entities/get", {"collectionName": "in_db", "id": 2}, 100)
    rest.ok("collections/drop", {"dbName": "restdb", "collectionName": "in_db"})
    rest.ok("databases/drop", {"dbName": "restdb"})
    assert "restdb" not in rest.ok("databases/list", {})


def test_error_envelopes(rest: Rest) -> None:
    bad = rest.client.post("/v2/vectordb/collections/describe", content=b"{not json")
    assert bad.status_code == 200 and bad.json()["code"] == 1801
    assert "json" in bad.json()["message"]
    message = rest.fail("collections/describe", {"collectionNam": "typo"}, 1802)
    assert "collectionName" in message
    assert "collectionName" in rest.fail("collections/has", {"collectionName": ""}, 1802)
    assert "data" in rest.fail("entities/insert", {"collectionName": "x"}, 1802)
    assert "limit" in rest.fail("entities/query", {"collectionName": "x", "limit": "lots"}, 1801)
    assert "dimension" in rest.fail("collections/create", {"collectionName": "nodim"}, 1100)
    missing = rest.fail("collections/describe", {"collectionName": "no_such_collection"}, 100)
    assert "no_such_collection" in missing
    rest.fail("entities/insert", {"collectionName": "no_such_collection", "data": ROWS}, 100)

    quick_collection(rest, "errors")
    rest.fail("entities/insert", {"collectionName": "errors", "data": []}, 1804)
    wrong_dim = rest.raw("entities/insert", {"collectionName": "errors", "data": [{"id": 1, "vector": [1.0]}]})
    assert wrong_dim["code"] != 0 and "dim" in wrong_dim["message"]
    assert rest.fail("entities/get", {"collectionName": "errors", "id": [{"x": 1}]}, 1806)
    level = rest.fail(
        "entities/query", {"collectionName": "errors", "filter": "id > 0", "consistencyLevel": "Now"}, 1100
    )
    assert "consistencyLevel" in level
    assert rest.fail("entities/search", {"collectionName": "errors", "data": [[1.0] * DIM], "annsField": "nope"}, 1801)
    assert "filter" in rest.fail("entities/delete", {"collectionName": "errors"}, 1802)
    # bulk import: tests/e2e/test_import.py
    assert rest.ok("jobs/import/list", {"collectionName": "errors"}) == {"records": []}
    rest.ok("collections/rename", {"collectionName": "errors", "newCollectionName": "renamed"})
    rest.ok("collections/drop", {"collectionName": "renamed"})

    assert rest.ok("users/list", {}) == ["root"]
    assert {"admin", "public"} <= set(rest.ok("roles/list", {}))
    assert "invalid password" in rest.fail("users/create", {"userName": "u", "password": "p"}, 1100)


def test_rest_collection_usable_from_pymilvus(rest: Rest, milvus: MilvusClient) -> None:
    quick_collection(rest, "from_rest")
    milvus.insert("from_rest", ROWS)
    assert rest.ok("entities/get", {"collectionName": "from_rest", "id": 4})[0]["color"] == "red"
    hits = milvus.search("from_rest", data=[ROWS[2]["vector"]], limit=1, output_fields=["color"])
    assert hits[0][0]["id"] == 3 and hits[0][0]["entity"]["color"] == "blue"
    rows = milvus.query("from_rest", filter="size > 25", output_fields=["color"], consistency_level="Strong")
    assert sorted(r["id"] for r in rows) == [3, 4]
    rest.ok("collections/drop", {"collectionName": "from_rest"})
    assert not milvus.has_collection("from_rest")


def test_pymilvus_collection_usable_from_rest(rest: Rest, milvus: MilvusClient) -> None:
    milvus.create_collection("from_client", dimension=DIM, consistency_level="Strong")
    desc = rest.ok("collections/describe", {"collectionName": "from_client"})
    assert desc["consistencyLevel"] == "Strong" and desc["load"] == "LoadStateLoaded"
    rest.ok("entities/insert", {"collectionName": "from_client", "data": ROWS})
    got = milvus.get("from_client", ids=[1, 2], output_fields=["color"])
    assert {r["id"]: r["color"] for r in got} == {1: "red", 2: "green"}
    hits = rest.ok("entities/search", {"collectionName": "from_client", "data": [ROWS[1]["vector"]], "limit": 1})
    assert hits[0]["id"] == 2
    milvus.drop_collection("from_client")
    assert rest.ok("collections/has", {"collectionName": "from_client"}) == {"has": False}


def test_openapi_documents_the_routes(rest: Rest) -> None:
    doc = rest.client.get("/openapi.json").json()
    paths = doc["paths"]
    for route in ("collections/create", "entities/search", "entities/insert", "indexes/describe", "databases/list"):
        assert f"/v2/vectordb/{route}" in paths
    schemas = doc["components"]["schemas"]
    assert {"SearchReq", "CreateCollectionReq", "InsertReq", "QueryReq", "IndexParam"} <= set(schemas)
    body = paths["/v2/vectordb/entities/search"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/SearchReq")
    assert set(schemas["SearchReq"]["required"]) == {"collectionName", "data"}
    assert "schema" in schemas["CreateCollectionReq"]["properties"]
