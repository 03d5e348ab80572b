"""text_match / phrase_match filters: parsing, Milvus's error messages, matching semantics (any token,
minimum_should_match, phrase slop, nulls, multi-analyzer) and the per-segment text index cache
(built once, extended as a growing segment grows, never answered by a scalar index)."""

from __future__ import annotations

import itertools
import json
import types
from typing import Any

import numpy as np
import pytest

import common.analyzer as analyzer_package
from common.errors import Code, MilvusError
from common.expr import compile_filter
from common.expr.nodes import PhraseMatch, TextMatch
from common.expr.textindex import rows_within
from common.schema import DataType as D
from common.schema import Field, Schema
from services.querynode.columns import ColumnStore
from services.querynode.scalar_index import SortedIndex, indexed_filter
from services.querynode.segment import DELETED, TS, Segment

STANDARD = json.dumps({"tokenizer": "standard", "filter": ["lowercase"]})
STOP = json.dumps({"tokenizer": "standard", "filter": ["lowercase", {"type": "stop", "stop_words": ["of", "the"]}]})
WHITESPACE = json.dumps({"tokenizer": "whitespace"})
MULTI = json.dumps({"by_field": "lang", "analyzers": {"en": json.loads(STANDARD), "default": json.loads(WHITESPACE)}})


def _text_params(analyzer: str = STANDARD, match: str = "true") -> tuple[tuple[str, str], ...]:
    return (("enable_analyzer", "true"), ("enable_match", match), ("analyzer_params", analyzer))


SCHEMA = Schema(
    "t",
    "",
    (
        Field(100, "id", D.Int64, is_primary=True),
        Field(101, "text", D.VarChar, max_length=512, extra_params=_text_params()),
        Field(102, "opt", D.VarChar, max_length=512, nullable=True, extra_params=_text_params()),
        Field(103, "stop", D.VarChar, max_length=512, extra_params=_text_params(STOP)),
        Field(104, "plain", D.VarChar, max_length=64),
        Field(105, "off", D.VarChar, max_length=64, extra_params=_text_params(match="false")),
        Field(106, "one", D.VarChar, max_length=64, extra_params=_text_params(match="1")),
        Field(107, "age", D.Int64),
        Field(108, "doc", D.Text),
        Field(109, "multi", D.VarChar, max_length=512,
              extra_params=(("enable_analyzer", "true"), ("enable_match", "true"), ("multi_analyzer_params", MULTI))),
        Field(110, "lang", D.VarChar, max_length=8, nullable=True),
        Field(111, "vec", D.FloatVector, dim=2),
    ),
)
DYNAMIC = Schema(
    "d", "", SCHEMA.fields[:2] + (Field(199, "$meta", D.JSON, is_dynamic=True),), enable_dynamic_field=True
)


# --------------------------------------------------------------------------- helpers


