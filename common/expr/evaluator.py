"""Evaluates a typed node tree over a batch of columns, producing a row mask.

Predicates use SQL three-valued logic for nullable fields: each yields ``(true, valid)``
where ``true`` is False on every null row, so ``not``/``and``/``or`` can tell "false" from
"unknown" and a comparison with a null is never selected, even under ``not``. JSON keys
that are missing are not null: they just make comparisons false (``!=`` true), as in Milvus.
Typed data stays in numpy; boxed values (see nodes.py) go row by row through boxed.py.
text_match / phrase_match are answered by the caller's text lookup (a segment's cached text
indexes, textindex.py) or, without one, by analyzing the batch's rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from common import timestamptz
from common.errors import Code, MilvusError
from common.expr import boxed, like, textindex, vectors
from common.expr.nodes import (
    MISSING,
    And,
    Arith,
    Column,
    Compare,
    Const,
    Contains,
    Exists,
    InList,
    Kind,
    Length,
    Like,
    Negate,
    Node,
    Not,
    NullTest,
    Or,
    Path,
    TextPredicate,
    TimeShift,
)
from common.expr.textindex import TextLookup

Mask = np.ndarray
Truth = tuple[Mask, Mask | None]  # (rows known true, rows known — None means all)


@dataclass
class Vec:
    """A column-shaped value: typed numpy data (or boxed objects) and its null mask."""

    data: np.ndarray
    valid: Mask | None = None


@dataclass(frozen=True)
class Scalar:
    value: Any


Operand = Vec | Scalar


def _both(a: Mask | None, b: Mask | None) -> Mask | None:
    if a is None:
        return b
    return a if b is None else a & b


def _valid_of(*operands: Operand) -> Mask | None:
    valid: Mask | None = None
    for op in operands:
        if isinstance(op, Vec):
            valid = _both(valid, op.valid)
    return valid


def _truth(mask: Mask, valid: Mask | None) -> Truth:
    return (mask if valid is None else mask & valid), valid


class Evaluator:
    """One evaluation of one filter over one batch; caches values shared by range halves."""

    def __init__(self, columns: Mapping[str, np.ndarray], n: int, text: TextLookup | None = None) -> None:
        self._columns = columns
        self._n = n
        self._text = text  # text_match / phrase_match answers from the segment's text indexes
        self._cache: dict[int, Operand] = {}

    # ------------------------------------------------------------ values

    def value(self, node: Node) -> Operand:
        key = id(node)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._value(node)
        return hit

    def _value(self, node: Node) -> Operand:
        if isinstance(node, Const):
            return Scalar(node.value)
        if isinstance(node, Column):
            vec = self._read(node)
            if node.kind is Kind.JSON:
                return Vec(boxed.unbox_column(vec.data), vec.valid)
            if node.kind is Kind.STRING and vec.valid is not None:
                return Vec(np.where(vec.valid, vec.data, ""), vec.valid)
            return vec
        if isinstance(node, Path):
            vec = self._read(node.column)
            if node.column.kind is Kind.ARRAY:
                return Vec(self._element(vec, node.path[0]), vec.valid)
            return Vec(boxed.extract(vec.data, node.path), vec.valid)
        if isinstance(node, Arith):
            return self._arith(node)
        if isinstance(node, TimeShift):
            vec = self._vec(node.operand)
            return Vec(timestamptz.shift(vec.data, node.years, node.months, node.seconds), vec.valid)
        if isinstance(node, Negate):
            vec = self._vec(node.operand)
            if node.boxed:
                return Vec(boxed.boxes(map(boxed.negate, vec.data), self._n), vec.valid)
            data = vec.data.astype(np.int64) if node.kind is Kind.INT else vec.data
            return Vec(-data, vec.valid)
        if isinstance(node, Length):
            return self._length(node)
        mask, valid = self.truth(node)  # a predicate used as a Bool value: (a > 1) == flag
        return Vec(mask, valid)

    def _vec(self, node: Node) -> Vec:
        out = self.value(node)
        assert isinstance(out, Vec)
        return out

    def _read(self, column: Column) -> Vec:
        try:
            data = np.asarray(self._columns[column.name])
        except KeyError:
            raise MilvusError(Code.SERVICE_INTERNAL, f"filter input lacks column {column.name}") from None
        if len(data) != self._n:
            raise MilvusError(
                Code.SERVICE_INTERNAL, f"column {column.name} has {len(data)} rows, expected {self._n}"
            )
        valid = self._columns.get(column.name + ".valid") if column.nullable else None
        return Vec(data, None if valid is None else np.asarray(valid, dtype=bool))

    def _element(self, vec: Vec, index: Any) -> np.ndarray:
        """Element ``index`` of every row of an Array column, boxed (MISSING if too short)."""
        flat, offsets = vectors.flat_rows(vec.data, vec.valid)
        out = np.full(self._n, MISSING, dtype=object)
        if not isinstance(index, int) or index < 0:
            return out
        has = np.diff(offsets) > index
        if has.any():
            picked = flat[offsets[:-1][has] + index].tolist()
            out[has] = boxed.boxes(picked, len(picked))
        return out

    def _arith(self, node: Arith) -> Vec:
        left, right = self.value(node.left), self.value(node.right)
        valid = _valid_of(left, right)
        if node.boxed:
            lhs, rhs = (self._rows(node.left, x) for x in (left, right))
            fn = partial(boxed.arith, node.op)
            return Vec(boxed.boxes(map(fn, lhs, rhs), self._n), valid)
        a = left.data if isinstance(left, Vec) else left.value
        b = right.data if isinstance(right, Vec) else right.value
        data, invalid = vectors.arith(node.op, a, b, node.kind is Kind.INT)
        if invalid is not None:
            valid = _both(valid, ~invalid)
        return Vec(data, valid)

    def _length(self, node: Length) -> Vec:
        vec = self._read(node.operand.column if isinstance(node.operand, Path) else node.operand)
        if node.operand.kind is Kind.ARRAY:
            return Vec(vectors.row_lengths(vec.data, vec.valid), vec.valid)
        data = self._vec(node.operand).data
        return Vec(boxed.boxes(map(boxed.length, data), self._n), vec.valid)

    def _rows(self, node: Node, operand: Operand) -> Any:
        """Row-by-row Python values of an operand (a repeated constant for a Scalar)."""
        if isinstance(operand, Scalar):
            return [operand.value] * self._n
        if node.kind is Kind.ARRAY:
            return [r.tolist() if isinstance(r, np.ndarray) else r for r in operand.data]
        return vectors.to_rows(operand.data)

    # ------------------------------------------------------------ predicates

    def truth(self, node: Node) -> Truth:
        n = self._n
        if isinstance(node, Const):
            return np.full(n, bool(node.value)), None
        if isinstance(node, And):
            return self._and(node.items)
        if isinstance(node, Or):
            return self._or(node.items)
        if isinstance(node, Not):
            mask, valid = self.truth(node.operand)
            return (~mask if valid is None else valid & ~mask), valid
        if isinstance(node, Compare):
            return self._compare(node)
        if isinstance(node, InList):
            return self._in(node)
        if isinstance(node, Like):
            return self._like(node)
        if isinstance(node, NullTest):
            return self._null_test(node)
        if isinstance(node, Exists):
            return self._present(node.operand), None
        if isinstance(node, Contains):
            return self._contains(node)
        if isinstance(node, TextPredicate):
            if self._text is not None:
                return self._text(node)
            return textindex.scan(node, self._columns, n)
        vec = self._vec(node)  # a bare Bool field or Bool array element
        if node.boxed:
            return _truth(vectors.map_rows(lambda v: v is True, vec.data, n=n), vec.valid)
        return _truth(np.array(vec.data, dtype=bool), vec.valid)  # a copy, never the column

    def _and(self, items: tuple[Node, ...]) -> Truth:
        mask, valid = self.truth(items[0])
        for item in items[1:]:
            if valid is None and not mask.any():
                break  # already false everywhere: skip the rest
            m, v = self.truth(item)
            if valid is None and v is None:
                mask = mask & m
                continue
            false = (~mask if valid is None else valid & ~mask) | (~m if v is None else v & ~m)
            mask = mask & m
            valid = mask | false
        return mask, valid

    def _or(self, items: tuple[Node, ...]) -> Truth:
        mask, valid = self.truth(items[0])
        for item in items[1:]:
            if mask.all():
                break  # already true everywhere: skip the rest
            m, v = self.truth(item)
            if valid is None and v is None:
                mask = mask | m
                continue
            false = (~mask if valid is None else valid & ~mask) & (~m if v is None else v & ~m)
            mask = mask | m
            valid = mask | false
        return mask, valid

    def _compare(self, node: Compare) -> Truth:
        left, right = self.value(node.left), self.value(node.right)
        valid = _valid_of(left, right)
        assert isinstance(left, Vec)
        per_row = node.left.boxed or node.right.boxed or Kind.ARRAY in (node.left.kind, node.right.kind)
        if not per_row:
            other = right.data if isinstance(right, Vec) else right.value
            return _truth(vectors.compare(node.op, left.data, other), valid)
        lhs = self._rows(node.left, left)
        if isinstance(right, Scalar):
            return _truth(vectors.map_rows(boxed.compare_to(node.op, right.value), lhs, n=self._n), valid)
        rhs = self._rows(node.right, right)
        return _truth(vectors.map_rows(boxed.compare, lhs, rhs, n=self._n, op=node.op), valid)

    def _in(self, node: InList) -> Truth:
        vec = self._vec(node.operand)
        if node.operand.boxed or node.operand.kind is Kind.JSON:
            mask = vectors.map_rows(boxed.member_of(node.values), vec.data, n=self._n)
        else:
            mask = vectors.isin(vec.data, node.values)
        if node.negate:
            mask = ~mask
        return _truth(mask, vec.valid)

    def _like(self, node: Like) -> Truth:
        vec = self._vec(node.operand)
        match = like.matcher(node.pattern)
        if not node.operand.boxed and node.operand.kind is Kind.STRING:
            return _truth(match(vec.data), vec.valid)
        is_str = vectors.map_rows(lambda v: type(v) is str, vec.data, n=self._n)
        strings = np.where(is_str, vec.data, "")
        return _truth(match(strings) & is_str, vec.valid)

    def _present(self, node: Path) -> Mask:
        data = self._vec(node).data
        return vectors.map_rows(lambda v: v is not MISSING, data, n=self._n)

    def _null_test(self, node: NullTest) -> Truth:
        operand = node.operand
        if isinstance(operand, Path):
            present = self._present(operand)
            return (~present if node.is_null else present), None
        valid = self._read(operand).valid
        if valid is None:
            return np.full(self._n, not node.is_null), None
        return (~valid if node.is_null else valid.copy()), None

    def _contains(self, node: Contains) -> Truth:
        operand = node.operand
        if isinstance(operand, Column) and operand.kind is Kind.ARRAY:
            vec = self._read(operand)
            flat, offsets = vectors.flat_rows(vec.data, vec.valid)
            if node.mode == "all":
                mask = np.ones(self._n, dtype=bool)
                for value in node.values:
                    mask &= vectors.rows_with(vectors.isin(flat, [value]), offsets)
            else:
                mask = vectors.rows_with(vectors.isin(flat, node.values), offsets)
            return _truth(mask, vec.valid)
        vec = self._vec(operand)
        keys = {boxed.value_key(v) for v in node.values} - {None}
        fn = partial(boxed.contains, keys=keys, mode=node.mode)
        return _truth(vectors.map_rows(fn, vec.data, n=self._n), vec.valid)
