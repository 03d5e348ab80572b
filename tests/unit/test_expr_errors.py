"""Filter expression errors: every rejection is MilvusError(1100) in Milvus's wording."""

from __future__ import annotations

import pytest

from common.errors import Code, MilvusError
from common.expr import compile_filter
from common.schema import DataType as D
from common.schema import Field, Schema

SCHEMA = Schema(
    "e",
    "",
    (
        Field(100, "id", D.Int64, is_primary=True),
        Field(101, "age", D.Int64),
        Field(102, "f", D.Float),
        Field(103, "name", D.VarChar, max_length=32),
        Field(104, "flag", D.Bool),
        Field(105, "vec", D.FloatVector, dim=4),
    ),
)


def err(expr: str, params: dict[str, object] | None = None) -> str:
    with pytest.raises(MilvusError) as info:
        compile_filter(expr, SCHEMA, params)
    assert info.value.code == Code.PARAMETER_INVALID
    return info.value.message


@pytest.mark.parametrize(
    "expr, fragment",
    [
        ("age >> 3", "shift is not supported"),
        ("age << 3", "shift is not supported"),
        ("age & 1 == 1", "BitAnd is not supported"),
        ("age | 1 == 1", "BitOr is not supported"),
        ("age ^ 1 == 1", "BitXor is not supported"),
        ("~age == 1", "BitNot is not supported"),
        ("xyz > 1", "field xyz not exist"),
        ("$meta['a'] > 1", "field $meta not exist"),
        ("name > 1", "comparisons between VarChar and Int64 are not supported"),
        ("age == 'a'", "comparisons between Int64 and VarChar are not supported"),
        ("flag == 1", "comparisons between Bool and Int64 are not supported"),
        ("1 == 'a'", "incompatible operands"),
        ("age like 'a%'", "like operation on non-string or no-json field is unsupported"),
        ("name like age", "pattern of like must be a string"),
        ("vec > 1", "filter on vector field (vec) is not supported"),
        ("age / 0 > 1", "cannot divide by zero"),
        ("age % 0 > 1", "cannot modulo by zero"),
        ("f % 2 == 1", "modulo can only apply on integer"),
        ("name + 1 > 2", "'add' can only be applied on numeric fields, got: VarChar"),
        ("-name == 'a'", "cannot be applied on VarChar"),
        ("age in [1, 'a']", "value 'a' in list cannot be casted to Int64"),
        ("name in [1]", "value '1' in list cannot be casted to VarChar"),
        ("flag in [1]", "value '1' in list cannot be casted to Bool"),
        ("age in age", "right-hand side of 'in' must be a list"),
        ("age in 3", "right-hand side of 'in' must be a list"),
        ("3 in [3]", "'term' can only be used on non-const expression"),
        ("age in [age]", "array element type must be generic value"),
        ("flag and age", "'and' can only be used between boolean expressions"),
        ("age or flag", "'or' can only be used between boolean expressions"),
        ("not age", "not op can only be applied on boolean expression"),
        ("text_match(name, 'x')", 'field "name" does not enable match'),
        ("TEXT_MATCH(name, 'x')", 'field "name" does not enable match'),
        ("phrase_match(age, 'x')", "phrase match operation on non-string is unsupported"),
        ("st_within(name, 'x')", "st_within is not supported"),
        ("Array_Contains(name, 'x')", "function Array_Contains is not supported"),
        ("age > 1 and and", "line 1:12 mismatched input 'and'"),
        ("in > 1", "mismatched input 'in'"),
        ("random_sample(0.5)", "random_sample is not supported"),
        ("nosuch(age)", "function nosuch is not supported"),
        ("age[0] == 1", "Int64 data type not supported accessed with []"),
        ("exists age", "only supportted on json field"),
        ("(age + 1) is null", "is null operations are only supported on fields"),
        ("age + 9223372036854775808 > 1", "out of range of Int64"),
        ("age > > 3", "mismatched input"),
        ("age ==", "unexpected end of expression"),
        ("age # 3", "token recognition error"),
        ("age = 3", "token recognition error"),
        ("(age > 3", "unexpected end of expression"),
    ],
)
def test_errors_are_milvus_invalid_parameter(expr: str, fragment: str) -> None:
    message = err(expr)
    assert fragment in message
    if not message.startswith("predicate"):
        assert message.startswith(f"cannot parse expression: {expr}, error: ")


def test_non_boolean_predicate_is_rejected() -> None:
    assert err("age") == "predicate is not a boolean expression: age, data type: Int64"
    assert err("age + 1") == "predicate is not a boolean expression: age + 1, data type: Int64"
    assert err("3") == "predicate is not a boolean expression: 3, data type: Int64"
