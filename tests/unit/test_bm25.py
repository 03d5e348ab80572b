"""BM25 functions: schema rules, term-frequency rows, corpus statistics and scoring.

The scores are compared with a direct transcription of Okapi BM25 as Milvus defines it (IDF
``log(1 + (N - df + 0.5) / (df + 0.5))`` times the query's count of the term, the term weight
``tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))``), for the index, for brute force, and with the
statistics summed over segments.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from pymilvus.grpc_gen import schema_pb2
from pymilvus.grpc_gen.schema_pb2 import DataType, FunctionType

from common.analyzer import token_hash
from common.bm25 import CorpusStats, fill_function_outputs, idf_weighted, query_term_ids, query_terms
from common.errors import Code, MilvusError
from common.fielddata import decode_insert, encode_column
from common.index import brute_force_search, build_index, load_index
from common.schema import Schema
from services.querynode.bm25_stats import TermCounts

SPARSE = DataType.SparseFloatVector
TEXTS = ["the quick brown fox", "Quick quick FOX!", None, "lazy dogs and a fox", "", "brown brown brown dog"]


def _proto(**fn: object) -> schema_pb2.CollectionSchema:
    proto = schema_pb2.CollectionSchema(name="c")
    proto.fields.add(name="id", data_type=DataType.Int64, is_primary_key=True)
    text = proto.fields.add(name="text", data_type=DataType.VarChar, nullable=True)
    text.type_params.add(key="max_length", value="100")
    text.type_params.add(key="enable_analyzer", value="true")
    proto.fields.add(name="sparse", data_type=SPARSE)
    args: dict[str, object] = {"name": "bm25", "type": FunctionType.BM25, "input_field_names": ["text"],
                               "output_field_names": ["sparse"]}
    args.update(fn)
    proto.functions.add(**args)
    return proto


def _schema() -> Schema:
    return Schema.from_proto(_proto())


def test_schema_keeps_the_function_and_marks_its_output() -> None:
    schema = _schema()
    assert schema.field("sparse").is_function_output and not schema.field("text").is_function_output
    fn = schema.function_of_output("sparse")
    assert fn is not None and fn.is_bm25 and fn.input_ids == (schema.field("text").field_id,)
    again = Schema.from_bytes(schema.to_bytes())
    assert again.functions == schema.functions and again.field("sparse").is_function_output
    assert [f.name for f in schema.to_proto().functions] == ["bm25"]


@pytest.mark.parametrize(("change", "message"), [
    ({"name": ""}, "function name cannot be empty"),
    ({"input_field_names": ["nope"]}, "function input field not found: nope"),
    ({"output_field_names": ["nope"]}, "function output field not found: nope"),
    ({"output_field_names": ["text"]}, "a single field cannot be both input and output in the same function"),
    ({"input_field_names": ["id"]}, "must be a VARCHAR/TEXT field, got 1 field with type Int64"),
    ({"output_field_names": ["id"]}, "function output field cannot be primary key: function bm25, field id"),
    ({"params": [{"key": "a", "value": "b"}]}, "BM25 function accepts no params"),
])
def test_function_rules_have_milvus_messages(change: dict[str, object], message: str) -> None:
    with pytest.raises(MilvusError) as err:
        Schema.from_proto(_proto(**change))
    assert err.value.code == Code.PARAMETER_INVALID and message in err.value.message


def test_output_must_be_sparse_and_input_analyzed() -> None:
    proto = _proto()
    proto.fields[2].data_type = DataType.FloatVector
    proto.fields[2].type_params.add(key="dim", value="2")
    with pytest.raises(MilvusError, match="must be a SparseFloatVector field, but got FloatVector"):
        Schema.from_proto(proto)
    proto = _proto()
    del proto.fields[1].type_params[1]  # enable_analyzer
    with pytest.raises(MilvusError, match="BM25 function input field must set enable_analyzer to true"):
        Schema.from_proto(proto)


def _insert(schema: Schema, texts: list[str | None]) -> dict[str, np.ndarray]:
    n = len(texts)
    valid = np.array([t is not None for t in texts])
    column = np.array([t or "" for t in texts], dtype=object)
    fds = [encode_column(schema.field("id"), np.arange(n, dtype=np.int64)),
           encode_column(schema.field("text"), column, valid)]
    return decode_insert(schema, fds, n)


def test_insert_computes_term_counts_and_refuses_the_output() -> None:
    schema = _schema()
    cols = _insert(schema, TEXTS)
    rows = cols["sparse"]
    assert rows[1] == {token_hash("quick"): 2.0, token_hash("fox"): 1.0}
    assert rows[2] == {} and rows[4] == {}
    fds = [encode_column(schema.field("id"), np.arange(1)),
           encode_column(schema.field("text"), np.array(["a"], dtype=object)),
           encode_column(schema.field("sparse"), np.array([{1: 1.0}], dtype=object))]
    with pytest.raises(MilvusError, match="attempt to insert bm25 function output field"):
        decode_insert(schema, fds, 1)


def _model(texts: list[str | None], query: str, k1: float = 1.2, b: float = 0.75) -> dict[int, float]:
    docs = [[w.strip("!").lower() for w in (t or "").split()] for t in texts]
    docs = [[w for w in d if w] for d in docs]
    n, avgdl = len(docs), sum(map(len, docs)) / len(docs)
    df = Counter(w for d in docs for w in set(d))
    q = Counter(query.lower().split())
    out = {}
    for i, d in enumerate(docs):
        tf = Counter(d)
        if any(tf[w] for w in q):
            out[i] = sum(c * math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5)) * tf[w] * (k1 + 1)
                         / (tf[w] + k1 * (1 - b + b * len(d) / avgdl)) for w, c in q.items() if tf[w])
    return out


def _stats(column: np.ndarray, queries: np.ndarray, cut: int) -> CorpusStats:
    """The statistics summed over two segments (rows [0, cut) and [cut, n)), as a shard leader sums them."""
    total = CorpusStats()
    for part in (column[:cut], column[cut:]):
        counts = TermCounts()
        counts.extend(part, len(part) // 2)  # a growing segment: counted in two steps
        counts.extend(part, len(part))
        total.add(CorpusStats.from_wire(counts.stats(query_term_ids(queries)).to_wire()))
    return total


@pytest.mark.parametrize("indexed", [False, True])
def test_scores_equal_okapi_bm25(indexed: bool) -> None:
    schema = _schema()
    column = _insert(schema, TEXTS)["sparse"]
    queries = query_terms(schema.field("text"), ["quick fox", "brown dog dog", "cat"])
    stats = _stats(column, queries, 3)
    assert stats.rows == len(TEXTS) and stats.avgdl == pytest.approx(16 / 6)
    weighted = idf_weighted(queries, stats)
    params = {"bm25_avgdl": stats.avgdl, "bm25_k1": 1.2, "bm25_b": 0.75}
    if indexed:
        index = load_index(build_index("SPARSE_INVERTED_INDEX", "BM25", {"bm25_k1": 1.2, "bm25_b": 0.75,
                                                                     "bm25_avgdl": 100}, column, SPARSE).serialize())
        scores, rows = index.search(weighted, 4, {"bm25_avgdl": stats.avgdl})  # avgdl: the search's, not 100
    else:
        scores, rows = brute_force_search(column, weighted, "BM25", 4, SPARSE, params=params)
    for qi, query in enumerate(["quick fox", "brown dog dog", "cat"]):
        want = _model(TEXTS, query)
        got = {int(r): float(s) for r, s in zip(rows[qi], scores[qi], strict=True) if r >= 0}
        assert got.keys() == set(sorted(want, key=lambda i: -want[i])[:4])
        for r, s in got.items():
            assert s == pytest.approx(want[r], rel=1e-5)


def test_bm25_index_parameters() -> None:
    with pytest.raises(MilvusError, match=r"param 'bm25_k1' \(-1\) should be in range \[0.000000, 3.000000\]"):
        build_index("SPARSE_INVERTED_INDEX", "BM25", {"bm25_k1": -1}, [{1: 1.0}], SPARSE)
    with pytest.raises(MilvusError, match="float vector index does not support metric type: BM25"):
        build_index("HNSW", "BM25", {}, np.zeros((2, 2), np.float32), DataType.FloatVector)


def test_fill_function_outputs_of_a_partial_column_set() -> None:
    schema = _schema()
    cols = {"id": np.arange(2), "text": np.array(["a b", "b"], dtype=object)}
    fill_function_outputs(schema, cols)
    assert cols["sparse"][1] == {token_hash("b"): 1.0}


def test_imports_compute_the_output_and_refuse_it_in_files() -> None:
    from common.imports.assemble import assemble, check_names, importable_fields
    from common.imports.errors import ImportFileError

    schema = _schema()
    assert "sparse" not in [f.name for f in importable_fields(schema)]
    cols = assemble(schema, {"id": [1, 2], "text": ["fox fox", None]}, 2)
    assert cols["sparse"][0] == {token_hash("fox"): 2.0} and cols["sparse"][1] == {}
    with pytest.raises(ImportFileError, match="the field 'sparse' is output by function, no need to provide"):
        check_names(schema, ["id", "text", "sparse"], "file")


def test_a_corpus_of_mostly_empty_rows_searches_its_index() -> None:
    """The shard's average length may be below 1 (null or empty texts count as rows)."""
    schema = _schema()
    column = _insert(schema, ["fox", None, "", None])["sparse"]
    index = build_index("SPARSE_INVERTED_INDEX", "BM25", {"bm25_k1": 1.2, "bm25_b": 0.75}, column, SPARSE)
    queries = query_terms(schema.field("text"), ["fox"])
    stats = _stats(column, queries, 2)
    assert stats.avgdl == 0.25
    scores, rows = index.search(idf_weighted(queries, stats), 2, {"bm25_avgdl": stats.avgdl})
    assert rows[0][0] == 0 and scores[0][0] == pytest.approx(_model(["fox", None, "", None], "fox")[0], rel=1e-5)
