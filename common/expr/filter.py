"""compile_filter and Filter: the public face of the expression package.

A Filter is compiled once per request (parse trees are cached per expression string) and
then evaluated on any number of column batches: growing segments, sealed segments, query
results. ``pk_values`` lets delete-by-expression skip the query when the expression only
names primary keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
from lark import Tree
from lark.exceptions import VisitError

from common.errors import MilvusError, invalid
from common.expr.builder import Builder
from common.expr.evaluator import Evaluator
from common.expr.grammar import SyntaxProblem, parse
from common.expr.lists import cut_lists
from common.expr.nodes import Column, Compare, Const, InList, Kind, Node, Or, Path
from common.expr.rules import ExprError
from common.expr.textindex import TextLookup
from common.schema import Schema
from common.timestamptz import FILTER_TIMEZONE_KEY, TIMEZONE_KEY, check_timezone


@lru_cache(maxsize=2048)
def _parse_cached(text: str) -> Tree:
    return parse(text)


class Filter:
    """A compiled boolean filter over a collection's columns."""

    def __init__(self, expr: str, root: Node | None, primary: str | None) -> None:
        self.expr = expr
        self._root = root
        self._primary = primary
        self.fields: frozenset[str] = frozenset(_needed_columns(root)) if root is not None else frozenset()

    @property
    def root(self) -> Node | None:
        """The typed node tree (None for the empty expression, which matches every row)."""
        return self._root

    def evaluate(self, columns: Mapping[str, np.ndarray], n: int, text: TextLookup | None = None) -> np.ndarray:
        """The bool mask of the ``n`` rows in ``columns`` that satisfy the expression.

        ``text`` answers text_match / phrase_match for these rows from cached text indexes (a
        segment's ``TextIndexes.lookup``); without it they analyze every row of the batch."""
        if self._root is None:
            return np.ones(n, dtype=bool)
        if n == 0:
            return np.zeros(0, dtype=bool)
        mask, _ = Evaluator(columns, n, text).truth(self._root)
        return mask

    def pk_values(self) -> list[int] | list[str] | None:
        """The primary keys named when the expression is only ``pk in [..]`` / ``pk == v``
        terms joined by ``or`` (deduplicated, in order); None for any other expression."""
        if self._root is None or self._primary is None:
            return None
        items = self._root.items if isinstance(self._root, Or) else (self._root,)
        found: list[Any] = []
        for item in items:
            if isinstance(item, InList) and not item.negate and self._is_pk(item.operand):
                found.extend(item.values)
            elif (
                isinstance(item, Compare)
                and item.op == "=="
                and self._is_pk(item.left)
                and isinstance(item.right, Const)
            ):
                found.append(item.right.value)
            else:
                return None
        if any(type(v) is float for v in found):  # an Int64 key can only equal integral floats
            found = [_as_int(v) for v in found if type(v) is not float or v.is_integer()]
        return list(dict.fromkeys(found))

    def _is_pk(self, node: Node) -> bool:
        return isinstance(node, Column) and node.name == self._primary

    def __repr__(self) -> str:
        return f"Filter({self.expr!r})"


def compile_filter(expr: str, schema: Schema, params: Mapping[str, Any] | None = None) -> Filter:
    """Parse, resolve and type-check ``expr`` against ``schema`` (``{name}`` templates are
    filled from ``params``). Raises MilvusError(PARAMETER_INVALID) with Milvus's message."""
    text = expr or ""
    if params and FILTER_TIMEZONE_KEY in params:  # the request's time zone for ISO literals
        params = dict(params)
        zone = check_timezone(str(params.pop(FILTER_TIMEZONE_KEY)))
        schema = schema.with_properties(schema.props | {TIMEZONE_KEY: zone})
    primary = _primary_name(schema)
    if not text.strip():
        return Filter(text, None, primary)
    short, lists = cut_lists(text)
    try:
        tree = _parse_cached(short)
    except SyntaxProblem as exc:
        raise invalid(f"cannot parse expression: {text}, error: {_syntax(text, exc, lists)}") from None
    try:
        root = Builder(schema, params, lists).transform(tree)
    except VisitError as exc:
        orig = exc.orig_exc
        if isinstance(orig, ExprError):
            raise invalid(f"cannot parse expression: {text}, error: {orig}") from None
        if isinstance(orig, MilvusError):
            raise orig from None
        raise
    if root is None:
        return Filter(text, None, primary)
    if root.kind is not Kind.BOOL:
        raise invalid(f"predicate is not a boolean expression: {text}, data type: {root.label}")
    return Filter(text, root, primary)


def _as_int(value: Any) -> Any:
    return int(value) if type(value) is float else value


def _syntax(text: str, problem: SyntaxProblem, lists: Mapping[str, Any]) -> SyntaxProblem:
    """The syntax problem with positions in the text the user wrote (lists cut or not)."""
    if lists:
        try:
            parse(text)
        except SyntaxProblem as original:
            return original
    return problem


def _primary_name(schema: Schema) -> str | None:
    try:
        return str(schema.primary.name)
    except (AttributeError, MilvusError, StopIteration, LookupError):
        return None


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for field in dataclasses.fields(node):
        value = getattr(node, field.name)
        if isinstance(value, Node):
            yield from _walk(value)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, Node):
                    yield from _walk(item)


def _needed_columns(root: Node) -> Iterator[str]:
    for node in _walk(root):
        column = node.column if isinstance(node, Path) else node
        if isinstance(column, Column):
            yield column.name
            if column.nullable:
                yield column.name + ".valid"
