"""The function-call forms of the filter language: the contains family and array_length.

Milvus spells these in lower or upper case (``json_contains`` / ``JSON_CONTAINS``); calls
Quiver does not implement (random_sample, the ST_* spatial functions...) are rejected here with
a clear message rather than a parse error. text_match and phrase_match have grammar rules of
their own (textcalls.py).
"""

from __future__ import annotations

from typing import Any

from common.expr.boxed import dedupe
from common.expr.nodes import Column, Const, Contains, Kind, Length, Node, Path, show
from common.expr.rules import ExprError, cast_values

_CONTAINS = {
    "json_contains": "one",
    "array_contains": "one",
    "json_contains_all": "all",
    "array_contains_all": "all",
    "json_contains_any": "any",
    "array_contains_any": "any",
}
_UNSUPPORTED = {
    "random_sample",
    "element_filter",
    "match_all",
    "match_any",
    "match_least",
    "match_most",
    "match_exact",
}


def build_call(name: str, args: list[Node]) -> Node:
    """The node for ``name(args...)``."""
    lowered = name.lower()
    if lowered in _CONTAINS and name in (lowered, lowered.upper()):
        return _contains(lowered, args)
    if lowered == "array_length" and name in (lowered, lowered.upper()):
        return _length(args)
    if lowered in _UNSUPPORTED or lowered.startswith("st_"):
        raise ExprError(f"{lowered} is not supported by Quiver yet")
    raise ExprError(f"function {name} is not supported")


def _contains(name: str, args: list[Node]) -> Node:
    mode = _CONTAINS[name]
    what = {"one": "contains", "all": "contains_all", "any": "contains_any"}[mode]
    if len(args) != 2:
        raise ExprError(f"{name} takes 2 arguments, got {len(args)}")
    operand, value = args
    is_json = operand.kind is Kind.JSON and isinstance(operand, (Column, Path))
    if not is_json and not (isinstance(operand, Column) and operand.kind is Kind.ARRAY):
        raise ExprError(
            f"{what} operation are only supported on json or array fields now, got: {show(operand)}"
        )
    if not isinstance(value, Const):
        raise ExprError(
            f"{what} operation are only supported explicitly specified element, got: {show(value)}"
        )
    if mode == "one":
        values: tuple[Any, ...] = (value.value,)
    elif value.kind is Kind.LIST:
        values = value.value
    else:
        raise ExprError(f"{what} operation element must be an array, got: {show(value)}")
    if isinstance(operand, Column) and operand.kind is Kind.ARRAY:
        assert operand.elem is not None
        values = cast_values(values, operand.elem, operand.elem_label)
    return Contains(Kind.BOOL, "Bool", operand, dedupe(values), mode)


def _length(args: list[Node]) -> Node:
    if len(args) != 1:
        raise ExprError(f"array_length takes 1 argument, got {len(args)}")
    operand = args[0]
    if not (
        (isinstance(operand, Column) and operand.kind in (Kind.ARRAY, Kind.JSON))
        or (isinstance(operand, Path) and operand.kind is Kind.JSON)
    ):
        raise ExprError(
            f"array_length operation are only supported on json or array fields now, got: {show(operand)}"
        )
    assert isinstance(operand, (Column, Path))
    return Length(Kind.INT, "Int64", operand)
