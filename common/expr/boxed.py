"""Per-row operations on "boxed" values: JSON paths, Array elements and arithmetic on them.

JSON documents have no column type, so these comparisons run row by row in Python (the
one place the evaluator is not vectorised). Milvus's JSON semantics: a missing key or a
value of another type makes every comparison false except ``!=``, which is true; numbers
compare by value whether int or double (exactly, as Python does); bools are not numbers;
JSON null counts as missing.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

import numpy as np

from common.expr.nodes import MISSING
from common.expr.rules import trunc_div, trunc_mod
from common.expr.vectors import OPS

_NUMBER = (int, float)


def boxes(values: Iterable[Any], n: int) -> np.ndarray:
    """An object array of ``n`` values (lists stay elements, never a second dimension)."""
    return np.fromiter(values, dtype=object, count=n)


def type_tag(value: Any) -> str | None:
    """The JSON type class of a value: n(umber), s(tring), b(ool), l(ist), or None."""
    if isinstance(value, bool):
        return "b"
    if isinstance(value, _NUMBER):
        return "n"
    if isinstance(value, str):
        return "s"
    if isinstance(value, (list, tuple)):
        return "l"
    return None


def value_key(value: Any) -> Hashable | None:
    """A hashable key equal for equal JSON values (1 == 1.0, True != 1); None if unhashable."""
    tag = type_tag(value)
    if tag is None:
        return None
    if tag == "l":
        keys = tuple(value_key(v) for v in value)
        return None if None in keys else ("l", keys)
    return (tag, value)


def compare(op: str, a: Any, b: Any) -> bool:
    """``a op b`` with Milvus's JSON rules (see the module docstring)."""
    ta, tb = type_tag(a), type_tag(b)
    if ta is None or ta != tb:
        return op == "!="
    if ta == "l":
        if op not in ("==", "!="):
            return False
        return (value_key(a) == value_key(b)) == (op == "==")
    return bool(OPS[op](a, b))


def compare_to(op: str, const: Any) -> Callable[[Any], bool]:
    """A fast one-argument form of :func:`compare` against a constant right side."""
    tag = type_tag(const)
    fn = OPS[op]
    mismatch = op == "!="
    if tag == "n":
        return lambda v: fn(v, const) if type(v) in (int, float) else mismatch
    if tag == "s":
        return lambda v: fn(v, const) if type(v) is str else mismatch
    return lambda v: compare(op, v, const)


def member_of(values: Iterable[Any]) -> Callable[[Any], bool]:
    """A predicate: is the row value equal to one of ``values``."""
    numbers: set[Any] = set()
    strings: set[str] = set()
    others: set[Hashable] = set()
    for value in values:
        tag = type_tag(value)
        if tag == "n":
            numbers.add(value)
        elif tag == "s":
            strings.add(value)
        elif (key := value_key(value)) is not None:
            others.add(key)

    def member(v: Any) -> bool:
        t = type(v)
        if t is int or t is float:
            return v in numbers
        if t is str:
            return v in strings
        return bool(others) and value_key(v) in others

    return member


def get_path(value: Any, path: tuple[str | int, ...]) -> Any:
    """Follow a JSON pointer-like path; MISSING when a step does not exist or ends in null."""
    for step in path:
        if isinstance(value, dict):
            value = value.get(step if isinstance(step, str) else str(step), MISSING)
        elif isinstance(value, (list, np.ndarray)):
            index = step if isinstance(step, int) else (int(step) if step.isdigit() else -1)
            if not 0 <= index < len(value):
                return MISSING
            value = value[index]
        else:
            return MISSING
    if isinstance(value, np.generic):
        return value.item()
    return MISSING if value is None else value


def extract(column: np.ndarray, path: tuple[str | int, ...]) -> np.ndarray:
    """``get_path`` over a column of documents (or of arrays), as a boxed object array."""
    n = len(column)
    if len(path) == 1 and isinstance(path[0], str):
        key = path[0]
        raw = (d.get(key) if isinstance(d, dict) else None for d in column)
        return boxes((MISSING if v is None else v for v in raw), n)
    return boxes((get_path(v, path) for v in column), n)


def unbox_column(column: np.ndarray) -> np.ndarray:
    """A whole JSON column as boxed values (null documents become MISSING)."""
    return boxes((MISSING if v is None else v for v in column), len(column))


def length(value: Any) -> Any:
    return len(value) if isinstance(value, (list, np.ndarray)) else MISSING


def arith(op: str, a: Any, b: Any) -> Any:
    """``a op b`` on two boxed values; MISSING unless both are numbers (not bools)."""
    if type(a) not in (int, float) or type(b) not in (int, float):
        return MISSING
    both_int = type(a) is int and type(b) is int
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return trunc_div(a, b) if both_int else a / b
        if op == "%":
            return trunc_mod(a, b) if both_int else MISSING
        return float(a) ** float(b)
    except (ZeroDivisionError, OverflowError):
        return MISSING


def negate(value: Any) -> Any:
    return -value if type(value) in (int, float) else MISSING


def contains(row: Any, keys: set[Hashable], mode: str) -> bool:
    """json_contains{,_all,_any}: does the list ``row`` hold one/all/any of ``keys``."""
    if not isinstance(row, (list, np.ndarray)):
        return False
    have = {value_key(v) for v in (row.tolist() if isinstance(row, np.ndarray) else row)}
    if mode == "all":
        return keys <= have
    return not keys.isdisjoint(have)


def dedupe(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """Values without repeats, in first-seen order (1 and True are different values)."""
    if all(type(v) is int for v in values) or all(type(v) is str for v in values):
        return tuple(dict.fromkeys(values))
    seen: set[Hashable | None] = set()
    out: list[Any] = []
    for value in values:
        key = value_key(value)
        if key is not None and key in seen:
            continue
        seen.add(key)
        out.append(value)
    return tuple(out)
