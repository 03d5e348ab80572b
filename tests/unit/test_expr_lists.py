"""Long expressions: the literal-list fast path, long or-chains, and their cost."""

from __future__ import annotations

import time

import numpy as np
import pytest

from common.errors import MilvusError
from common.expr import compile_filter
from common.expr.lists import MIN_ITEMS, PREFIX, cut_lists
from common.schema import DataType as D
from common.schema import Field, Schema

SCHEMA = Schema(
    "l",
    "",
    (
        Field(100, "id", D.Int64, is_primary=True),
        Field(101, "name", D.VarChar, max_length=16),
        Field(102, "d", D.Double),
        Field(103, "meta", D.JSON),
    ),
)
N = 1000
COLS = {
    "id": np.arange(N, dtype=np.int64) - 500,
    "name": np.array([f"k{i}" for i in range(N)], dtype=object),
    "d": np.arange(N, dtype=np.float64) / 4,
}


def _list(values: list[str]) -> str:
    return "[" + ", ".join(values) + "]"


def test_long_integer_lists_are_cut_and_evaluate_exactly() -> None:
    ids = list(range(-520, 520, 7)) + [2**63 - 1, -(2**63)]
    expr = f"id in {_list([str(i) for i in ids])}"
    short, lists = cut_lists(expr)
    assert short == "id in {" + PREFIX + "0}" and lists[PREFIX + "0"] == tuple(ids)
    f = compile_filter(expr, SCHEMA)
    assert (f.evaluate(COLS, N) == np.isin(COLS["id"], ids)).all()
    assert f.pk_values() == ids


def test_long_string_lists_with_escapes_and_brackets() -> None:
    names = [f'"k{i}"' for i in range(0, 40, 2)] + ["'k1'", '"a\\"b"', '"[x, y]"', "r'k\\3'"]
    short, lists = cut_lists(f"name in {_list(names)}")
    assert lists[PREFIX + "0"][-4:] == ("k1", 'a"b', "[x, y]", "k\\3")
    assert short.startswith("name in {")
    mask = compile_filter(f"name not in {_list(names)}", SCHEMA).evaluate(COLS, N)
    wanted = {f"k{i}" for i in range(0, 40, 2)} | {"k1"}
    assert (mask == ~np.isin(COLS["name"], list(wanted))).all()


def test_mixed_literal_forms_match_the_parser() -> None:
    items = [str(i) for i in range(MIN_ITEMS)] + ["-1.5e1", "0x1F", "017", "+4", ".5", "2."]
    expected = (*range(MIN_ITEMS), -15.0, 31, 15, 4, 0.5, 2.0)
    short, lists = cut_lists(f"d in {_list(items)}")
    assert lists[PREFIX + "0"] == expected
    mask = compile_filter(f"d in {_list(items)}", SCHEMA).evaluate(COLS, N)
    assert (mask == np.isin(COLS["d"], [float(v) for v in expected])).all()


def test_what_is_left_to_the_parser() -> None:
    short = [str(i) for i in range(MIN_ITEMS - 1)]
    assert cut_lists("x" * 300 + f" in {_list(short)}")[1] == {}  # too short to bother
    with_name = [str(i) for i in range(MIN_ITEMS)] + ["id"]
    assert cut_lists(f"id in {_list(with_name)}" + " " * 200)[1] == {}
    nested = "[" + ", ".join(f"[{i}]" for i in range(MIN_ITEMS)) + "]"
    assert cut_lists(f"meta['a'] in {nested}" + " " * 200)[1] == {}
    inside = 'name == "' + _list([str(i) for i in range(40)]) + '"'
    assert cut_lists(inside) == (inside, {})
    literal = compile_filter(inside, SCHEMA)
    assert not literal.evaluate(COLS, N).any()


def test_errors_in_long_lists_report_the_original_text() -> None:
    items = [str(i) for i in range(40)]
    with pytest.raises(MilvusError) as info:
        compile_filter(f"id in {_list(items + ['id'])}", SCHEMA)
    assert "array element type must be generic value, but got: id" in info.value.message
    with pytest.raises(MilvusError) as info:
        compile_filter(f"id in {_list(items)} and and", SCHEMA)
    message = info.value.message
    assert message.startswith(f"cannot parse expression: id in {_list(items)} and and, error: ")
    assert "line 1:" in message and PREFIX not in message
    with pytest.raises(MilvusError) as info:
        compile_filter(f"id in {_list(items + ['08'])}", SCHEMA)
    assert "cannot parse expression" in info.value.message
    with pytest.raises(MilvusError) as info:
        compile_filter(f"name in {_list(items)}", SCHEMA)
    assert "cannot be casted to VarChar" in info.value.message


def test_long_or_chains_do_not_recurse() -> None:
    expr = " or ".join(f"id == {i}" for i in range(3000))
    f = compile_filter(expr, SCHEMA)
    assert f.pk_values() == list(range(3000))
    assert (f.evaluate(COLS, N) == (COLS["id"] >= 0)).all()
    conj = " and ".join(f"id != {i}" for i in range(2000))
    assert (compile_filter(conj, SCHEMA).evaluate(COLS, N) == ((COLS["id"] < 0) | (COLS["id"] >= 2000))).all()


def test_hundred_thousand_keys_compile_quickly() -> None:
    ids = list(range(100_000))
    expr = f"id in {_list([str(i) for i in ids])}"
    start = time.perf_counter()
    f = compile_filter(expr, SCHEMA)
    elapsed = time.perf_counter() - start
    assert f.pk_values() == ids
    assert elapsed < 1.0, f"compiling 100k keys took {elapsed:.2f} s"
