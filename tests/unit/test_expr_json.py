"""Filter expressions on JSON, dynamic-field keys, Array fields and nullable fields."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from common.errors import MilvusError
from common.expr import compile_filter
from common.schema import DataType as D
from common.schema import Field, Schema

SCHEMA = Schema(
    "j",
    "",
    (
        Field(100, "id", D.Int64, is_primary=True),
        Field(101, "meta", D.JSON),
        Field(102, "tags", D.Array, element_type=D.Int64, max_capacity=8),
        Field(103, "words", D.Array, element_type=D.VarChar, max_capacity=8, max_length=16),
        Field(104, "opt", D.Int64, nullable=True),
        Field(105, "label", D.VarChar, max_length=16, nullable=True),
        Field(106, "doc", D.JSON, nullable=True),
        Field(107, "flags", D.Array, element_type=D.Bool, max_capacity=4),
        Field(108, "$meta", D.JSON, is_dynamic=True),
    ),
    enable_dynamic_field=True,
)
STATIC = Schema("s", "", (Field(100, "id", D.Int64, is_primary=True), Field(101, "meta", D.JSON)))


def _obj(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


META = [
    {"a": 1, "b": {"c": "x"}, "arr": [1, 2, 3], "s": "apple"},
    {"a": 2.5, "arr": [3], "s": "banana"},
    {"a": "1", "arr": [], "s": 5},
    {},
    {"a": True, "arr": [[1, 2], 4], "b": {"c": "y"}},
    {"a": 2, "b": None, "arr": "notalist"},
    {"a": 9007199254740993, "arr": [1, "1", True]},
]
N = len(META)
COLS: dict[str, np.ndarray] = {
    "id": np.arange(N, dtype=np.int64),
    "meta": _obj(META),
    "tags": _obj([np.array(t, dtype=np.int64) for t in ([1, 2], [], [3], [1, 3], [5], [2, 2], [7, 1, 9])]),
    "words": _obj(
        [np.array(w, dtype=object) for w in (["ab", "cd"], [], ["abc"], ["x"], ["ab"], ["zz", "ab"], ["q"])]
    ),
    "opt": np.array([1, 0, 3, 0, 5, 0, 7], dtype=np.int64),
    "opt.valid": np.array([True, False, True, False, True, False, True]),
    "label": _obj(["a", None, "b", None, "ab", None, "c"]),
    "label.valid": np.array([True, False, True, False, True, False, True]),
    "doc": _obj([{"k": 1}, None, {"k": 2}, {"k": 1}, None, {}, {"k": 3}]),
    "doc.valid": np.array([True, False, True, True, False, True, True]),
    "flags": _obj(
        [np.array(f, dtype=bool) for f in ([True], [False], [], [True, False], [False, True], [True], [])]
    ),
    "$meta": _obj([{"color": "red", "n": 1}, {"color": "blue"}, {}, {"color": "red", "n": 5}, {"n": 7.5},
                   {"color": None}, {"color": "reddish", "nested": {"k": [1, 2]}}]),
}


def rows(expr: str, params: dict[str, Any] | None = None, schema: Schema = SCHEMA) -> list[int]:
    """The ids of matching rows."""
    mask = compile_filter(expr, schema, params).evaluate(COLS, N)
    return [int(i) for i in np.flatnonzero(mask)]


def err(expr: str, schema: Schema = SCHEMA) -> str:
    with pytest.raises(MilvusError) as info:
        compile_filter(expr, schema)
    return info.value.message


# ---------------------------------------------------------------- JSON fields


def test_json_path_comparisons_follow_milvus_type_rules() -> None:
    assert rows('meta["a"] == 1') == [0]  # "1" is a string and true is a bool, neither equals 1
    assert rows('meta["a"] != 1') == [1, 2, 3, 4, 5, 6]  # missing key and other types: !=
    assert rows('meta["a"] > 1') == [1, 5, 6]
    assert rows('meta["a"] >= 2') == [1, 5, 6]
    assert rows('meta["a"] == 2.0') == [5]  # int 2 equals double 2.0
    assert rows('meta["a"] == "1"') == [2]
    assert rows('meta["a"] == true') == [4]
    assert rows("meta['a'] < 3") == [0, 1, 5]
    assert rows('1 < meta["a"] < 3') == [1, 5]
    assert rows('not (meta["a"] > 1)') == [0, 2, 3, 4]  # missing key is false, not null


def test_json_large_ints_are_exact() -> None:
    assert rows('meta["a"] == 9007199254740993') == [6]
    assert rows('meta["a"] == 9007199254740992') == []
    assert rows('meta["a"] > 9007199254740992') == [6]


def test_nested_paths_and_indexes() -> None:
    assert rows('meta["b"]["c"] == "x"') == [0]
    assert rows("meta['b']['c'] like 'y%'") == [4]
    assert rows('meta["arr"][0] == 1') == [0, 6]
    assert rows('meta["arr"][2] == 3') == [0]
    assert rows('meta["arr"][0][1] == 2') == [4]
    assert rows('meta["arr"][9] == 1') == []
    assert rows('meta["b"]["c"] != "x"') == [1, 2, 3, 4, 5, 6]


def test_json_in_like_and_arithmetic() -> None:
    assert rows('meta["a"] in [1, "1"]') == [0, 2]
    assert rows('meta["a"] in [2]') == [5]
    assert rows('meta["a"] not in [1, 2]') == [1, 2, 3, 4, 6]
    assert rows('meta["a"] in [true]') == [4]  # true is not 1
    assert rows('meta["s"] like "%an%"') == [1]
    assert rows('meta["s"] like "a%"') == [0]
    assert rows('meta["a"] + 1 == 3') == [5]
    assert rows('meta["a"] * 2 > 4') == [1, 6]
    assert rows('meta["a"] % 2 == 0') == [5]
    assert rows('-meta["a"] < -2') == [1, 6]
    assert rows('meta["arr"] == [1, 2, 3]') == [0]
    assert rows('meta["arr"] != [3]') == [0, 2, 3, 4, 5, 6]


def test_json_contains_family() -> None:
    assert rows('json_contains(meta["arr"], 1)') == [0, 6]
    assert rows('JSON_CONTAINS(meta["arr"], 3)') == [0, 1]
    assert rows('json_contains(meta["arr"], [1, 2])') == [4]
    assert rows('json_contains(meta["arr"], "1")') == [6]
    assert rows('json_contains(meta["arr"], true)') == [6]
    assert rows('json_contains_all(meta["arr"], [1, 3])') == [0]
    assert rows('json_contains_all(meta["arr"], [1, "1", true])') == [6]
    assert rows('json_contains_any(meta["arr"], [4, 3])') == [0, 1, 4]
    assert rows('json_contains_any(meta["arr"], [])') == []


def test_array_length_exists_and_null_on_json() -> None:
    assert rows('array_length(meta["arr"]) == 3') == [0, 6]
    assert rows('array_length(meta["arr"]) == 0') == [2]
    assert rows('exists meta["b"]') == [0, 4]  # a JSON null counts as absent
    assert rows('EXISTS meta["b"]["c"]') == [0, 4]
    assert rows('meta["b"] is null') == [1, 2, 3, 5, 6]
    assert rows('meta["b"] IS NOT NULL') == [0, 4]
    assert rows("meta is null") == []


def test_whole_json_field_and_nullable_json() -> None:
    assert rows('doc["k"] == 1') == [0, 3]
    assert rows('doc["k"] != 1') == [2, 5, 6]  # null documents stay unknown
    assert rows("doc is null") == [1, 4]
    assert rows("doc is not null") == [0, 2, 3, 5, 6]
    assert rows('not (doc["k"] == 1)') == [2, 5, 6]


def test_json_errors() -> None:
    assert "supportted on json key" in err("exists meta")
    assert "json or array fields" in err("json_contains(id, 1)")
    assert "json or array fields" in err('json_contains(tags[0], 1)')
    assert "must be an array" in err('json_contains_all(meta["arr"], 1)')
    assert "explicitly specified element" in err('json_contains(meta["arr"], id)')
    assert "takes 2 arguments" in err('json_contains(meta["arr"])')
    assert "array_length operation" in err("array_length(id) > 1")
    assert "takes 1 argument" in err("array_length(tags, tags) > 1")
    assert "predicate is not a boolean expression" in err('meta["a"]')
    assert "invalid identifier" in err('meta[""] == 1')


# ---------------------------------------------------------------- dynamic field


def test_dynamic_keys_resolve_to_meta() -> None:
    assert rows('color == "red"') == [0, 3]
    assert rows('color != "red"') == [1, 2, 4, 5, 6]
    assert rows('$meta["color"] == "red"') == [0, 3]
    assert rows('color like "red%"') == [0, 3, 6]
    assert rows("n > 2") == [3, 4]
    assert rows("n in [1, 7.5]") == [0, 4]
    assert rows("exists n") == [0, 3, 4]
    assert rows("color is null") == [2, 4, 5]
    assert rows('nested["k"][1] == 2') == [6]
    assert rows('json_contains(nested["k"], 1)') == [6]
    assert rows("id < 3 and color == 'blue'") == [1]
    assert compile_filter("color == 'red'", SCHEMA).fields == {"$meta"}


def test_unknown_field_without_dynamic_schema() -> None:
    assert "field color not exist" in err("color == 'red'", STATIC)
    assert rows('meta["a"] == 1', schema=STATIC) == [0]


# ---------------------------------------------------------------- Array fields


def test_array_indexing() -> None:
    assert rows("tags[0] == 1") == [0, 3]
    assert rows("tags[1] > 1") == [0, 3, 5]
    assert rows("tags[5] == 1") == []
    assert rows("tags[0] in [5, 7]") == [4, 6]
    assert rows('words[0] like "a%"') == [0, 2, 4]
    assert rows('words[1] == "ab"') == [5]
    assert rows("flags[0]") == [0, 3, 5]
    assert rows("not flags[0]") == [1, 2, 4, 6]


def test_array_contains_family_and_length() -> None:
    assert rows("array_contains(tags, 1)") == [0, 3, 6]
    assert rows("ARRAY_CONTAINS(tags, 2)") == [0, 5]
    assert rows("array_contains_all(tags, [1, 3])") == [3]
    assert rows("array_contains_all(tags, [2])") == [0, 5]
    assert rows("array_contains_any(tags, [5, 9])") == [4, 6]
    assert rows("array_contains_any(tags, [])") == []
    assert rows('array_contains(words, "ab")') == [0, 4, 5]
    assert rows('array_contains_any(words, ["x", "q"])') == [3, 6]
    assert rows("array_length(tags) == 2") == [0, 3, 5]
    assert rows("array_length(tags) == 0") == [1]
    assert rows("array_length(words) >= 1") == [0, 2, 3, 4, 5, 6]


def test_array_equality_with_a_list() -> None:
    assert rows("tags == [1, 2]") == [0]
    assert rows("tags != [1, 2]") == [1, 2, 3, 4, 5, 6]
    assert rows('words == ["ab"]') == [4]


def test_array_errors() -> None:
    assert "can only access array field with integer index" in err('tags["a"] == 1')
    assert "cannot be casted to Int64" in err('array_contains(tags, "x")')
    assert "cannot be casted to VarChar" in err("array_contains_any(words, [1])")
    assert "comparisons between Array[Int64] and Int64" in err("tags > 1")
    assert "can not comparisons array fields directly" in err("tags < [1]")
    assert "'term' can not be used on an array field" in err("tags in [1]")
    assert "comparisons between Int64 and VarChar" in err('tags[0] == "a"')
    assert "like operation" in err('tags[0] like "a%"')


# ---------------------------------------------------------------- nullable fields


def test_comparisons_with_null_are_never_true() -> None:
    assert rows("opt > 0") == [0, 2, 4, 6]
    assert rows("opt == 0") == []
    assert rows("opt != 1") == [2, 4, 6]
    assert rows("not (opt > 2)") == [0]
    assert rows("opt in [0, 1]") == [0]
    assert rows("opt not in [1]") == [2, 4, 6]
    assert rows('label like "a%"') == [0, 4]
    assert rows('label != "a"') == [2, 4, 6]
    assert rows('label < "b"') == [0, 4]


def test_is_null_spellings() -> None:
    assert rows("opt is null") == [1, 3, 5]
    assert rows("opt IS NULL") == [1, 3, 5]
    assert rows("opt is not null") == [0, 2, 4, 6]
    assert rows("opt IS NOT NULL") == [0, 2, 4, 6]
    assert rows("not (opt is null)") == [0, 2, 4, 6]
    assert rows("id is null") == []
    assert rows("id is not null") == list(range(N))
    assert compile_filter("opt is null", SCHEMA).fields == {"opt", "opt.valid"}


def test_three_valued_and_or() -> None:
    # opt > 2 is: F ? T ? T ? T ; id < 3 is: T T T F F F F
    assert rows("opt > 2 or id < 3") == [0, 1, 2, 4, 6]
    assert rows("opt > 2 and id < 3") == [2]
    assert rows("not (opt > 2 or id < 3)") == []
    assert rows("not (opt > 2 and id < 3)") == [0, 3, 4, 5, 6]  # false and unknown is false
    assert rows("not (opt > 2 and id >= 0)") == [0]
    assert rows("opt > 100 or opt is null") == [1, 3, 5]


def test_missing_valid_column_means_no_nulls() -> None:
    cols = {"opt": COLS["opt"]}
    mask = compile_filter("opt >= 0", SCHEMA).evaluate(cols, N)
    assert mask.all()


def test_large_json_batch_still_correct() -> None:
    n = 5000
    docs = _obj([{"v": i, "t": "even" if i % 2 == 0 else "odd"} for i in range(n)])
    cols = {"meta": docs, "$meta": _obj([{"k": i % 3} for i in range(n)])}
    f = compile_filter('meta["v"] >= 100 and meta["t"] == "even" and k == 0', SCHEMA)
    expected = [i for i in range(n) if i >= 100 and i % 2 == 0 and i % 3 == 0]
    assert np.flatnonzero(f.evaluate(cols, n)).tolist() == expected


def test_json_compared_with_fields_and_other_paths() -> None:
    assert rows('meta["a"] == id + 1') == [0]
    assert rows('meta["a"] > opt') == [6]  # rows 1 and 5 would match but opt is null there
    assert rows('meta["b"]["c"] == meta["b"]["c"]') == [0, 4]
    assert rows('meta["a"] >= tags[0]') == [0, 5, 6]
