"""The lexical search highlighter (services/proxy/highlight.py): params, matching, fragments, tags.

The expected fragments are those Milvus 2.6 returns for the same texts and params (its own
highlighter tests), the param errors are its messages word for word, and the request-level checks
follow ``createLexicalHighlighter``: BM25 metric, a BM25 function on the searched field, text queries.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2
from pymilvus.grpc_gen.schema_pb2 import DataType, FunctionType

from common.analyzer import build_analyzer
from common.errors import Code, MilvusError
from common.schema import Schema
from services.proxy.highlight import (
    Fragment,
    HighlightOptions,
    HighlightQuery,
    cut_fragments,
    extend_fetch,
    highlight,
    match_spans,
    merge_spans,
    parse_options,
    prepare,
    render,
)

STANDARD = build_analyzer(json.dumps({"tokenizer": "standard"}))
WATER = "I have the seat full of water! Like, full of water!"
JIEBA = {"tokenizer": {"type": "jieba", "dict": ["结巴分词器"], "mode": "exact", "hmm": False}}
MULTI = {"by_field": "lang", "analyzers": {"en": {"type": "english"}, "default": {"tokenizer": "standard"}}}


def _opts(**kw: Any) -> HighlightOptions:
    base: dict[str, Any] = {"pre_tags": ("{",), "post_tags": ("}",)}
    base.update(kw)
    return HighlightOptions(**base)


# --- params ---------------------------------------------------------------------------------------


def test_defaults() -> None:
    o = parse_options({})
    assert (o.pre_tags, o.post_tags) == (("<em>",), ("</em>",))
    assert (o.fragment_offset, o.fragment_size, o.num_of_fragments) == (0, 100, 5)
    assert not o.highlight_search_text and o.queries == ()


def test_params_as_pymilvus_sends_them() -> None:
    o = parse_options({"pre_tags": '["{", "<"]', "post_tags": '["}"]', "fragment_offset": "3",
                       "fragment_size": "7", "num_of_fragments": "0", "highlight_search_text": "True",
                       "highlight_query": '[{"type": "TextMatch", "field": "t", "text": "water"}]'})
    assert o == HighlightOptions(("{", "<"), ("}",), 3, 7, 0, True, (HighlightQuery("TextMatch", "t", "water"),))


@pytest.mark.parametrize(("params", "message"), [
    ({"fragment_size": "0"}, "invalid fragment_size: 0"),
    ({"fragment_size": "-1"}, "invalid fragment_size: -1"),
    ({"fragment_size": "0.1"}, "invalid fragment_size: 0.1"),
    ({"fragment_size": " 5"}, "invalid fragment_size:  5"),
    ({"fragment_offset": "-1"}, "invalid fragment_offset: -1"),
    ({"fragment_offset": "0.1"}, "invalid fragment_offset: 0.1"),
    ({"num_of_fragments": "-1"}, "invalid num_of_fragments: -1"),
    ({"num_of_fragments": "0.1"}, "invalid num_of_fragments: 0.1"),
    ({"num_of_fragments": "99999999999999999999"}, "invalid num_of_fragments: 99999999999999999999"),
    ({"pre_tags": "[]"}, "pre_tags cannot be empty list"),
    ({"pre_tags": "null"}, "pre_tags cannot be empty list"),
    ({"post_tags": "[]"}, "post_tags cannot be empty list"),
    ({"pre_tags": "[1]"},
     "unmarshal pre_tags as string array failed: json: cannot unmarshal number into Go value of type string"),
    ({"post_tags": '"x"'},
     "unmarshal post_tags as string list failed: json: cannot unmarshal string into Go value of type []string"),
    ({"highlight_search_text": "yes"},
     'unmarshal highlight_search_text as bool failed: strconv.ParseBool: parsing "yes": invalid syntax'),
    ({"highlight_query": "{}"}, "unmarshal highlight queries as json array failed: json: cannot unmarshal "
                                "object into Go value of type []interface {}"),
    ({"highlight_query": "[1]"}, "unmarshal highlight queries failed: item in array is not json object"),
    ({"highlight_query": '[{"type": "TextMatch", "field": "t"}]'},
     "unmarshal highlight queries failed: must set `text` in query"),
    ({"highlight_query": '[{"type": "TextMatch", "field": "t", "text": 1}]'},
     "unmarshal highlight queries failed: `text` must be string"),
    ({"highlight_query": '[{"field": "t", "text": "a"}]'},
     "unmarshal highlight queries failed: must set `type` in query"),
    ({"highlight_query": '[{"type": "Phrase", "field": "t", "text": "a"}]'},
     "unmarshal highlight queries failed: invalid highlight query type: Phrase"),
    ({"highlight_query": '[{"type": "TextMatch", "text": "a"}]'},
     "unmarshal highlight queries failed: must set `field` in query"),
    ({"highlight_query": '[{"type": "TextMatch", "field": 3, "text": "a"}]'},
     "unmarshal highlight queries failed: `field` must be string"),
])
def test_param_errors(params: dict[str, str], message: str) -> None:
    with pytest.raises(MilvusError) as info:
        parse_options(params)
    assert info.value.code == Code.PARAMETER_INVALID
    assert info.value.message == f"{message}: invalid parameter"


def test_tags_are_checked_before_fragments() -> None:
    with pytest.raises(MilvusError, match="pre_tags cannot be empty list"):
        parse_options({"pre_tags": "[]", "fragment_size": "0"})


# --- spans and fragments ----------------------------------------------------------------------------


def test_merge_spans_joins_overlapping_and_touching() -> None:
    assert merge_spans([(5, 7), (0, 2), (2, 4), (6, 9), (11, 12), (6, 8)]) == [(0, 4), (5, 9), (11, 12)]
    assert merge_spans([]) == []


def test_match_spans_are_characters_not_bytes() -> None:
    text = "größe größe"
    assert match_spans(STANDARD, text, {"größe"}) == [(0, 5), (6, 11)]
    assert match_spans(STANDARD, "", {"x"}) == [] and match_spans(STANDARD, "x", set()) == []


def test_adjacent_tokens_merge_into_one_match() -> None:
    jieba = build_analyzer(json.dumps(JIEBA))
    text = "心跳与脚步相互呼应。某个如同呼吸般起伏"
    terms = {t.text for t in jieba.analyze("如同呼吸般起伏")}
    got = highlight(jieba, text, terms, _opts(fragment_size=1, num_of_fragments=10))
    assert got == ["{呼}", "{如同呼吸般起伏}"]


@pytest.mark.parametrize(("size", "num", "want"), [
    (1, 0, []),
    (1, 1, ["{water}"]),
    (1, 2, ["{water}", "{water}"]),
    (9, 1, ["{water}! Li"]),
    (9, 2, ["{water}! Li", "{water}!"]),
    (100, 1, ["{water}! Like, full of {water}!"]),
    (100, 2, ["{water}! Like, full of {water}!"]),
])
def test_fragment_size_and_number(size: int, num: int, want: list[str]) -> None:
    assert highlight(STANDARD, WATER, {"water"}, _opts(fragment_size=size, num_of_fragments=num)) == want


@pytest.mark.parametrize(("offset", "text", "want"), [
    (0, WATER, ["=water=", "=water="]),
    (5, WATER, ["l of =water=", "l of =water="]),
    (100, WATER, ["I have the seat full of =water=", "I have the seat full of water! Like, full of =water="]),
    (5, "Must be water.", ["t be =water="]),
    (100, "Must be water.", ["Must be =water="]),
])
def test_fragment_offset(offset: int, text: str, want: list[str]) -> None:
    opts = HighlightOptions(("=",), ("=",), offset, 5, 2)
    assert highlight(STANDARD, text, {"water"}, opts) == want


def test_a_match_inside_a_fragment_joins_it_and_may_lengthen_it() -> None:
    text = "A leakage of what?"
    terms = {"A", "leakage", "of", "what"}
    assert highlight(STANDARD, text, terms, _opts(fragment_offset=5, fragment_size=10, num_of_fragments=10)) == [
        "{A} {leakage} {of}", "e of {what}?"]
    assert highlight(STANDARD, "7654321 keyword 1234567", {"keyword"},
                     _opts(fragment_offset=5, fragment_size=1, num_of_fragments=1)) == ["4321 {keyword}"]


def test_tags_cycle_per_fragment_independently() -> None:
    keys = "key key key key key key key key"
    opts = HighlightOptions(("{", "<", "="), ("}", ">", "="), 0, 100, 1)
    assert highlight(STANDARD, keys, {"key"}, opts) == ["{key} <key> =key= {key} <key> =key= {key} <key>"]
    mismatched = HighlightOptions(("{",), ("}", ">"), 0, 100, 5)
    assert highlight(STANDARD, WATER, {"water"}, mismatched) == ["{water}! Like, full of {water>!"]
    two = HighlightOptions(("{", "<"), ("}", ">"), 0, 1, 5)
    assert highlight(STANDARD, WATER, {"water"}, two) == ["{water}", "{water}"]  # each fragment restarts


def test_cut_and_render_directly() -> None:
    frags = cut_fragments(20, [(2, 4), (6, 8), (15, 17)], offset=1, size=6, limit=5)
    assert [(f.start, f.end, f.spans) for f in frags] == [(1, 8, [(2, 4), (6, 8)]), (14, 20, [(15, 17)])]
    assert render("abcdefghijklmnopqrst", Fragment(1, 8, [(2, 4), (6, 8)]), ["["], ["]"]) == "b[cd]ef[gh]"
    assert cut_fragments(5, [], 0, 1, 3) == []


# --- requests -------------------------------------------------------------------------------------


def _schema() -> Schema:
    proto = schema_pb2.CollectionSchema(name="c")
    proto.fields.add(name="id", data_type=DataType.Int64, is_primary_key=True)
    proto.fields.add(name="v", data_type=DataType.FloatVector).type_params.add(key="dim", value="2")
    proto.fields.add(name="lang", data_type=DataType.VarChar, nullable=True).type_params.add(
        key="max_length", value="8")
    for name, params in (("t", {"analyzer_params": json.dumps({"tokenizer": "standard"})}),
                         ("zh", {"analyzer_params": json.dumps(JIEBA)}),
                         ("m", {"multi_analyzer_params": json.dumps(MULTI)}),
                         ("plain", {})):
        f = proto.fields.add(name=name, data_type=DataType.VarChar, nullable=True)
        f.type_params.add(key="max_length", value="200")
        if name != "plain":
            f.type_params.add(key="enable_analyzer", value="true")
        for k, val in params.items():
            f.type_params.add(key=k, value=val)
    for name in ("t", "m"):
        proto.fields.add(name=f"{name}_sparse", data_type=DataType.SparseFloatVector)
        proto.functions.add(name=f"{name}_bm25", type=FunctionType.BM25, input_field_names=[name],
                            output_field_names=[f"{name}_sparse"])
    return Schema.from_proto(proto)


def _request(params: dict[str, Any] | None, texts: list[str] | None = None, **search: str) -> Any:
    req = milvus_pb2.SearchRequest(collection_name="c")
    for k, v in search.items():
        req.search_params.add(key=k, value=v)
    if texts is not None:
        group = common_pb2.PlaceholderGroup()
        group.placeholders.add(tag="$0", type=common_pb2.PlaceholderType.VarChar,
                               values=[t.encode() for t in texts])
        req.placeholder_group = group.SerializeToString()
    if params is not None:
        req.highlighter.type = common_pb2.HighlightType.Lexical
        for k, v in params.items():
            value = json.dumps(v) if isinstance(v, (list, dict)) else str(v)
            req.highlighter.params.add(key=k, value=value)
    return req


def _error(schema: Schema, req: Any) -> MilvusError:
    with pytest.raises(MilvusError) as info:
        prepare(schema, req)
    return info.value


def test_no_highlighter_no_work() -> None:
    assert prepare(_schema(), _request(None, ["x"], anns_field="t_sparse")) is None


def test_search_text_highlights_the_bm25_input_field() -> None:
    schema = _schema()
    hl = prepare(schema, _request({"highlight_search_text": True, "pre_tags": ["{"], "post_tags": ["}"],
                                   "fragment_size": 1}, ["water", "full"], anns_field="t_sparse",
                                  metric_type="BM25"))
    assert hl is not None and hl.fetch_fields() == ["t"]
    fetch = ["id"]
    extend_fetch(schema, fetch, hl.fetch_fields())
    assert fetch == ["id", "t", "t.valid"]
    cols = {"t": np.array([WATER, "ignored", WATER], dtype=object), "t.valid": np.array([True, False, True])}
    results = hl.results(cols, [2, 1])
    assert [r.field_name for r in results] == ["t"]
    assert [list(d.fragments) for d in results[0].datas] == [["{water}", "{water}"], [], ["{full}", "{full}"]]
    assert hl.results({}, [0, 0]) == []  # no hits: no highlight results


def test_highlight_query_adds_fields_and_terms() -> None:
    schema = _schema()
    hl = prepare(schema, _request({"highlight_search_text": True, "pre_tags": ["{"], "post_tags": ["}"],
                                   "highlight_query": [{"type": "TextMatch", "field": "zh", "text": "结巴分词器"},
                                                       {"type": "TextMatch", "field": "t", "text": "seat"}]},
                                  ["water"], anns_field="t_sparse", metric_type="BM25"))
    assert hl is not None and hl.fetch_fields() == ["t", "zh"]
    text = "A 结巴分词器 seat water"
    cols = {"t": np.array([text], dtype=object), "zh": np.array([text], dtype=object)}
    by_field = {r.field_name: list(r.datas[0].fragments) for r in hl.results(cols, [1])}
    assert by_field == {"t": ["{seat} {water}"], "zh": ["{结巴分词器} seat water"]}


def test_text_match_only_on_a_vector_search() -> None:
    hl = prepare(_schema(), _request({"highlight_search_text": False,
                                      "highlight_query": [{"type": "TextMatch", "field": "t", "text": "water"}]},
                                     anns_field="v", metric_type="COSINE"))
    assert hl is not None
    datas = hl.results({"t": np.array([WATER, None], dtype=object)}, [2])[0].datas
    assert [list(d.fragments) for d in datas] == [["<em>water</em>! Like, full of <em>water</em>!"], []]


def test_multi_analyzer_field_uses_each_rows_analyzer() -> None:
    schema = _schema()
    hl = prepare(schema, _request({"highlight_search_text": "true"}, ["running"], anns_field="m_sparse",
                                  metric_type="BM25", analyzer_name="en"))
    assert hl is not None and hl.fetch_fields() == ["m", "lang"]
    fetch: list[str] = []
    extend_fetch(schema, fetch, hl.fetch_fields())
    assert fetch == ["m", "m.valid", "lang", "lang.valid"]
    cols = {"m": np.array(["he runs", "he runs running"], dtype=object),
            "lang": np.array(["en", "xx"], dtype=object)}
    datas = hl.results(cols, [2])[0].datas
    # the search text analyzed with "en" is "run": the English row's "runs" stems to it, the other's don't
    assert [list(d.fragments) for d in datas] == [["<em>runs</em>"], []]


@pytest.mark.parametrize(("params", "search", "texts", "code", "message"), [
    ({"highlight_search_text": True}, {"anns_field": "v", "metric_type": "COSINE"}, None, 1100,
     'Search highlight only support with metric type "BM25" but was: : invalid parameter'),
    ({"highlight_search_text": True}, {"anns_field": "t_sparse"}, ["a"], 1100,
     'Search highlight only support with metric type "BM25" but was: : invalid parameter'),
    ({"highlight_search_text": True}, {"anns_field": "v", "metric_type": "BM25"}, ["a"], 5,
     "service internal error: Search with highlight failed, input field of BM25 annsField not found"),
    ({"highlight_query": [{"type": "TextMatch", "field": "nope", "text": "a"}]}, {"anns_field": "v"}, None,
     1100, "highlight field not found in schema: nope: invalid parameter"),
    ({"highlight_query": [{"type": "TextMatch", "field": "plain", "text": "a"}]}, {"anns_field": "v"}, None,
     1100, "get highlight failed, the highlight field not found, plain:106: invalid parameter"),
    ({"pre_tags": []}, {"anns_field": "v"}, None, 1100, "pre_tags cannot be empty list: invalid parameter"),
])
def test_request_errors(params: dict[str, Any], search: dict[str, str], texts: list[str] | None, code: int,
                        message: str) -> None:
    err = _error(_schema(), _request(params, texts, **search))
    assert (err.code, err.message) == (code, message)


def test_search_text_must_be_text() -> None:
    req = _request({"highlight_search_text": True}, None, anns_field="t_sparse", metric_type="BM25")
    group = common_pb2.PlaceholderGroup()
    group.placeholders.add(tag="$0", type=common_pb2.PlaceholderType.FloatVector, values=[b"\0" * 8])
    req.placeholder_group = group.SerializeToString()
    err = _error(_schema(), req)
    assert err.message == ("please provide varchar/text for BM25 Function based search, got FloatVector: "
                           "invalid parameter")


def test_semantic_highlighter_is_not_supported() -> None:
    req = _request({}, ["a"], anns_field="t_sparse")
    req.highlighter.type = common_pb2.HighlightType.Semantic
    assert _error(_schema(), req).code == Code.UNIMPLEMENTED
