"""Full text search (a BM25 function over an analyzed VARCHAR field), on standalone and on a cluster.

Scores are checked against a model written here from Milvus's definitions: a document's tokens
(the texts use lower-case ASCII words, which the standard analyzer splits on spaces), IDF
``log(1 + (N - df + 0.5) / (df + 0.5))`` over every row of the shard (null text is a row of no
tokens; deleted rows still count, as in Milvus), and the BM25 term weight with k1 = 1.2, b = 0.75
and the shard's average document length. Growing, sealed + indexed and mixed data must all give
the model's scores; text_match filters, search by primary key, output rules and the bad-input
cases follow Milvus.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import pytest
from pymilvus import (
    AnnSearchRequest,
    DataType,
    Function,
    FunctionType,
    MilvusClient,
    MilvusException,
    RRFRanker,
)
from pymilvus.client.prepare import Prepare
from pymilvus.grpc_gen import milvus_pb2, schema_pb2

from common.fielddata.vectors import sparse_row_bytes
from tests.e2e.rest_call import post_v2
from tests.e2e.search_data import wait_indexed

pytestmark = pytest.mark.e2e

WORDS = [f"w{c}{d}" for c in "abcdefgh" for d in "xyz"]  # 24 words, no stop words, no digits split
K1, B = 1.2, 0.75


def _docs(n: int, seed: int, start: int = 0) -> dict[int, str | None]:
    rnd = random.Random(seed)
    docs: dict[int, str | None] = {}
    for i in range(start, start + n):
        if i % 17 == 5:
            docs[i] = None
            continue
        weights = [1 + (j % 5) * 3 for j in range(len(WORDS))]  # some words far more frequent
        docs[i] = " ".join(rnd.choices(WORDS, weights=weights, k=rnd.randint(1, 12)))
    return docs


def _model(corpus: dict[int, str | None], alive: set[int], query: str, limit: int) -> list[tuple[int, float]]:
    toks = {i: (t.split() if t else []) for i, t in corpus.items()}
    n = len(toks)
    avgdl = sum(len(v) for v in toks.values()) / n
    df = Counter(term for v in toks.values() for term in set(v))
    q = Counter(query.split())
    scored = []
    for i in alive:
        tf = Counter(toks[i])
        if not any(tf[t] for t in q):
            continue
        norm = K1 * (1 - B + B * len(toks[i]) / avgdl)
        s = sum(c * math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) * tf[t] * (K1 + 1) / (tf[t] + norm)
                for t, c in q.items() if tf[t])
        scored.append((i, s))
    scored.sort(key=lambda p: (-p[1], p[0]))
    return scored[:limit]


def _schema(c: MilvusClient, match: bool = True) -> Any:
    schema = c.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=1000, enable_analyzer=True, enable_match=match,
                     nullable=True)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                 output_field_names=["sparse"]))
    return schema


def _make(c: MilvusClient, name: str) -> None:
    index = c.prepare_index_params()
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    index.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_collection(name, schema=_schema(c), index_params=index, consistency_level="Strong", num_shards=1)


def _rows(docs: dict[int, str | None]) -> list[dict[str, Any]]:
    return [{"id": i, "text": t, "v": [float(i), 0.0]} for i, t in docs.items()]


def _check(c: MilvusClient, name: str, corpus: dict[int, str | None], alive: set[int], queries: list[str]) -> None:
    res = c.search(name, data=queries, anns_field="sparse", limit=10, output_fields=["text"])
    for query, hits in zip(queries, res, strict=True):
        want = _model(corpus, alive, query, 10)
        got = [(h["id"], h["distance"]) for h in hits]
        assert len(got) == len(want), (query, got, want)
        for (gi, gs), (wi, ws) in zip(got, want, strict=True):
            assert gs == pytest.approx(ws, rel=1e-4), (query, got, want)
            if gi != wi:  # equal scores may come in either order
                assert dict(want).get(gi) == pytest.approx(gs, rel=1e-4), (query, got, want)
        for h in hits:
            assert h["entity"]["text"] == corpus[h["id"]]


def test_bm25_scores_on_growing_sealed_and_mixed_data(server: Any) -> None:
    c = MilvusClient(uri=server.uri)
    name = "fts_scores"
    _make(c, name)
    desc = c.describe_collection(name)
    assert [f["name"] for f in desc["functions"]] == ["bm25"]
    assert next(f for f in desc["fields"] if f["name"] == "sparse").get("is_function_output") is True
    corpus = _docs(1200, seed=1)
    c.insert(name, _rows(corpus))
    queries = ["wax wby", "wcz wcz whx", "wax", "nothing here"]
    _check(c, name, corpus, set(corpus), queries)  # growing

    c.flush(name)
    wait_indexed(c, name, "sparse", 1200)
    c.release_collection(name)
    c.load_collection(name)
    _check(c, name, corpus, set(corpus), queries)  # sealed and indexed

    more = _docs(200, seed=2, start=5000)
    c.insert(name, _rows(more))
    corpus.update(more)
    _check(c, name, corpus, set(corpus), queries)  # sealed + growing: one corpus

    gone = [h["id"] for h in c.search(name, data=["wax"], anns_field="sparse", limit=3)[0]]
    c.delete(name, ids=gone)
    _check(c, name, corpus, set(corpus) - set(gone), queries)  # deleted rows still count in the IDF

    # search by primary key: the row's own text is the query
    pk = next(i for i, t in corpus.items() if t and i not in gone)
    by_pk = c.search(name, ids=[pk], anns_field="sparse", limit=10)
    want = _model(corpus, set(corpus) - set(gone), corpus[pk] or "", 10)
    assert [h["distance"] for h in by_pk[0]] == pytest.approx([s for _, s in want], rel=1e-4)
    c.drop_collection(name)


def test_text_match_and_hybrid_with_bm25(server: Any) -> None:
    c = MilvusClient(uri=server.uri)
    name = "fts_match"
    _make(c, name)
    corpus = _docs(300, seed=3)
    c.insert(name, _rows(corpus))
    holding = {i for i, t in corpus.items() if t and ({"wax", "wgz"} & set(t.split()))}
    got = {r["id"] for r in c.query(name, "TEXT_MATCH(text, 'wax wgz')", output_fields=["id"])}
    assert got == holding
    res = c.search(name, data=["wbx wax"], anns_field="sparse", limit=50, filter="text_match(text, 'wgz')")
    assert res[0] and all("wgz" in (corpus[h["id"]] or "").split() for h in res[0])
    # hybrid: a BM25 sub-request and a dense one, fused by RRF (k=60) over their own rankings
    text_hits = [h["id"] for h in c.search(name, data=["wbx"], anns_field="sparse", limit=5)[0]]
    dense_hits = [h["id"] for h in c.search(name, data=[[7.0, 0.0]], anns_field="v", limit=5)[0]]
    fused = c.hybrid_search(name, [AnnSearchRequest(["wbx"], "sparse", {}, limit=5),
                                   AnnSearchRequest([[7.0, 0.0]], "v", {}, limit=5)], RRFRanker(60), limit=5)
    rrf: dict[int, float] = {}
    for hits in (text_hits, dense_hits):
        for rank, pk in enumerate(hits):
            rrf[pk] = rrf.get(pk, 0.0) + 1.0 / (60 + rank + 1)
    assert [h["distance"] for h in fused[0]] == pytest.approx(sorted(rrf.values(), reverse=True)[:5], rel=1e-5)
    assert {h["id"] for h in fused[0]} <= set(rrf)
    c.drop_collection(name)


def test_outputs_and_inserts_of_the_function_field(server: Any) -> None:
    c = MilvusClient(uri=server.uri)
    name = "fts_rules"
    _make(c, name)
    c.insert(name, _rows({1: "wax wbx", 2: None}))
    # pymilvus refuses this itself; the server must too (raw InsertRequest, as another client may send)
    fields = [
        schema_pb2.FieldData(field_name="id", type=DataType.INT64,
                             scalars=schema_pb2.ScalarField(long_data=schema_pb2.LongArray(data=[3]))),
        schema_pb2.FieldData(field_name="text", type=DataType.VARCHAR,
                             scalars=schema_pb2.ScalarField(string_data=schema_pb2.StringArray(data=["wax"]))),
        schema_pb2.FieldData(field_name="v", type=DataType.FLOAT_VECTOR, vectors=schema_pb2.VectorField(
            dim=2, float_vector=schema_pb2.FloatArray(data=[0.0, 0.0]))),
        schema_pb2.FieldData(field_name="sparse", type=DataType.SPARSE_FLOAT_VECTOR, vectors=schema_pb2.VectorField(
            dim=2, sparse_float_vector=schema_pb2.SparseFloatArray(dim=2, contents=[sparse_row_bytes({1: 0.5})]))),
    ]
    reply = c._get_connection()._stub.Insert(
        milvus_pb2.InsertRequest(collection_name=name, fields_data=fields, num_rows=1))
    assert reply.status.code == 1100
    assert "attempt to insert bm25 function output field" in reply.status.reason
    with pytest.raises(MilvusException, match="not allowed to retrieve raw data of field sparse"):
        c.query(name, "id >= 0", output_fields=["sparse"])
    rows = c.query(name, "id >= 0", output_fields=["*"])
    assert sorted(rows, key=lambda r: r["id"]) == [{"id": 1, "text": "wax wbx", "v": [1.0, 0.0]},
                                                   {"id": 2, "text": None, "v": [2.0, 0.0]}]
    assert c.query(name, "id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 2
    with pytest.raises(MilvusException, match="please provide varchar/text for BM25 Function based search"):
        c.search(name, data=[{1: 0.5}], anns_field="sparse", limit=3)
    plain = c.run_analyzer(["Hello, World! wax"], analyzer_params={"tokenizer": "standard", "filter": ["lowercase"]})
    assert plain[0].tokens == ["hello", "world", "wax"]
    detail = c.run_analyzer("wax wbx", collection_name=name, field_name="text", with_detail=True, with_hash=True)
    assert [(t.token, t.start_offset, t.end_offset, t.position) for t in detail.tokens] == [
        ("wax", 0, 3, 0), ("wbx", 4, 7, 1)]
    # the hash is the token's sparse dimension: a search for it finds the row whose text holds it
    assert len({t.hash for t in detail.tokens}) == 2
    c.drop_collection(name)


def _raw_create(c: MilvusClient, schema: Any, inputs: list[str] | None = None,
                outputs: list[str] | None = None) -> Any:
    """CreateCollection as any client could send it (pymilvus checks some of these itself)."""
    request = Prepare.create_collection_request("fts_bad", schema)
    proto = schema_pb2.CollectionSchema.FromString(request.schema)
    fn = proto.functions[0]
    if inputs is not None:
        del fn.input_field_names[:]
        fn.input_field_names.extend(inputs)
    if outputs is not None:
        del fn.output_field_names[:]
        fn.output_field_names.extend(outputs)
    request.schema = proto.SerializeToString()
    return c._get_connection()._stub.CreateCollection(request)


def test_bad_schemas_and_indexes_are_refused(server: Any) -> None:
    c = MilvusClient(uri=server.uri)

    def refused(message: str, schema: Any, **change: list[str]) -> None:
        status = _raw_create(c, schema, **change)
        assert status.code == 1100 and message in status.reason, status
        assert not c.has_collection("fts_bad")

    refused("BM25 function output field must be a SparseFloatVector field, but got FloatVector", _schema(c),
            outputs=["v"])
    refused("function input field not found: missing", _schema(c), inputs=["missing"])
    refused("BM25 function input field must be a VARCHAR/TEXT field, got 1 field with type Int64", _schema(c),
            inputs=["id"])
    refused("a single field cannot be both input and output in the same function", _schema(c), outputs=["text"])
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=100)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                            output_field_names=["sparse"]))
    refused("BM25 function input field must set enable_analyzer to true", s)
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=100, enable_analyzer=True,
                analyzer_params={"tokenizer": "no_such_tokenizer"})
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                            output_field_names=["sparse"]))
    refused("no_such_tokenizer", s)

    c.create_collection("fts_idx", schema=_schema(c))
    index = c.prepare_index_params()
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    with pytest.raises(MilvusException, match="index metric type of BM25 function output field must be BM25"):
        c.create_index("fts_idx", index)
    index = c.prepare_index_params()
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params={"bm25_k1": -1})
    with pytest.raises(MilvusException, match="bm25_k1"):
        c.create_index("fts_idx", index)
    index = c.prepare_index_params()
    index.add_index("v", index_type="HNSW", metric_type="BM25", params={"M": 8, "efConstruction": 64})
    with pytest.raises(MilvusException, match="float vector index does not support metric type: BM25"):
        c.create_index("fts_idx", index)
    assert c.list_indexes("fts_idx") == []
    c.drop_collection("fts_idx")


def test_rest_create_insert_and_search_text(server: Any) -> None:
    fields = [
        {"fieldName": "id", "dataType": "Int64", "isPrimary": True},
        {"fieldName": "text", "dataType": "VarChar",
         "elementTypeParams": {"max_length": 200, "enable_analyzer": True, "enable_match": True}},
        {"fieldName": "sparse", "dataType": "SparseFloatVector"},
    ]
    function = {"name": "bm25", "type": "BM25", "inputFieldNames": ["text"], "outputFieldNames": ["sparse"]}
    made = post_v2(server, "collections/create", {
        "collectionName": "fts_rest", "schema": {"fields": fields, "functions": [function]},
        "params": {"consistencyLevel": "Strong"},  # REST's default is Bounded: the rows may not show yet
        "indexParams": [{"fieldName": "sparse", "indexName": "sparse", "metricType": "BM25",
                         "params": {"index_type": "SPARSE_INVERTED_INDEX"}}]})
    assert made["code"] == 0, made
    rows = [{"id": 1, "text": "wax wbx wcx"}, {"id": 2, "text": "wax"}, {"id": 3, "text": "wdx"}]
    assert post_v2(server, "entities/insert", {"collectionName": "fts_rest", "data": rows})["code"] == 0
    found = post_v2(server, "entities/search", {"collectionName": "fts_rest", "data": ["wax"], "annsField": "sparse",
                                                "limit": 5, "outputFields": ["text"]})
    assert found["code"] == 0, found
    assert [r["id"] for r in found["data"]] == [2, 1]  # the shorter document ranks first
    matched = post_v2(server, "entities/query", {"collectionName": "fts_rest", "filter": "text_match(text, 'wdx')",
                                                 "outputFields": ["id"]})
    assert [r["id"] for r in matched["data"]] == [3], matched
    post_v2(server, "collections/drop", {"collectionName": "fts_rest"})
