"""A segment as the querynode serves it: columns, MVCC timestamps, deletes, and vector indexes.

Rows are visible to a read at timestamp T when they were inserted at or before T, not
deleted at or before T, and not expired: the collection TTL (``collection.ttl.seconds``) hides
rows older than T less the TTL, and a TruncateCollection hides every row up to its cut-off.
A field added to the collection after rows were written reads, on those rows, as its default
or null (:meth:`Segment.adopt_schema`). Growing and sealed segments share this class; sealed ones may carry
a vector index per field (the others are searched exactly) and sorted scalar indexes that
selective filters use instead of a column scan. Both kinds keep, per text field that a
text_match / phrase_match filters, an inverted index built at the first such filter and extended
by the rows appended since at each later one (``text_indexes``, common/expr/textindex.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from common.collection_props import expire_ts, missing_column
from common.expr import Filter
from common.expr.textindex import TextIndexes
from common.index import VectorIndex, brute_force_search, metric_ascending
from common.index.unit_rows import UnitRows
from common.reduce import Hits, empty_hits
from common.schema import Schema
from services.querynode.columns import ColumnStore
from services.querynode.scalar_index import SortedIndex, indexed_filter

if TYPE_CHECKING:
    from services.querynode.bm25_stats import TermCounts

TS = "__ts"
DELETED = "__del"  # delete timestamp of the row, 0 when never deleted
GROWING_UNSORTED_ROWS = 4096  # a growing segment's rows a delete may scan before they join the pk order


@dataclass
class SearchSpec:
    field: str
    dtype: int
    metric: str
    queries: np.ndarray
    k: int
    params: dict[str, Any]
    filter: Filter | None
    output_fields: list[str]


@dataclass
class Segment:
    segment_id: int
    partition_id: int
    vchannel: str
    schema: Schema
    sealed: bool
    store: ColumnStore
    indexes: dict[str, VectorIndex] = field(default_factory=dict)
    scalar_indexes: dict[str, SortedIndex] = field(default_factory=dict)
    version: str = "growing"
    deltas_ts: int = 0  # a sealed copy: its delta logs hold every delete at or below this
    max_ts: int = 0
    min_ts: int = -1  # the oldest row's timestamp (-1: not computed yet), to skip the TTL mask cheaply
    has_deletes: bool = False  # a delete ts was ever set: reads scan the delete column only then
    # the primary keys sorted, with their row offsets (Milvus's pk-to-offset map): built at the
    # first delete, so a delete costs a binary search, not a scan of the pk column (a growing
    # segment's covers its rows up to some point; see _rows_with)
    _pk_order: tuple[np.ndarray, np.ndarray] | None = field(default=None, init=False, repr=False, compare=False)
    # per vector field searched with COSINE while unindexed: its rows normalised (common/index/unit_rows.py)
    _unit: dict[str, UnitRows] = field(default_factory=dict, init=False, repr=False, compare=False)
    # per text field filtered with text_match / phrase_match: its inverted index, extended as rows
    # arrive (common/expr/textindex.py)
    text_indexes: TextIndexes = field(default_factory=TextIndexes, init=False, repr=False, compare=False)
    # per BM25 output field: its term counts, for the shard's corpus statistics (bm25_stats.py)
    bm25_counts: dict[str, TermCounts] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.store.n:
            self._fill_missing(self.schema)

    def adopt_schema(self, schema: Schema) -> None:
        """Serve with ``schema`` from now on (a DDL changed it): fields added since these rows were
        written get their column, the default or nulls. The caller keeps appends out meanwhile."""
        self._fill_missing(schema)
        self.schema = schema

    def _fill_missing(self, schema: Schema) -> None:
        cols, n = self.store.snapshot()
        for f in schema.fields:
            if f.name in cols:
                continue
            values, valid = missing_column(f, n)
            self.store.add_column(f.name, values)
            if valid is not None and f"{f.name}.valid" not in cols:
                self.store.add_column(f"{f.name}.valid", valid)

    @property
    def pk_name(self) -> str:
        return self.schema.primary.name

    @property
    def num_rows(self) -> int:
        return self.store.n

    def append(self, columns: dict[str, np.ndarray], ts: int, n: int) -> None:
        cols = dict(columns)
        for f in self.schema.fields:  # a message written before a field was added lacks it
            if f.name not in cols:
                values, valid = missing_column(f, n)
                cols[f.name] = values
                if valid is not None:
                    cols[f"{f.name}.valid"] = valid
            elif f.nullable and f"{f.name}.valid" not in cols:
                cols[f"{f.name}.valid"] = np.ones(n, dtype=np.bool_)
        cols[TS] = np.full(n, ts, dtype=np.int64)
        cols[DELETED] = np.zeros(n, dtype=np.int64)
        self.store.append(cols, n)
        self.max_ts = max(self.max_ts, ts)
        if n and (self.min_ts < 0 or ts < self.min_ts):
            self.min_ts = ts

    def apply_delete(self, pks: np.ndarray, ts: int) -> int:
        """Mark rows with these pks inserted before ``ts``; keeps the earliest such delete."""
        cols, n = self.store.snapshot()
        if n == 0 or len(pks) == 0:
            return 0
        rows = self._rows_with(cols[self.pk_name][:n], np.asarray(pks))
        deleted = cols[DELETED][rows]
        rows = rows[(cols[TS][rows] < ts) & ((deleted == 0) | (deleted > ts))]
        if rows.size == 0:
            return 0
        self.has_deletes = True  # before the values: a read that sees them also scans them
        self.store.set_values(DELETED, rows, ts)
        return int(rows.size)

    def _rows_with(self, column: np.ndarray, pks: np.ndarray) -> np.ndarray:
        """Offsets of the rows whose primary key is one of ``pks`` (each row once).

        Rows covered by ``_pk_order`` are found by binary search; a growing segment's rows appended
        since (at most ``_unsorted_limit`` of them) by a scan, and folded into the order once more
        arrive: the sorted part is one run, so the stable sort merges instead of sorting it again.
        """
        if (pks.dtype.kind in "iu") != (column.dtype.kind in "iu"):
            return np.empty(0, dtype=np.int64)  # an int key never matches a string PK (nor the reverse)
        n = len(column)
        covered = 0 if self._pk_order is None else len(self._pk_order[1])
        if covered > n:  # not this column's order (cannot happen for an append-only column)
            self._pk_order, covered = None, 0
        if n - covered > self._unsorted_limit(covered):
            self._pk_order, covered = self._extend_order(column, covered), n
        rows = self._sorted_rows(pks) if covered else np.empty(0, dtype=np.int64)
        if covered < n:
            rows = np.concatenate([rows, covered + np.flatnonzero(np.isin(column[covered:], pks))])
        return rows

    def _unsorted_limit(self, covered: int) -> int:
        """Rows past the pk order a delete may scan: none for sealed segments (their column never
        changes), for growing ones a few thousand or an eighth of the sorted rows, whichever is more
        (so the order is rebuilt O(log n) times over the segment's life)."""
        return 0 if self.sealed else max(GROWING_UNSORTED_ROWS, covered // 8)

    def _extend_order(self, column: np.ndarray, covered: int) -> tuple[np.ndarray, np.ndarray]:
        if self._pk_order is None or covered == 0:
            order = np.argsort(column, kind="stable")
            return column[order], order
        keys, order = self._pk_order
        merged_keys = np.concatenate([keys, column[covered:]])
        merged_order = np.concatenate([order, np.arange(covered, len(column), dtype=order.dtype)])
        perm = np.argsort(merged_keys, kind="stable")  # timsort: the sorted prefix is one run
        return merged_keys[perm], merged_order[perm]

    def _sorted_rows(self, pks: np.ndarray) -> np.ndarray:
        """Rows of ``pks`` among those ``_pk_order`` covers, by binary search."""
        assert self._pk_order is not None
        keys, order = self._pk_order
        want = np.unique(pks)
        if not len(keys) or want[-1] < keys[0] or want[0] > keys[-1]:
            return np.empty(0, dtype=np.int64)  # all outside the segment's key range
        lo = np.searchsorted(keys, want, "left")
        counts = np.searchsorted(keys, want, "right") - lo
        total = int(counts.sum())
        if total == 0:
            return np.empty(0, dtype=np.int64)
        # the rows of key i are order[lo[i] : lo[i] + counts[i]]: one gather for all keys
        starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
        return order[starts + np.arange(total)]

    def inherit_deletes(self, old: Segment) -> bool:
        """Take over the deletes ``old`` (another copy of the same segment: same binlogs, same row
        order) has applied, the earliest delete of each row winning. False if the copies differ."""
        new_cols, n = self.store.snapshot()
        old_cols, m = old.store.snapshot()
        if n != m or not np.array_equal(new_cols[self.pk_name][:n], old_cols[old.pk_name][:m]):
            return False
        theirs, mine = old_cols[DELETED][:n], new_cols[DELETED][:n]
        take = np.flatnonzero((theirs != 0) & ((mine == 0) | (theirs < mine)))
        if take.size:
            self.has_deletes = True
            self.store.set_values(DELETED, take, theirs[take])
        return True

    def visible(self, cols: dict[str, np.ndarray], n: int, query_ts: int, flt: Filter | None) -> np.ndarray | None:
        """Mask of rows a read at ``query_ts`` sees (None: all rows, the fast path)."""
        mask: np.ndarray | None = None
        if self.max_ts > query_ts:
            mask = cols[TS][:n] <= query_ts
        if self.has_deletes:  # a 100k-row column scan per search otherwise
            deleted = cols[DELETED][:n]
            if deleted.any():
                alive = (deleted == 0) | (deleted > query_ts)
                mask = alive if mask is None else mask & alive
        fresh = self._unexpired(cols, n, query_ts)
        if fresh is not None:
            mask = fresh if mask is None else mask & fresh
        if flt is not None:
            text = self.text_indexes.lookup(cols, n)
            fmask = indexed_filter(flt, self.scalar_indexes, cols, n, text) if self.scalar_indexes else None
            if fmask is None:
                fmask = flt.evaluate({k: v[:n] for k, v in cols.items() if k in flt.fields}, n, text)
            mask = fmask if mask is None else mask & fmask
        return mask

    def _unexpired(self, cols: dict[str, np.ndarray], n: int, query_ts: int) -> np.ndarray | None:
        """Rows the TTL or a truncate has not removed for a read at ``query_ts`` (None: all)."""
        if not self.schema.properties:
            return None
        cut = expire_ts(self.schema.props, query_ts)
        if cut <= 0:
            return None
        if self.min_ts < 0:
            self.min_ts = int(cols[TS][:n].min()) if n else 0
        if self.min_ts >= cut:
            return None
        return np.asarray(cols[TS][:n] >= cut)

    def search(self, spec: SearchSpec, query_ts: int) -> tuple[Hits, np.ndarray]:
        """Top-k of this segment: hits (without output fields) and the row offsets behind them."""
        cols, n = self.store.snapshot()
        nq = spec.queries.shape[0]
        ascending = metric_ascending(spec.metric)
        if n == 0:
            return empty_hits(nq, spec.k, _pk_dtype(cols.get(self.pk_name)), ascending), np.full((nq, spec.k), -1)
        mask = self.visible(cols, n, query_ts, spec.filter)
        present = cols.get(f"{spec.field}.valid")  # a nullable vector field: a null row is never a hit
        if present is not None and not present[:n].all():
            mask = present[:n] if mask is None else mask & present[:n]
        if mask is not None and not mask.any():
            return empty_hits(nq, spec.k, cols[self.pk_name].dtype, ascending), np.full((nq, spec.k), -1)
        index = self.indexes.get(spec.field)
        if index is not None:
            scores, offsets = index.search(spec.queries, spec.k, spec.params, valid=mask)
        else:
            unit = None
            if spec.metric.upper() == "COSINE":
                unit = self._unit.get(spec.field) or self._unit.setdefault(spec.field, UnitRows())
            scores, offsets = brute_force_search(
                cols[spec.field][:n], spec.queries, spec.metric, spec.k, spec.dtype, valid=mask, params=spec.params,
                unit_rows=unit,
            )
        filled = offsets >= 0
        safe = np.where(filled, offsets, 0)
        pks = cols[self.pk_name][:n][safe]
        return Hits(scores.astype(np.float32, copy=False), pks, filled), np.where(filled, offsets, -1)

    def take(self, offsets: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
        """Output columns at row ``offsets`` (-1 rows get the first row's value as filler)."""
        cols, n = self.store.snapshot()
        safe = np.where(offsets >= 0, offsets, 0)
        out = {}
        for name in names:
            if name in cols and n > 0:
                out[name] = cols[name][:n][safe]
        return out

    def retrieve(self, flt: Filter | None, query_ts: int, names: list[str], limit: int | None) -> dict[str, np.ndarray]:
        """Rows matching ``flt`` (pk and ``names``), at most ``limit`` smallest pks."""
        cols, n = self.store.snapshot()
        if n == 0:
            return {}
        mask = self.visible(cols, n, query_ts, flt)
        idx = np.arange(n) if mask is None else np.flatnonzero(mask)
        if limit is not None and len(idx) > limit:
            pks = cols[self.pk_name][:n][idx]
            part = np.argpartition(pks, limit - 1)[:limit] if pks.dtype != object else np.argsort(pks)[:limit]
            idx = idx[part]
        wanted = [self.pk_name] + [x for x in names if x != self.pk_name]
        return {name: cols[name][:n][idx] for name in wanted if name in cols}

    def count(self, flt: Filter | None, query_ts: int) -> int:
        cols, n = self.store.snapshot()
        if n == 0:
            return 0
        mask = self.visible(cols, n, query_ts, flt)
        return n if mask is None else int(mask.sum())

    def memory_bytes(self) -> int:
        indexes = list(self.indexes.values()) + list(self.scalar_indexes.values())
        pk_order = sum(int(a.nbytes) for a in self._pk_order) if self._pk_order is not None else 0
        unit = sum(u.nbytes() for u in list(self._unit.values()))
        text = self.text_indexes.nbytes() + sum(c.nbytes() for c in list(self.bm25_counts.values()))
        return self.store.nbytes() + sum(i.memory_bytes() for i in indexes) + pk_order + unit + text


def _pk_dtype(pks: np.ndarray | None) -> np.dtype:
    return pks.dtype if pks is not None else np.dtype(np.int64)
