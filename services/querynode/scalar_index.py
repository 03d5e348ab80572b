"""Sorted scalar indexes of sealed segments, and the filter path that uses them.

A scalar index (STL_SORT, INVERTED, BITMAP, Trie, AUTOINDEX) on a numeric or string field
is kept here as the field's values in sorted order with their row offsets (argsort), built
when the sealed segment loads. A filter whose top level is a comparison or ``in`` list on
such a field — alone or as one term of an ``and`` — finds its rows with two binary searches
instead of scanning the column, and evaluates the other terms only on those rows. Answers
are exactly the scan's (same casts of the constant as the evaluator, nulls and NaN never
match). It pays only when few rows match (scattering many offsets into a mask costs more
than a vectorised scan), so above MAX_SHARE of the segment the caller scans as before.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from common.expr import Filter
from common.expr.nodes import And, Column, Compare, Const, InList, Kind, Node
from common.expr.textindex import TextLookup, restrict

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EXACT_FLOAT = 2**53  # beyond this, int-vs-float comparisons round; the index then declines
# Above these shares of a segment's rows matching, scanning is as fast as the index (measured on
# 200k rows: a numpy comparison scans ~0.1 ns/row, np.isin ~2.5 ns/row, strings ~8 ns/row, while
# each matching row costs the index ~0.5-1 ns to scatter into the mask).
MAX_SHARE = {"compare": 0.02, "in": 0.25, "string": 1.0}
_OPS = ("==", "<", "<=", ">", ">=")

Ranges = tuple[np.ndarray, np.ndarray]  # [lo, hi) positions in the sorted order


class SortedIndex:
    """One field of one sealed segment, sorted; null and NaN rows are left out."""

    def __init__(self, values: np.ndarray, valid: np.ndarray | None = None) -> None:
        keep = np.ones(len(values), dtype=bool) if valid is None else np.asarray(valid, dtype=bool).copy()
        kind = values.dtype.kind
        if kind == "f":
            keep &= ~np.isnan(values)
        rows = np.flatnonzero(keep)
        vals = values[rows] if len(rows) != len(values) else values
        if kind in "iu":
            vals = vals.astype(np.int64, copy=False)
        order = np.argsort(vals, kind="stable")
        self.sorted = vals[order]
        self.rows = rows[order].astype(np.int32 if len(values) < 2**31 else np.int64)
        self.kind = "i" if kind in "iu" else ("f" if kind == "f" else "s")
        self.exact = (
            self.kind != "i"
            or not len(self.sorted)
            or (int(self.sorted[0]) > -EXACT_FLOAT and int(self.sorted[-1]) < EXACT_FLOAT)
        )

    def memory_bytes(self) -> int:
        return int(self.rows.nbytes) + (int(self.sorted.nbytes) if self.kind != "s" else 8 * len(self.sorted))

    # --- lookups --------------------------------------------------------------------------
    def _cast(self, value: Any) -> tuple[str, Any] | None:
        """("value", v) in the sorted array's terms, ("all"/"none", None) for out of range, or None."""
        if isinstance(value, bool):
            return None
        if self.kind == "s":
            return ("value", value) if isinstance(value, str) else None
        if not isinstance(value, (int, float)):
            return None
        if self.kind == "f":
            if isinstance(value, int) and abs(value) > 2**1000:
                return None
            return "value", self.sorted.dtype.type(value)
        return "value", value  # int column: exact Python arithmetic, resolved per operator below

    def range_of(self, op: str, value: Any) -> Ranges | None:
        """Positions (in sorted order) of rows where ``row op value``, or None if not answerable."""
        cast = self._cast(value)
        if op not in _OPS or cast is None:
            return None
        v = cast[1]
        n = len(self.sorted)
        if self.kind == "i":
            if isinstance(v, float):
                if math.isnan(v) or not self.exact or abs(v) >= EXACT_FLOAT:
                    return None
                if not v.is_integer():  # x < 10.5 is x <= 10; x > 10.5 is x > 10; never equal
                    if op == "==":
                        return _one(0, 0)
                    op, v = ("<=" if op in ("<", "<=") else ">"), math.floor(v)
                v = int(v)
            if v > INT64_MAX or v < INT64_MIN:
                above = v > INT64_MAX
                everything = op in (("<", "<=") if above else (">", ">="))
                return _one(0, n if everything else 0)
            v = np.int64(v)
        if op == "==":
            return _one(int(np.searchsorted(self.sorted, v, "left")), int(np.searchsorted(self.sorted, v, "right")))
        if op in ("<", "<="):
            return _one(0, int(np.searchsorted(self.sorted, v, "left" if op == "<" else "right")))
        return _one(int(np.searchsorted(self.sorted, v, "right" if op == ">" else "left")), n)

    def ranges_in(self, values: tuple[Any, ...]) -> Ranges | None:
        """Positions of rows equal to any of ``values`` (already cast to the field's kind)."""
        if self.kind == "s":
            vals: Any = [v for v in values if isinstance(v, str)]
            if len(vals) != len(values):
                return None
            arr = np.empty(len(vals), dtype=object)
            arr[:] = vals
        elif self.kind == "i":
            if not self.exact or any(isinstance(v, bool) or not isinstance(v, int) for v in values):
                return None
            arr = np.array([v for v in values if INT64_MIN <= v <= INT64_MAX], dtype=np.int64)
        else:
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
                return None
            arr = np.array(values, dtype=self.sorted.dtype)
        arr = np.unique(arr)
        return np.searchsorted(self.sorted, arr, "left"), np.searchsorted(self.sorted, arr, "right")

    def rows_of(self, ranges: Ranges, ordered: bool = False) -> np.ndarray:
        """Row offsets covered by ``ranges`` (ascending when ``ordered``)."""
        lo, hi = ranges
        lens = hi - lo
        total = int(lens.sum())
        if total == 0:
            return np.empty(0, dtype=np.int64)
        if len(lo) == 1:
            out = self.rows[int(lo[0]) : int(hi[0])]
        else:
            starts = np.repeat(lo - np.concatenate(([0], np.cumsum(lens)[:-1])), lens)
            out = self.rows[starts + np.arange(total)]
        return np.sort(out) if ordered else out


