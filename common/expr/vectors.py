"""Vectorised numpy kernels for typed columns: comparison, arithmetic, membership.

Integer comparisons never go through float64: an int64 column compared with a Python int is
compared as int64 (or answered outright when the constant lies outside the int64 range),
and a non-integral float bound is compared as a float, which cannot change the answer.
Integer ``/`` and ``%`` truncate toward zero as in Milvus (C++/Go semantics); rows divided
by a zero column value are reported through the ``invalid`` mask.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

import numpy as np

from common.expr.literals import INT64_MAX, INT64_MIN

OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_SMALL_SET = 8


def compare(op: str, left: np.ndarray, right: Any) -> np.ndarray:
    """``left op right`` for a typed array and a Python scalar or a second typed array."""
    if isinstance(right, np.ndarray):
        return np.asarray(OPS[op](left, right), dtype=bool)
    if isinstance(right, (int, float)) and not isinstance(right, bool):
        if left.dtype.kind in "iu":
            return _int_compare(op, left, right)
        if isinstance(right, int) and left.dtype.kind == "f" and abs(right) > 2**1000:
            right = float("inf") if right > 0 else float("-inf")  # beyond any finite double
    return np.asarray(OPS[op](left, right), dtype=bool)


def _int_compare(op: str, left: np.ndarray, value: int | float) -> np.ndarray:
    if isinstance(value, float):
        if value != value:  # NaN compares unequal to everything
            return np.full(len(left), op == "!=")
        if not value.is_integer():
            return np.asarray(OPS[op](left, value), dtype=bool)
        value = int(value)
    if value > INT64_MAX or value < INT64_MIN:
        above = value > INT64_MAX  # the constant is above every row
        truth = {"==": False, "!=": True, "<": above, "<=": above, ">": not above, ">=": not above}
        return np.full(len(left), truth[op])
    return np.asarray(OPS[op](left, np.int64(value)), dtype=bool)


def arith(op: str, left: Any, right: Any, integer: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """``left op right`` (arrays or Python scalars, at least one array) and the rows made
    invalid by an integer division by zero (None when there are none)."""
    dtype = np.int64 if integer and op != "**" else np.float64
    a = np.asarray(left, dtype=dtype) if isinstance(left, np.ndarray) else left
    b = np.asarray(right, dtype=dtype) if isinstance(right, np.ndarray) else right
    with np.errstate(all="ignore"):
        if op == "+":
            return np.asarray(a + b), None
        if op == "-":
            return np.asarray(a - b), None
        if op == "*":
            return np.asarray(a * b), None
        if op == "**":
            return np.power(np.asarray(a, np.float64), b), None
        if not integer:
            if op == "/":
                return np.asarray(np.true_divide(a, b)), None
            return np.asarray(np.fmod(a, b)), None
        zero = (b == 0) if isinstance(b, np.ndarray) else None
        safe = np.where(zero, 1, b) if zero is not None else b
        rem = np.fmod(a, safe)
        if op == "%":
            return np.asarray(rem), (zero if zero is not None and zero.any() else None)
        quotient = (a - rem) // safe
        return np.asarray(quotient), (zero if zero is not None and zero.any() else None)


def isin(data: np.ndarray, values: Sequence[Any]) -> np.ndarray:
    """Membership of typed ``data`` rows in ``values`` (already cast to the column's kind)."""
    n = len(data)
    if not values:
        return np.zeros(n, dtype=bool)
    kind = data.dtype.kind
    if kind in "iu":
        ints = [v for v in values if INT64_MIN <= v <= INT64_MAX]
        return np.isin(data, np.array(ints, dtype=np.int64)) if ints else np.zeros(n, dtype=bool)
    if kind in "fb":
        return np.isin(data, np.array(values, dtype=data.dtype))
    if len(values) <= _SMALL_SET:
        out = np.zeros(n, dtype=bool)
        for value in values:
            out |= np.asarray(data == value, dtype=bool)
        return out
    lookup = frozenset(values)
    return np.fromiter(map(lookup.__contains__, data), dtype=bool, count=n)


def _array_rows(rows: np.ndarray, valid: np.ndarray | None) -> list[Any]:
    if valid is None:
        return [() if r is None else r for r in rows]
    return [r if ok and r is not None else () for r, ok in zip(rows, valid, strict=True)]


def row_lengths(rows: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """The element count of each row of an Array column (0 for null rows)."""
    return np.fromiter(map(len, _array_rows(rows, valid)), dtype=np.int64, count=len(rows))


def flat_rows(rows: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The elements of an Array column laid end to end, and each row's start offset
    (``n + 1`` offsets; null rows are empty)."""
    items = _array_rows(rows, valid)
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, items), dtype=np.int64, count=len(rows)), out=offsets[1:])
    parts = [np.asarray(r) for r in items if len(r)]
    flat = np.concatenate(parts) if parts else np.zeros(0)
    return flat, offsets


def rows_with(hits: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per row of a flattened Array column: does any of its elements have ``hits`` set."""
    counts = np.zeros(len(hits) + 1, dtype=np.int64)
    np.cumsum(hits, out=counts[1:])
    return np.asarray(counts[offsets[1:]] - counts[offsets[:-1]] > 0)


def to_rows(values: np.ndarray) -> list[Any] | np.ndarray:
    """Python values for row-by-row code: object arrays as they are, others via tolist."""
    return values if values.dtype == object else values.tolist()


def map_rows(fn: Callable[..., Any], *columns: Any, n: int, op: str | None = None) -> np.ndarray:
    """Apply ``fn`` row by row (with ``op`` as the first argument when given), into bools."""
    args = (repeat(op, n), *columns) if op is not None else columns
    return np.fromiter(map(fn, *args), dtype=bool, count=n)
