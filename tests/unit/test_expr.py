"""Filter expressions on scalar fields: operators, precedence, literals, errors, pk lookup."""

from __future__ import annotations

import time

import numpy as np
import pytest

from common.errors import Code, MilvusError
from common.expr import Filter, compile_filter
from common.schema import DataType as D
from common.schema import Field, Schema

N = 400
SCHEMA = Schema(
    "c",
    "",
    (
        Field(100, "id", D.Int64, is_primary=True),
        Field(101, "i8", D.Int8),
        Field(102, "i16", D.Int16),
        Field(103, "i32", D.Int32),
        Field(104, "age", D.Int64),
        Field(105, "f", D.Float),
        Field(106, "d", D.Double),
        Field(107, "name", D.VarChar, max_length=32),
        Field(108, "flag", D.Bool),
        Field(109, "vec", D.FloatVector, dim=4),
        Field(110, "other", D.Bool),
    ),
)
STR_PK = Schema(
    "s", "", (Field(100, "pk", D.VarChar, is_primary=True, max_length=8), Field(101, "v", D.Int64))
)


def _obj(values: list[object]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _columns() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    names = ["alice", "bob", "carol", "a%b", "a_b", "Ab", "", "bobby", "x\ny", "O'Neil"]
    return {
        "id": np.arange(N, dtype=np.int64) * 3 - 200,
        "i8": rng.integers(-128, 128, N).astype(np.int8),
        "i16": rng.integers(-1000, 1000, N).astype(np.int16),
        "i32": rng.integers(-50, 50, N).astype(np.int32),
        "age": rng.integers(-20, 100, N).astype(np.int64),
        "f": (rng.random(N) * 10).astype(np.float32),
        "d": rng.random(N) * 10 - 5,
        "name": _obj([names[i % len(names)] for i in range(N)]),
        "flag": rng.random(N) > 0.5,
        "other": rng.random(N) > 0.3,
    }


COLS = _columns()


def run(expr: str, params: dict[str, object] | None = None, cols: dict[str, np.ndarray] = COLS) -> np.ndarray:
    mask = compile_filter(expr, SCHEMA, params).evaluate(cols, len(cols["id"]))
    assert mask.dtype == np.bool_ and mask.shape == (len(cols["id"]),)
    return mask


def err(expr: str, schema: Schema = SCHEMA, params: dict[str, object] | None = None) -> str:
    with pytest.raises(MilvusError) as info:
        compile_filter(expr, schema, params)
    assert info.value.code == Code.PARAMETER_INVALID
    return info.value.message


AGE = COLS["age"]


def test_empty_expression_matches_everything() -> None:
    for expr in ("", "   ", "\n"):
        f = compile_filter(expr, SCHEMA)
        assert f.fields == frozenset() and f.pk_values() is None
        assert f.evaluate(COLS, N).all()


@pytest.mark.parametrize(
    "op, ref",
    [("==", np.equal), ("!=", np.not_equal), ("<", np.less), ("<=", np.less_equal),
     (">", np.greater), (">=", np.greater_equal)],
)
def test_comparison_operators(op: str, ref: np.ufunc) -> None:
    assert (run(f"age {op} 40") == ref(AGE, 40)).all()
    flipped = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
    assert (run(f"40 {flipped} age") == ref(AGE, 40)).all()
    assert (run(f"age {op} i32") == ref(AGE, COLS["i32"])).all()
    assert (run(f"d {op} -1.25") == ref(COLS["d"], -1.25)).all()
    assert (run(f'name {op} "bob"') == np.array([ref(s, "bob") for s in COLS["name"]])).all()


def test_every_integer_width_and_mixed_numeric_comparisons() -> None:
    for name in ("i8", "i16", "i32", "age"):
        assert (run(f"{name} >= -5") == (COLS[name] >= -5)).all()
    assert (run("i8 < 1000") == np.ones(N, bool)).all()  # beyond Int8, no overflow
    assert (run("i8 > 2.5") == (COLS["i8"] >= 3)).all()
    assert (run("i8 == 3.0") == (COLS["i8"] == 3)).all()
    assert (run("f > d") == (COLS["f"].astype(np.float64) > COLS["d"])).all()
    assert (run("age < f") == (COLS["f"] > AGE)).all()


def test_float_field_compares_at_its_own_precision() -> None:
    cols = dict(COLS)
    cols["f"] = np.full(N, 0.1, dtype=np.float32)
    assert run("f == 0.1", cols=cols).all()
    assert not run("f < 0.1", cols=cols).any()


def test_bool_fields_bare_and_compared() -> None:
    flag, other = COLS["flag"], COLS["other"]
    assert (run("flag") == flag).all()
    assert (run("not flag") == ~flag).all()
    assert (run("!flag") == ~flag).all()
    assert (run("flag == true") == flag).all()
    assert (run("flag != True") == ~flag).all()
    assert (run("FALSE == flag") == ~flag).all()
    assert (run("flag == other") == (flag == other)).all()
    assert (run("flag in [false]") == ~flag).all()


def test_chained_ranges() -> None:
    assert (run("1 < age < 50") == ((AGE > 1) & (AGE < 50))).all()
    assert (run("1 <= age <= 50") == ((AGE >= 1) & (AGE <= 50))).all()
    assert (run("10 >= age > 2") == ((AGE <= 10) & (AGE > 2))).all()
    assert (run("50 > age >= -3") == ((AGE < 50) & (AGE >= -3))).all()
    assert (run("-1.5 < d < 2.5") == ((COLS["d"] > -1.5) & (COLS["d"] < 2.5))).all()
    assert (run('"b" <= name < "c"') == np.array(["b" <= s < "c" for s in COLS["name"]])).all()
    assert not run("5 < age < 1").any()


def test_in_and_not_in() -> None:
    assert (run("age in [1, 2, 3, 50]") == np.isin(AGE, [1, 2, 3, 50])).all()
    assert (run("age IN [1, 2, 3, 50]") == np.isin(AGE, [1, 2, 3, 50])).all()
    assert (run("age not in [1, 2, 3]") == ~np.isin(AGE, [1, 2, 3])).all()
    assert (run("age NOT IN [1, 2, 3]") == ~np.isin(AGE, [1, 2, 3])).all()
    assert not run("age in []").any()
    assert run("age not in []").all()
    assert (run("age in [1.0, 2.5]") == (AGE == 1)).all()
    names = ["bob", "carol", "nobody"]
    assert (run('name in ["bob", "carol", "nobody"]') == np.isin(COLS["name"], names)).all()
    many = [f"n{i}" for i in range(30)] + ["alice"]
    expr = "name in [" + ", ".join(f'"{v}"' for v in many) + "]"
    assert (run(expr) == (COLS["name"] == "alice")).all()
    assert (run("d in [1, 2]") == np.isin(COLS["d"], [1.0, 2.0])).all()
    assert (run("age in [1, 2,]") == np.isin(AGE, [1, 2])).all()  # trailing comma


def test_like_patterns() -> None:
    names = list(COLS["name"])

    def ref(fn: object) -> np.ndarray:
        return np.array([fn(s) for s in names])  # type: ignore[operator]

    assert (run('name like "bob%"') == ref(lambda s: s.startswith("bob"))).all()
    assert (run('name LIKE "%b"') == ref(lambda s: s.endswith("b"))).all()
    assert (run('name like "%ro%"') == ref(lambda s: "ro" in s)).all()
    assert (run('name like "bob"') == ref(lambda s: s == "bob")).all()
    assert (run('name like "_ob"') == ref(lambda s: s == "bob")).all()
    assert (run('name like "a_b"') == ref(lambda s: s in ("a%b", "a_b"))).all()
    assert (run('name like "a\\\\%b"') == ref(lambda s: s == "a%b")).all()  # "a\\%b": escaped %
    assert (run('name like "a\\%b"') == ref(lambda s: s == "a%b")).all()  # lenient single escape
    assert (run('name like "a\\_b"') == ref(lambda s: s == "a_b")).all()
    assert (run('name like "%"') == np.ones(N, bool)).all()
    assert (run('name like ""') == ref(lambda s: s == "")).all()
    assert (run('name like "x%y"') == ref(lambda s: s == "x\ny")).all()  # % spans newlines
    assert (run('name like "b%b_"') == ref(lambda s: s == "bobby")).all()
    assert (run("name like 'O\\'%'") == ref(lambda s: s.startswith("O'"))).all()


def test_logical_operators_and_spellings() -> None:
    a, b, c = AGE > 30, COLS["flag"], COLS["d"] < 0
    for conj in ("and", "AND", "&&"):
        assert (run(f"age > 30 {conj} flag") == (a & b)).all()
    for disj in ("or", "OR", "||"):
        assert (run(f"age > 30 {disj} flag") == (a | b)).all()
    for neg in ("not ", "NOT ", "!"):
        assert (run(f"{neg}(age > 30)") == ~a).all()
    assert (run("age > 30 or flag and d < 0") == (a | (b & c))).all()
    assert (run("(age > 30 or flag) and d < 0") == ((a | b) & c)).all()
    assert (run("not age > 30 and flag") == (~a & b)).all()  # not binds looser than >
    assert (run("not not flag") == b).all()
    assert (run("age > 30 and flag and d < 0 or not flag") == ((a & b & c) | ~b)).all()


def test_arithmetic_follows_milvus_integer_semantics() -> None:
    cols = dict(COLS)
    cols["age"] = np.array([-7, -6, -1, 0, 1, 6, 7] * (N // 7) + [7] * (N % 7), dtype=np.int64)
    age = cols["age"]
    trunc = np.trunc(age / 2).astype(np.int64)
    assert (run("age / 2 == -3", cols=cols) == (trunc == -3)).all()
    assert (run("age % 2 == -1", cols=cols) == (np.fmod(age, 2) == -1)).all()
    assert (run("age + 3 > 5", cols=cols) == (age + 3 > 5)).all()
    assert (run("age - 3 <= 0", cols=cols) == (age - 3 <= 0)).all()
    assert (run("age * -2 == 14", cols=cols) == (age == -7)).all()
    assert (run("-age == 7", cols=cols) == (age == -7)).all()
    assert (run("2 * age + 1 == 15", cols=cols) == (age == 7)).all()
    assert (run("age ** 2 == 49", cols=cols) == (np.abs(age) == 7)).all()
    assert (run("age / 2.0 == -3.5", cols=cols) == (age == -7)).all()
    assert (run("14 / age == 2", cols=cols) == np.isin(age, [6, 7])).all()
    assert (run("-14 / age == 2", cols=cols) == np.isin(age, [-6, -7])).all()


def test_integer_arithmetic_does_not_wrap_narrow_types() -> None:
    i8 = COLS["i8"].astype(np.int64)
    assert (run("i8 * 100 > 5000") == (i8 * 100 > 5000)).all()
    assert (run("-i8 == 128") == (i8 == -128)).all()


def test_division_by_a_zero_column_value_matches_nothing() -> None:
    cols = dict(COLS)
    cols["i32"] = np.where(np.arange(N) % 2 == 0, 0, 2).astype(np.int32)
    mask = run("age / i32 >= -1000", cols=cols)
    assert (mask == (cols["i32"] != 0)).all()
    assert not run("not (age % i32 == 100)", cols=cols)[cols["i32"] == 0].any()


def test_constant_folding_and_precedence() -> None:
    assert run("1 + 2 * 3 == 7").all()
    assert run("(1 + 2) * 3 == 9").all()
    assert run("2 ** 3 ** 2 == 512").all()
    assert run("-2 ** 2 == -4").all()
    assert run("7 / 2 == 3").all()
    assert run("-7 / 2 == -3").all()
    assert run("-7 % 3 == -1").all()
    assert run("7.0 / 2 == 3.5").all()
    assert run("2 ** -1 == 0.5").all()
    assert run("age + 2 * 3 > 10").tolist() == (AGE + 6 > 10).tolist()
    assert not run("1 > 2").any()
    assert run("true").all() and not run("False").any()
    assert run("TRUE or flag").all()
    assert (run("true and flag") == COLS["flag"]).all()


@pytest.mark.parametrize(
    "literal, value",
    [("1e3", 1000), ("1.5e-1", 0.15), (".5", 0.5), ("5.", 5), ("0x1F", 31), ("0b101", 5),
     ("017", 15), ("0o17", 15), ("0", 0)],
)
def test_numeric_literals(literal: str, value: float) -> None:
    assert (run(f"d < {literal}") == (COLS["d"] < value)).all()


def test_string_literals_and_escapes() -> None:
    names = COLS["name"]
    assert (run("name == 'bob'") == (names == "bob")).all()
    assert (run('name == "x\\ny"') == (names == "x\ny")).all()
    assert (run("name == 'O\\'Neil'") == (names == "O'Neil")).all()
    assert (run('name == "O\'Neil"') == (names == "O'Neil")).all()
    assert (run('name == "\\u0062ob"') == (names == "bob")).all()
    assert (run('name == "\\x62ob"') == (names == "bob")).all()
    assert (run('name == r"a%b"') == (names == "a%b")).all()


def test_large_int64_comparisons_are_exact() -> None:
    big = 2**62
    cols = dict(COLS)
    values = [big, big + 1, 2**53, 2**53 + 1, 2**63 - 1, -(2**63), 0, 1]
    cols["id"] = np.array(values * (N // 8), dtype=np.int64)
    ids = cols["id"]
    assert (run(f"id == {big + 1}", cols=cols) == (ids == big + 1)).all()
    assert (run(f"id > {big}", cols=cols) == (ids > big)).all()
    assert (run("id == 9007199254740993", cols=cols) == (ids == 2**53 + 1)).all()
    assert (run("id >= 9223372036854775807", cols=cols) == (ids == 2**63 - 1)).all()
    assert (run("id <= -9223372036854775808", cols=cols) == (ids == -(2**63))).all()
    assert run("id < 9223372036854775808", cols=cols).all()  # above Int64: constant answer
    assert not run("id == 99999999999999999999", cols=cols).any()
    assert run("id > -99999999999999999999", cols=cols).all()
    wanted = np.isin(ids, [big + 1, 2**53 + 1])
    assert (run(f"id in [{big + 1}, 9007199254740993]", cols=cols) == wanted).all()
    assert (run("id < 1e19", cols=cols)).all()
    assert (run("id > 9007199254740992.5", cols=cols) == (ids > 2**53)).all()
    assert (run(f"id - 1 == {big}", cols=cols) == (ids == big + 1)).all()


def test_predicate_used_as_a_value() -> None:
    assert (run("(age > 30) == flag") == ((AGE > 30) == COLS["flag"])).all()


def test_templates() -> None:
    assert (run("age > {x}", {"x": 30}) == (AGE > 30)).all()
    assert (run("age in {ids}", {"ids": [1, 2, 3]}) == np.isin(AGE, [1, 2, 3])).all()
    assert (run("age in {ids}", {"ids": np.array([4, 5])}) == np.isin(AGE, [4, 5])).all()
    assert (run("{lo} < age < {hi}", {"lo": np.int64(1), "hi": 9.5}) == ((AGE > 1) & (AGE < 9.5))).all()
    assert (run("name == {n} or flag == {b}", {"n": "bob", "b": True})
            == ((COLS["name"] == "bob") | COLS["flag"])).all()
    assert "template variable name {y} is not found" in err("age > {y}", params={"x": 1})
    assert "template variable {x}" in err("age > {x}", params={"x": {"a": 1}})
    assert "template variable {x}" in err("age > {x}", params={"x": None})


def test_pk_values() -> None:
    def pks(expr: str, schema: Schema = SCHEMA) -> object:
        return compile_filter(expr, schema).pk_values()

    assert pks("id in [3, 1, 3, 2]") == [3, 1, 2]
    assert pks("id == 5") == [5]
    assert pks("5 == id") == [5]
    assert pks("id == 1 or id in [2, 1] or id == 7") == [1, 2, 7]
    assert pks("id in []") == []
    assert pks("id in [1.0, 2.5]") == [1]
    assert compile_filter("id in {ids}", SCHEMA, {"ids": [9, 8]}).pk_values() == [9, 8]
    for other in ("id > 5", "id not in [1]", "id == 1 and flag", "age in [1]", "id != 1", "",
                  "id in [1] or age == 2", "not id in [1]"):
        assert pks(other) is None, other
    assert pks('pk in ["a", "b", "a"]', STR_PK) == ["a", "b"]
    assert pks("pk == 'x' or pk == 'y'", STR_PK) == ["x", "y"]


def test_fields_lists_needed_columns() -> None:
    assert compile_filter("age > 1 and (name like 'a%' or flag)", SCHEMA).fields == {"age", "name", "flag"}
    assert compile_filter("1 < 2", SCHEMA).fields == frozenset()
    f = compile_filter("id in [1]", SCHEMA)
    assert isinstance(f, Filter) and f.expr == "id in [1]"


def test_evaluate_reads_only_named_columns_and_returns_a_fresh_mask() -> None:
    f = compile_filter("flag", SCHEMA)
    cols = {"flag": COLS["flag"].copy()}
    mask = f.evaluate(cols, N)
    mask[:] = False
    assert (cols["flag"] == COLS["flag"]).all()
    assert f.evaluate({"flag": np.zeros(0, bool)}, 0).shape == (0,)
    with pytest.raises(MilvusError):
        compile_filter("age > 1", SCHEMA).evaluate({}, 3)


def test_parser_is_cached_and_reused() -> None:
    from common.expr.grammar import parser

    assert parser() is parser()


def test_numeric_range_filter_is_fast() -> None:
    n = 100_000
    rng = np.random.default_rng(1)
    cols = {"age": rng.integers(0, 100, n), "d": rng.random(n)}
    f = compile_filter("10 < age <= 50 and d < 0.5", SCHEMA)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        mask = f.evaluate(cols, n)
        best = min(best, time.perf_counter() - start)
    assert (mask == ((cols["age"] > 10) & (cols["age"] <= 50) & (cols["d"] < 0.5))).all()
    assert best < 0.005, f"range filter took {best * 1e3:.2f} ms on 100k rows"