def _one(lo: int, hi: int) -> Ranges:
    return np.array([lo], dtype=np.int64), np.array([max(lo, hi)], dtype=np.int64)


def _limit(idx: SortedIndex, item: Node) -> float:
    """The share of rows up to which the index beats a scan for this term."""
    if idx.kind == "s":
        return MAX_SHARE["string"]
    return MAX_SHARE["in"] if isinstance(item, InList) else MAX_SHARE["compare"]


def _lookup(item: Node, indexes: dict[str, SortedIndex]) -> tuple[SortedIndex, Ranges] | None:
    if isinstance(item, Compare) and isinstance(item.left, Column) and isinstance(item.right, Const):
        idx = indexes.get(item.left.name)
        if idx is None or item.left.kind not in (Kind.INT, Kind.FLOAT, Kind.STRING):
            return None
        found = idx.range_of(item.op, item.right.value)
    elif isinstance(item, InList) and not item.negate and isinstance(item.operand, Column):
        idx = indexes.get(item.operand.name)
        if idx is None or item.operand.kind not in (Kind.INT, Kind.FLOAT, Kind.STRING):
            return None
        found = idx.ranges_in(item.values)
    else:
        return None
    return None if found is None else (idx, found)


def indexed_filter(
    flt: Filter, indexes: dict[str, SortedIndex], cols: dict[str, np.ndarray], n: int,
    text: TextLookup | None = None,
) -> np.ndarray | None:
    """The filter's row mask through a sorted index, or None when a scan is the better way.

    Of the top-level ``and`` terms the index can answer, the most selective one is looked up
    (range terms on one field, such as ``a < x < b``, are intersected first); the remaining
    terms are evaluated on the rows it found only. A sorted index answers comparisons and
    ``in`` lists only: a text_match / phrase_match on an indexed field is one of the remaining
    terms, answered by ``text`` (the segment's text indexes, for the segment's first ``n`` rows).
    """
    root = flt.root
    if root is None or not indexes:
        return None
    items = root.items if isinstance(root, And) else (root,)
    found: dict[int, tuple[SortedIndex, Ranges]] = {}
    for pos, item in enumerate(items):
        hit = _lookup(item, indexes)
        if hit is not None:
            found[pos] = hit
    candidates: list[tuple[int, list[int], SortedIndex, Ranges]] = []  # (rows, term positions, index, ranges)
    by_index: dict[int, list[int]] = {}
    for pos, (idx, ranges) in found.items():
        if len(ranges[0]) == 1 and isinstance(items[pos], Compare):
            by_index.setdefault(id(idx), []).append(pos)
        else:
            candidates.append((_count(ranges), [pos], idx, ranges))
    for positions in by_index.values():
        idx = found[positions[0]][0]
        lo = max(int(found[p][1][0][0]) for p in positions)
        hi = min(int(found[p][1][1][0]) for p in positions)
        ranges = _one(lo, hi)
        candidates.append((_count(ranges), positions, idx, ranges))
    usable = [c for c in candidates if c[0] <= _limit(c[2], items[c[1][0]]) * n]
    if not usable:
        return None
    _, used, idx, ranges = min(usable, key=lambda c: c[0])
    rest = [item for i, item in enumerate(items) if i not in used]
    rows = idx.rows_of(ranges, ordered=bool(rest))  # gathering the other terms' columns in row order
    if rest and len(rows):
        node = rest[0] if len(rest) == 1 else And(Kind.BOOL, "Bool", tuple(rest))
        sub = Filter(flt.expr, node, None)
        gathered = {name: cols[name][:n][rows] for name in sub.fields if name in cols}
        rows = rows[sub.evaluate(gathered, len(rows), None if text is None else restrict(text, rows))]
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return mask


def _count(ranges: Ranges) -> int:
    return int((ranges[1] - ranges[0]).sum())
