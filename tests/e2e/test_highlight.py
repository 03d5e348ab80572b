"""The search highlighter (pymilvus ``LexicalHighlighter``), on standalone and on a cluster.

A BM25 search highlights its own texts in the function's input field, a ``highlight_query``
highlights TextMatch terms in any analyzed field, also on a vector search; the highlighted text is
fetched whether or not it is an output field, but returned only when asked for; fragments follow
Milvus's cut (characters, offset before the match, size, count) and tags cycle. Bad params and the
BM25-only checks answer with Milvus's messages.
"""

from __future__ import annotations

from typing import Any

import pytest
from pymilvus import DataType, Function, FunctionType, LexicalHighlighter, MilvusClient, MilvusException

pytestmark = pytest.mark.e2e

TEXTS = {
    1: "Is there a leakage?",
    2: "I have the seat full of water! Like, full of water!",
    3: "Must be water.",
    4: "key key key key",
    5: None,
    6: "水 water 水",
}
NAME = "hl"


def _make(c: MilvusClient) -> None:
    schema = c.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=200, enable_analyzer=True, nullable=True)
    schema.add_field("note", DataType.VARCHAR, max_length=200, enable_analyzer=True, nullable=True)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                 output_field_names=["sparse"]))
    index = c.prepare_index_params()
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    index.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_collection(NAME, schema=schema, index_params=index, consistency_level="Strong", num_shards=1)


def _rows(ids: list[int]) -> list[dict[str, Any]]:
    return [{"id": i, "text": TEXTS[i], "note": TEXTS[i], "v": [float(i), 0.0]} for i in ids]


@pytest.fixture(scope="module")
def client(server: Any) -> Any:
    c = MilvusClient(uri=server.uri)
    _make(c)
    c.insert(NAME, _rows([1, 2, 3]))
    c.flush(NAME)  # sealed and growing rows alike
    c.insert(NAME, _rows([4, 5, 6]))
    yield c
    c.drop_collection(NAME)
    c.close()


def _search(c: MilvusClient, data: list[Any], hl: LexicalHighlighter, **kw: Any) -> Any:
    kw.setdefault("anns_field", "sparse")
    kw.setdefault("search_params", {"metric_type": "BM25"})
    kw.setdefault("limit", 10)
    return c.search(NAME, data=data, highlighter=hl, **kw)


def _fragments(hits: Any, fld: str = "text") -> dict[int, list[str]]:
    return {h["id"]: h["highlight"][fld]["fragments"] for h in hits}


def test_search_text_is_highlighted_in_the_input_field(client: MilvusClient) -> None:
    hl = LexicalHighlighter(pre_tags=["{"], post_tags=["}"], highlight_search_text=True, fragment_size=9,
                            num_of_fragments=2)
    res = _search(client, ["water", "key"], hl, output_fields=["text"])
    assert _fragments(res[0]) == {2: ["{water}! Li", "{water}!"], 3: ["{water}."], 6: ["{water} 水"]}
    assert {h["id"]: h["entity"]["text"] for h in res[0]} == {i: TEXTS[i] for i in (2, 3, 6)}
    assert _fragments(res[1]) == {4: ["{key} {key} {key}", "{key}"]}  # the 4th starts after the 1st fragment
    assert all(set(h["highlight"]) == {"text"} and h["highlight"]["text"]["scores"] == [] for h in res[0])


def test_text_is_fetched_but_not_returned_unless_asked(client: MilvusClient) -> None:
    hl = LexicalHighlighter(highlight_search_text=True, fragment_offset=100)
    res = _search(client, ["water"], hl)
    assert {h["id"]: h["highlight"]["text"]["fragments"] for h in res[0]} == {
        2: ["I have the seat full of <em>water</em>! Like, full of <em>water</em>!"],
        3: ["Must be <em>water</em>."],
        6: ["水 <em>water</em> 水"],
    }
    assert all(h["entity"] == {} for h in res[0])


def test_tags_cycle_and_fragments_start_at_the_offset(client: MilvusClient) -> None:
    cycling = LexicalHighlighter(pre_tags=["{", "<"], post_tags=["}", ">"], highlight_search_text=True,
                                 fragment_size=100, num_of_fragments=1)
    assert _fragments(_search(client, ["key water"], cycling, filter="id == 4")[0]) == {
        4: ["{key} <key> {key} <key>"]}
    offset = LexicalHighlighter(pre_tags=["{"], post_tags=["}"], highlight_search_text=True,
                                fragment_offset=5, fragment_size=1, num_of_fragments=1)
    assert _fragments(_search(client, ["water"], offset, filter="id == 2")[0]) == {2: ["l of {water}"]}
    none = LexicalHighlighter(highlight_search_text=True, num_of_fragments=0)
    assert _fragments(_search(client, ["water"], none, filter="id == 3")[0]) == {3: []}


def test_text_match_query_on_a_vector_search(client: MilvusClient) -> None:
    hl = LexicalHighlighter(pre_tags=["["], post_tags=["]"], highlight_search_text=False,
                            highlight_query=[{"type": "TextMatch", "field": "note", "text": "water leakage"}])
    res = client.search(NAME, data=[[2.0, 0.0]], anns_field="v", limit=6, highlighter=hl,
                        output_fields=["note"])
    got = _fragments(res[0], "note")
    assert got == {2: ["[water]! Like, full of [water]!"], 1: ["[leakage]?"], 3: ["[water]."], 4: [], 5: [],
                   6: ["[water] 水"]}
    assert res[0][0]["entity"]["note"] == TEXTS[2]


def test_no_hits_no_highlight(client: MilvusClient) -> None:
    hl = LexicalHighlighter(highlight_search_text=True)
    assert _search(client, ["nothing"], hl)[0] == []


@pytest.mark.parametrize(("hl", "kw", "code", "message"), [
    (LexicalHighlighter(highlight_search_text=True, fragment_size=0), {}, 1100, "invalid fragment_size: 0"),
    (LexicalHighlighter(highlight_search_text=True, num_of_fragments=-1), {}, 1100, "invalid num_of_fragments: -1"),
    (LexicalHighlighter(highlight_search_text=True, fragment_offset=-1), {}, 1100, "invalid fragment_offset: -1"),
    (LexicalHighlighter(pre_tags=[], post_tags=[]), {}, 1100, "pre_tags cannot be empty list"),
    (LexicalHighlighter(highlight_search_text=True), {"search_params": {}}, 1100,
     'Search highlight only support with metric type "BM25" but was: : invalid parameter'),
    (LexicalHighlighter(highlight_search_text=True), {"anns_field": "v"}, 5,
     "service internal error: Search with highlight failed, input field of BM25 annsField not found"),
    (LexicalHighlighter(highlight_query=[{"type": "TextMatch", "field": "nope", "text": "a"}]), {}, 1100,
     "highlight field not found in schema: nope"),
    (LexicalHighlighter(highlight_search_text=True), {"filter": 'TEXT_MATCH(text, "seat")'}, 1100,
     'failed to create query plan: cannot parse expression: TEXT_MATCH(text, "seat"), error: field "text" does '
     "not enable match: invalid parameter"),
])
def test_bad_highlighters(client: MilvusClient, hl: LexicalHighlighter, kw: dict[str, Any], code: int,
                          message: str) -> None:
    with pytest.raises(MilvusException) as info:
        _search(client, ["water"], hl, **kw)
    assert info.value.code == code and message in info.value.message