def _obj(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def err(expr: str, schema: Schema = SCHEMA, params: dict[str, Any] | None = None) -> str:
    with pytest.raises(MilvusError) as info:
        compile_filter(expr, schema, params)
    assert info.value.code == Code.PARAMETER_INVALID
    prefix = f"cannot parse expression: {expr}, error: "
    assert info.value.message.startswith(prefix), info.value.message
    return info.value.message[len(prefix):]


TEXTS = [
    "Machine learning boosts efficiency",
    "learning machine",
    "deep machine learning models",
    "machine deep learning",
    "the art of machine learning",
    "nothing relevant here",
    "",
    "Learning, machine: learning!",
]


def rows(expr: str, texts: list[str] = TEXTS, field: str = "text", extra: dict[str, np.ndarray] | None = None,
         params: dict[str, Any] | None = None) -> list[int]:
    cols = {field: _obj(texts), **(extra or {})}
    flt = compile_filter(expr, SCHEMA, params)
    return np.flatnonzero(flt.evaluate(cols, len(texts))).tolist()


# --------------------------------------------------------------------------- parsing


def test_text_match_forms_build_nodes() -> None:
    for expr in ("text_match(text, 'a b')", 'TEXT_MATCH(text, "a b")'):
        root = compile_filter(expr, SCHEMA).root
        assert isinstance(root, TextMatch)
        assert (root.column.name, root.query, root.min_should_match) == ("text", "a b", 1)
        assert dict(root.params)["enable_match"] == "true" and root.by is None
    root = compile_filter("text_match(text, 'a b c', minimum_should_match = 0x2)", SCHEMA).root
    assert isinstance(root, TextMatch) and root.min_should_match == 2
    root = compile_filter("TEXT_MATCH(text, 'a', MINIMUM_SHOULD_MATCH=1000)", SCHEMA).root
    assert isinstance(root, TextMatch) and root.min_should_match == 1000
    root = compile_filter("text_match(text, {q})", SCHEMA, {"q": "from a template"}).root
    assert isinstance(root, TextMatch) and root.query == "from a template"
    assert isinstance(compile_filter("text_match(one, 'x')", SCHEMA).root, TextMatch)  # ParseBool("1")


def test_phrase_match_forms_build_nodes() -> None:
    root = compile_filter("phrase_match(text, 'a b')", SCHEMA).root
    assert isinstance(root, PhraseMatch) and root.slop == 0
    root = compile_filter("PHRASE_MATCH(text, 'a b', 3)", SCHEMA).root
    assert isinstance(root, PhraseMatch) and root.slop == 3
    for slop, expected in (("4294967295", 2**32 - 1), ("1 + 1", 2), ("0x10", 16), ("1.5", 0), ("'x'", 0), ("true", 0)):
        root = compile_filter(f"phrase_match(text, 'a b', {slop})", SCHEMA).root
        assert isinstance(root, PhraseMatch) and root.slop == expected, slop  # Milvus: GetInt64Val of others is 0
    both = compile_filter("text_match(text, 'a') and not phrase_match(opt, 'b c', 1) or age > 3", SCHEMA)
    assert {"text", "opt", "opt.valid", "age"} <= set(both.fields)


def test_multi_analyzer_field_needs_its_by_field_column() -> None:
    root = compile_filter("text_match(multi, 'x')", SCHEMA).root
    assert isinstance(root, TextMatch) and root.by is not None and root.by.name == "lang"
    assert {"multi", "lang", "lang.valid"} <= set(compile_filter("text_match(multi, 'x')", SCHEMA).fields)


NOT_TEXT = "query should be a string literal or template variable, got:"


@pytest.mark.parametrize(
    "expr, message",
    [
        ("text_match(plain, 'x')", 'field "plain" does not enable match'),
        ("TEXT_MATCH(off, 'x')", 'field "off" does not enable match'),
        ("phrase_match(plain, 'x y')", 'field "plain" does not enable match'),
        ("text_match(age, 'x')", "text match operation on non-string is unsupported"),
        ("text_match(vec, 'x')", "text match operation on non-string is unsupported"),
        ("phrase_match(age, 'x')", "phrase match operation on non-string is unsupported"),
        ("text_match(nosuch, 'x')", "field nosuch not exist"),
        ("text_match(doc, 'x')", "filter on text field (doc) is not supported yet"),
        ("phrase_match(doc, 'x')", "filter on text field (doc) is not supported yet"),
        ("text_match(text, 1)", f"text_match {NOT_TEXT} 1: invalid parameter"),
        ("text_match(text, age)", f"text_match {NOT_TEXT} age: invalid parameter"),
        ("phrase_match(text, [1, 2])", f"phrase_match {NOT_TEXT} [1,2]: invalid parameter"),
        ("text_match(text, 'x', minimum_should_match=0)", "minimum_should_match should be >= 1, got 0"),
        ("text_match(text, 'x', minimum_should_match=1001)", "minimum_should_match should be <= 1000, got 1001"),
        ("text_match(text, 'x', minimum_should_match=99999999999999999999)",
         "invalid minimum_should_match value: 99999999999999999999"),
        ("phrase_match(text, 'x y', -1)", '"slop" should not be a negative interger. "slop" passed: -1'),
        ("phrase_match(text, 'x y', 4294967296)",
         '"slop" exceeds the range of "uint32". "slop" expression passed: 4294967296'),
        ("phrase_match(text, 'x y', age)",
         '"slop" should be a const integer expression with "uint32" value. "slop" expression passed: age'),
        ("phrase_match(text, 'x y', age + 1)",
         '"slop" should be a const integer expression with "uint32" value. "slop" expression passed: age+1'),
        ("phrase_match(text, 'x y', 10000000000000000000000000000000)",
         '"slop" should be a const integer expression with "uint32" value. '
         '"slop" expression passed: 10000000000000000000000000000000'),
        ("Text_Match(text, 'x')", "function Text_Match is not supported"),
    ],
)
def test_errors_are_milvus_words(expr: str, message: str) -> None:
    assert err(expr) == message


def test_dynamic_keys_are_not_strings_and_templates_must_be() -> None:
    assert err("text_match(somekey, 'x')", DYNAMIC) == "text match operation on non-string is unsupported"
    assert err("phrase_match(somekey, 'x')", DYNAMIC) == "phrase match operation on non-string is unsupported"
    # a template's value is cast to the field's type after planning, with no parse-error wrapping
    for expr in ("text_match(text, {q})", "phrase_match(text, {q}, 1)"):
        with pytest.raises(MilvusError) as info:
            compile_filter(expr, SCHEMA, {"q": 3})
        assert info.value.code == Code.PARAMETER_INVALID
        assert info.value.message == "cannot cast value to VarChar, value: int64_val:3"
    # Milvus fills templates after planning: a slop from one is not a constant there
    message = err("phrase_match(text, 'a b', {s})", params={"s": 1})
    assert message == '"slop" should be a const integer expression with "uint32" value. "slop" expression passed: {s}'


@pytest.mark.parametrize(
    "expr, fragment",
    [
        ("text_match(text)", "mismatched input ')'"),
        ("text_match(text, 'x', 2)", "mismatched input '2'"),
        ("text_match(text, 'x', minimum_should_match=-1)", "mismatched input '-'"),
        ("text_match(text, 'x', minimum_should_match=1.5)", "mismatched input '1.5'"),
        ("text_match(text['a'], 'x')", "mismatched input '['"),
        ("phrase_match(text, 'x', 1, 2)", "mismatched input ','"),
        ("text_match > 1", "mismatched input '>'"),
    ],
)
def test_syntax_errors(expr: str, fragment: str) -> None:
    assert fragment in err(expr)


# --------------------------------------------------------------------------- matching


def test_text_match_selects_rows_with_any_query_token() -> None:
    assert rows("text_match(text, 'efficiency')") == [0]
    assert rows("text_match(text, 'EFFICIENCY models')") == [0, 2]  # the query is analyzed (lowercased) too
    assert rows("text_match(text, 'learning')") == [0, 1, 2, 3, 4, 7]
    assert rows("text_match(text, 'unknown words')") == []
    assert rows("text_match(text, '')") == [] and rows("text_match(text, '  ,. ')") == []
    assert rows("not text_match(text, 'learning')") == [5, 6]
    assert rows("text_match(text, 'deep') or text_match(text, 'art')") == [2, 3, 4]


def test_minimum_should_match_counts_query_tokens_with_repeats() -> None:
    texts = ["a b", "a c", "b c", "c", "a b c", "a a a"]
    assert rows("text_match(text, 'a b', minimum_should_match=1)", texts) == [0, 1, 2, 4, 5]
    assert rows("text_match(text, 'a b c', minimum_should_match=2)", texts) == [0, 1, 2, 4]
    assert rows("text_match(text, 'a b c', minimum_should_match=3)", texts) == [4]
    assert rows("text_match(text, 'a b c', minimum_should_match=10)", texts) == []
    # each query token is a clause (tantivy's boolean query): a repeated token counts twice
    assert rows("text_match(text, 'a a d', minimum_should_match=2)", texts) == [0, 1, 4, 5]
    assert rows("text_match(text, 'c', minimum_should_match=2)", texts) == []


def test_null_rows_never_match_even_under_not() -> None:
    texts = ["red fox", "blue fox", "", "red hen"]
    valid = np.array([True, False, True, True])
    extra = {"opt.valid": valid}
    assert rows("text_match(opt, 'fox')", texts, "opt", extra) == [0]
    assert rows("not text_match(opt, 'fox')", texts, "opt", extra) == [2, 3]
    assert rows("phrase_match(opt, 'blue fox')", texts, "opt", extra) == []
    assert rows("not phrase_match(opt, 'red fox')", texts, "opt", extra) == [2, 3]
    assert rows("text_match(opt, 'fox') or id > 1", texts, "opt", {**extra, "id": np.arange(4)}) == [0, 2, 3]


def test_phrase_match_is_exact_without_slop() -> None:
    assert rows("phrase_match(text, 'machine learning')") == [0, 2, 4, 7]
    assert rows("phrase_match(text, 'learning machine')") == [1, 7]
    assert rows("phrase_match(text, 'machine learning models')") == [2]
    assert rows("phrase_match(text, 'machine models')") == []
    assert rows("phrase_match(text, 'efficiency')") == [0]  # one token: a term query, as in Milvus
    assert rows("phrase_match(text, '')") == []


def test_phrase_slop_is_a_window_of_shifted_positions() -> None:
    # Milvus's doc example: slop 1 lets "machine deep learning" match "machine learning"
    assert rows("phrase_match(text, 'machine learning', 1)") == [0, 2, 3, 4, 7]
    # reversing two words moves them by 2: "learning machine" (row 1) needs slop 2
    assert rows("phrase_match(text, 'machine learning', 2)") == [0, 1, 2, 3, 4, 7]
    texts = ["a x b x c", "a x x b x x c", "c b a", "b a c", "a b"]
    assert rows("phrase_match(text, 'a b c', 1)", texts) == []
    assert rows("phrase_match(text, 'a b c', 2)", texts) == [0, 3]  # row 0: shifted a0 b1 c2; row 3: a0 b-1 c0
    assert rows("phrase_match(text, 'a b c', 4)", texts) == [0, 1, 2, 3]  # row 2: c0 b0 a2 → shifted 2, 0, -2
    assert rows("phrase_match(text, 'a b c', 3)", texts) == [0, 3]


def test_phrase_positions_keep_stop_word_gaps() -> None:
    texts = ["the art of machine learning", "art machine", "art of the machine"]
    # "of" is a stop word: the query's "machine" sits 2 positions after "art", as in row 0
    assert rows("phrase_match(stop, 'art of machine')", texts, "stop") == [0]
    assert rows("phrase_match(stop, 'art machine')", texts, "stop") == [1]
    assert rows("phrase_match(stop, 'art machine', 1)", texts, "stop") == [0, 1]
    assert rows("phrase_match(stop, 'art machine', 2)", texts, "stop") == [0, 1, 2]
    assert rows("text_match(stop, 'the of')", texts, "stop") == []


def test_multi_analyzer_rows_use_the_analyzer_their_by_field_names() -> None:
    texts = ["Quick Brown fox", "Quick Brown fox", "quick brown", "Quick Brown fox"]
    lang = _obj(["en", "xx", "en", None])  # "xx" and null fall back to the default (whitespace, keeps case)
    extra = {"lang": lang, "lang.valid": np.array([True, True, True, False])}
    assert rows("text_match(multi, 'quick')", texts, "multi", extra) == [0, 2]
    assert rows("text_match(multi, 'Quick')", texts, "multi", extra) == [0, 1, 2, 3]  # en lowercases the query too
    assert rows("phrase_match(multi, 'Brown fox')", texts, "multi", extra) == [0, 1, 3]
    assert rows("phrase_match(multi, 'brown fox')", texts, "multi", extra) == [0]


def _brute_within(lists: list[list[int]], slop: int) -> bool:
    return any(max(pick) - min(pick) <= slop for pick in itertools.product(*lists))


def test_window_check_agrees_with_brute_force() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        k, slop = int(rng.integers(2, 5)), int(rng.integers(0, 6))
        per_row = {row: [sorted(rng.integers(-6, 12, int(rng.integers(1, 4))).tolist()) for _ in range(k)]
                   for row in sorted(rng.choice(50, int(rng.integers(1, 8)), replace=False).tolist())}
        lists = [
            (np.array([r for r, ls in per_row.items() for _ in ls[i]], dtype=np.int64),
             np.array([v for ls in per_row.values() for v in ls[i]], dtype=np.int64))
            for i in range(k)
        ]
        expected = [row for row, ls in per_row.items() if _brute_within(ls, slop)]
        assert rows_within(lists, slop).tolist() == expected, (per_row, slop)
    big = [(np.array([7, 7]), np.array([0, 10])), (np.array([7]), np.array([5]))]
    assert rows_within(big, 2**32 - 1).tolist() == [7] and rows_within(big, 4).tolist() == []


def _brute_rows(texts: list[str], expr_kind: str, query: str, arg: int) -> list[int]:
    """Row by row, independently of the index: the analyzer's tokens and the window definition."""
    analyzer = analyzer_package.field_analyzers(dict(_text_params())).get(None)
    q = analyzer.analyze(query)
    out = []
    for row, text in enumerate(texts):
        toks = analyzer.analyze(text)
        have = [t.text for t in toks]
        if expr_kind == "text":
            if sum(1 for t in q if t.text in have) >= arg:
                out.append(row)
        elif len(q) < 2:
            if q and q[0].text in have:
                out.append(row)
        else:
            lists = [[t.position - qt.position for t in toks if t.text == qt.text] for qt in q]
            if all(lists) and _brute_within(lists, arg):
                out.append(row)
    return out


def test_random_texts_agree_with_a_row_by_row_model() -> None:
    rng = np.random.default_rng(11)
    words = ["alpha", "beta", "gamma", "delta", "eps", "zeta"]
    texts = [" ".join(rng.choice(words, int(rng.integers(0, 9)))) for _ in range(300)]
    for _ in range(60):
        query = " ".join(rng.choice(words, int(rng.integers(0, 4))))
        least = int(rng.integers(1, 4))
        assert rows(f"text_match(text, '{query}', minimum_should_match={least})", texts) == _brute_rows(
            texts, "text", query, least
        ), query
        slop = int(rng.integers(0, 4))
        assert rows(f"phrase_match(text, '{query}', {slop})", texts) == _brute_rows(texts, "phrase", query, slop), query


# --------------------------------------------------------------------------- the segment cache


class _Counting:
    """Wraps field_analyzers so that every text analyze() and tokens() see is recorded."""

    def __init__(self, analyzers: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[str] = []  # by analyze()
        self.tokenized: list[str] = []  # by tokens()
        inner = analyzers.field_analyzers
        seen, tokenized = self.seen, self.tokenized

        class Analyzer:
            def __init__(self, real: Any) -> None:
                self._real = real

            def analyze(self, text: str) -> Any:
                seen.append(text)
                return self._real.analyze(text)

            def tokens(self, text: str) -> Any:
                tokenized.append(text)
                return self._real.tokens(text)

        class Fields:
            def __init__(self, real: Any) -> None:
                self._real = real
                self.by_field = real.by_field
                self._wrapped: dict[int, Analyzer] = {}

            def get(self, name: str | None) -> Analyzer:
                real = self._real.get(name)
                return self._wrapped.setdefault(id(real), Analyzer(real))

        monkeypatch.setattr(analyzers, "field_analyzers", lambda params: Fields(inner(params)))

    def rows(self, *queries: str) -> tuple[list[str], list[str]]:
        """The row texts tokenized and analyzed (the queries' own left out)."""
        return [t for t in self.tokenized if t not in queries], [t for t in self.seen if t not in queries]


SEGMENT_SCHEMA = Schema("t", "", tuple(f for f in SCHEMA.fields if f.name in ("id", "text", "opt", "age")))


def _growing() -> Segment:
    return Segment(1, 2, "ch", SEGMENT_SCHEMA, False, ColumnStore())


def _append(seg: Segment, texts: list[str], first_id: int, ts: int = 10) -> None:
    n = len(texts)
    seg.append({"id": np.arange(first_id, first_id + n, dtype=np.int64), "text": _obj(texts)}, ts, n)


def test_a_growing_segment_analyzes_each_row_once(monkeypatch: pytest.MonkeyPatch) -> None:
    counting = _Counting(analyzer_package, monkeypatch)
    seg = _growing()
    _append(seg, ["red fox", "blue fox", "red hen"], 0)
    flt = compile_filter("text_match(text, 'Red')", SCHEMA)
    first = ["red fox", "blue fox", "red hen"]
    assert seg.retrieve(flt, 100, ["text"], None)["id"].tolist() == [0, 2]
    assert counting.rows("Red") == (first, [])  # text_match needs no positions: tokens() only
    assert seg.count(flt, 100) == 2 and counting.rows("Red") == (first, [])
    _append(seg, ["red sky", "grey fox"], 3, ts=20)
    assert seg.retrieve(flt, 100, ["text"], None)["id"].tolist() == [0, 2, 3]
    assert counting.rows("Red") == (first + ["red sky", "grey fox"], [])  # the new rows only
    phrase = compile_filter("phrase_match(text, 'Blue Fox')", SCHEMA)
    assert seg.count(phrase, 100) == 1
    five = first + ["red sky", "grey fox"]
    assert counting.rows("Red", "Blue Fox") == (five, five)  # positions recorded for the rows indexed so far
    _append(seg, ["blue fox den"], 5, ts=30)
    assert seg.count(flt, 100) == 3 and seg.count(phrase, 100) == 2
    # from the first phrase on, new rows are analyzed once, with their positions
    assert counting.rows("Red", "Blue Fox") == (five, five + ["blue fox den"])
    assert seg.count(flt, 15) == 2  # MVCC still applies on top
    index = seg.text_indexes.index(flt.root)  # type: ignore[arg-type]
    assert index.covered == index.placed == 6 and seg.memory_bytes() > 0 and seg.text_indexes.nbytes() > 0


def test_an_older_snapshot_sees_only_its_rows() -> None:
    seg = _growing()
    _append(seg, ["red fox", "red hen", "red sky", "blue"], 0)
    flt = compile_filter("text_match(text, 'red')", SCHEMA)
    cols, n = seg.store.snapshot()
    assert seg.count(flt, 100) == 3  # index now covers all 4 rows
    mask, valid = seg.text_indexes.lookup(cols, 2)(flt.root)  # type: ignore[arg-type]
    assert mask.tolist() == [True, True] and valid is None
    phrase = compile_filter("phrase_match(text, 'red sky')", SCHEMA)
    assert seg.text_indexes.lookup(cols, 2)(phrase.root)[0].tolist() == [False, False]  # type: ignore[arg-type]
    index = seg.text_indexes.index(phrase.root)  # type: ignore[arg-type]
    assert (index.covered, index.placed) == (4, 2)  # positions only for the rows that snapshot has
    assert seg.count(phrase, 100) == 1 and index.placed == 4


def test_fields_with_other_analyzer_settings_get_their_own_index() -> None:
    seg = _growing()
    _append(seg, ["a b"], 0)
    assert seg.count(compile_filter("text_match(text, 'a')", SCHEMA), 100) == 1
    other = Schema("t", "", tuple(
        Field(101, "text", D.VarChar, max_length=512, extra_params=_text_params(WHITESPACE)) if f.name == "text" else f
        for f in SEGMENT_SCHEMA.fields
    ))
    assert seg.count(compile_filter("text_match(text, 'a')", other), 100) == 1
    assert len(seg.text_indexes._indexes) == 2


def _sealed(texts: list[str]) -> Segment:
    n = len(texts)
    cols = {"id": np.arange(n, dtype=np.int64), "text": _obj(texts), "age": np.arange(n, dtype=np.int64),
            TS: np.full(n, 10, dtype=np.int64), DELETED: np.zeros(n, dtype=np.int64)}
    seg = Segment(5, 2, "ch", SEGMENT_SCHEMA, True, ColumnStore.of(cols, n), max_ts=10)
    seg.scalar_indexes["text"] = SortedIndex(cols["text"])
    seg.scalar_indexes["age"] = SortedIndex(cols["age"])
    return seg


@pytest.mark.parametrize(
    "expr",
    [
        "text_match(text, 'fox')",
        "text == 'red fox' and text_match(text, 'hen')",
        "text == 'red fox' and text_match(text, 'fox')",
        "text in ['red fox', 'blue hen'] and phrase_match(text, 'blue hen')",
        "age < 2 and not text_match(text, 'red')",
        "age < 3 and phrase_match(text, 'hen red', 2)",
    ],
)
def test_a_scalar_index_never_answers_a_text_match(expr: str) -> None:
    texts = ["red fox", "blue hen", "red hen", "fox"]
    seg = _sealed(texts)
    flt = compile_filter(expr, SCHEMA)
    cols, n = seg.store.snapshot()
    scan = flt.evaluate({k: v for k, v in cols.items() if k in flt.fields}, n)
    assert seg.count(flt, 100) == int(scan.sum())
    via = indexed_filter(flt, seg.scalar_indexes, cols, n, seg.text_indexes.lookup(cols, n))
    if via is not None:
        assert via.tolist() == scan.tolist()
