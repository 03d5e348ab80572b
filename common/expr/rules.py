"""Type rules of the filter language, shared by the builder (checks, constant folding).

Milvus's rules (planparserv2 utils/operators): numbers compare with numbers, strings with
strings, bools with bools, and JSON with anything; integer ``/`` and ``%`` truncate toward
zero like Go; ``%`` needs integers; ``**`` always yields a double. Kept in one place so the
builder's checks and its constant folding agree.
"""

from __future__ import annotations

import math
from typing import Any

from common.expr.nodes import NUMERIC, Column, Const, Kind, Node

OP_NAMES = {
    "+": "add",
    "-": "subtract",
    "*": "multiply",
    "/": "divide",
    "%": "modulo",
    "**": "power",
}
REVERSED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


_PLAIN = {Kind.INT: int, Kind.FLOAT: float, Kind.STRING: str, Kind.BOOL: bool}


class ExprError(ValueError):
    """A semantic error in an expression; compile_filter wraps it in Milvus's message."""


def comparable(left: Node, right: Node) -> bool:
    """Whether Milvus lets ``left`` and ``right`` be compared."""
    lk, rk = left.kind, right.kind
    if Kind.JSON in (lk, rk):
        return True
    if lk is Kind.ARRAY or rk is Kind.ARRAY:
        return _array_comparable(left, right)
    if lk in NUMERIC:
        return rk in NUMERIC
    if lk is Kind.LIST:
        return rk is Kind.LIST
    return lk is rk


def _array_comparable(left: Node, right: Node) -> bool:
    array, other = (left, right) if left.kind is Kind.ARRAY else (right, left)
    assert isinstance(array, Column) and array.elem is not None
    if isinstance(other, Column) and other.kind is Kind.ARRAY:
        return other.elem is not None and _kinds_comparable(array.elem, other.elem)
    if isinstance(other, Const) and other.kind is Kind.LIST:
        return all(_value_fits(v, array.elem) for v in other.value)
    return False


def _kinds_comparable(a: Kind, b: Kind) -> bool:
    return (a in NUMERIC and b in NUMERIC) or a is b or Kind.JSON in (a, b)


def _value_fits(value: Any, kind: Kind) -> bool:
    if kind is Kind.JSON:
        return True
    if isinstance(value, bool):
        return kind is Kind.BOOL
    if isinstance(value, (int, float)):
        return kind in NUMERIC
    if isinstance(value, str):
        return kind is Kind.STRING
    return False


def cast_values(values: tuple[Any, ...], kind: Kind, label: str) -> tuple[Any, ...]:
    """List values for a term/contains on a ``kind`` operand, cast like Milvus's castValue.

    Values of the wrong type are an error; floats that cannot equal any integer are dropped
    for an integer operand (they can never match), integral floats become ints.
    """
    plain = _PLAIN.get(kind)
    if kind is Kind.JSON or all(type(v) is plain for v in values):
        return values
    out: list[Any] = []
    for value in values:
        if not _value_fits(value, kind):
            raise ExprError(f"value '{_show(value)}' in list cannot be casted to {label}")
        if kind is Kind.INT and isinstance(value, float):
            if value.is_integer():
                out.append(int(value))
            continue
        out.append(float(value) if kind is Kind.FLOAT else value)
    return tuple(out)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(list(value)) if isinstance(value, tuple) else str(value)


def arith_kind(op: str, left: Node, right: Node) -> tuple[Kind, str]:
    """Result kind and label of ``left op right``, or ExprError when Milvus forbids it."""
    name = OP_NAMES[op]
    for side in (left, right):
        if side.kind not in NUMERIC and side.kind is not Kind.JSON:
            raise ExprError(f"'{name}' can only be applied on numeric fields, got: {side.label}")
    if op == "%" and Kind.FLOAT in (left.kind, right.kind):
        raise ExprError("modulo can only apply on integer")
    if Kind.JSON in (left.kind, right.kind):
        return Kind.JSON, "JSON"
    if op == "**" or Kind.FLOAT in (left.kind, right.kind):
        return Kind.FLOAT, "Double"
    return Kind.INT, "Int64"


def check_divisor(op: str, divisor: Any) -> None:
    if op == "/" and divisor == 0:
        raise ExprError("cannot divide by zero")
    if op == "%" and divisor == 0:
        raise ExprError("cannot modulo by zero")


def trunc_div(a: int, b: int) -> int:
    """Go/C integer division: the quotient truncated toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def trunc_mod(a: int, b: int) -> int:
    """Go/C remainder: takes the sign of the dividend."""
    return a - b * trunc_div(a, b)


def fold_arith(op: str, a: Any, b: Any) -> Any:
    """Evaluate ``a op b`` on two numeric constants."""
    check_divisor(op, b)
    both_int = isinstance(a, int) and isinstance(b, int)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return trunc_div(a, b) if both_int else a / b
    if op == "%":
        return trunc_mod(a, b)
    try:
        return math.pow(float(a), float(b))
    except (OverflowError, ValueError, ZeroDivisionError) as exc:
        raise ExprError(f"invalid power {a} ** {b}: {exc}") from None


def fold_compare(op: str, a: Any, b: Any) -> bool:
    """Evaluate ``a op b`` on two comparable constants."""
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if isinstance(a, tuple) or isinstance(b, tuple):
        raise ExprError(f"operator {op} cannot compare arrays")
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)
