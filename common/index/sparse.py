"""Sparse float vectors: SPARSE_INVERTED_INDEX / SPARSE_WAND (IP) and their exact search.

Rows arrive as dicts {dimension: weight}; they are converted once to CSR arrays and, for
the index, to posting lists sorted by dimension. A query gathers the postings of its
dimensions with vectorised slicing and sums the products with ``np.bincount``, so the cost
is proportional to the postings touched, with no Python loop over rows. Only rows sharing
at least one dimension with the query are results, as in Milvus. SPARSE_WAND is served by
the same exact scorer (WAND is a pruning strategy; results are the same or better). With the
BM25 metric the rows are term frequencies and each posting's value is saturated by the row's
length before the sum (common/index/bm25.py); the query weights are then the terms' IDFs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from common.errors import invalid

from .base import VectorIndex, array_from, as_buffer, register
from .bm25 import Bm25Params, row_lengths
from .kernels import empty_result, slice_positions, topk_rows


@dataclass
class SparseRows:
    """CSR rows: row r holds ``indices[indptr[r]:indptr[r+1]]`` with ``values`` alongside."""

    indptr: np.ndarray  # int64 (n + 1,)
    indices: np.ndarray  # uint32 (nnz,)
    values: np.ndarray  # float32 (nnz,)

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @classmethod
    def from_rows(cls, rows: Any) -> SparseRows:
        """From an iterable of dicts (the column layout), or pass a SparseRows through."""
        if isinstance(rows, SparseRows):
            return rows
        if isinstance(rows, Mapping):
            rows = [rows]
        dicts = list(rows)
        lengths = np.fromiter((len(d) for d in dicts), dtype=np.int64, count=len(dicts))
        nnz = int(lengths.sum())
        try:
            indices = np.fromiter(chain.from_iterable(d.keys() for d in dicts), dtype=np.int64, count=nnz)
            values = np.fromiter(chain.from_iterable(d.values() for d in dicts), dtype=np.float32, count=nnz)
        except (AttributeError, TypeError, ValueError):
            raise invalid("sparse float vectors must be dicts of {dimension: value}") from None
        if nnz and (indices.min() < 0 or indices.max() >= 2**32 - 1):
            raise invalid("sparse vector index must be in range [0, 4294967295)")
        indptr = np.zeros(len(dicts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        return cls(indptr, indices.astype(np.uint32), values)

    def row(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.indptr[r], self.indptr[r + 1]
        return self.indices[lo:hi], self.values[lo:hi]

    def row_ids(self) -> np.ndarray:
        """The row of every stored entry."""
        return np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.indptr))


class Postings:
    """Rows grouped by dimension: ``rows/vals[starts[t]:starts[t+1]]`` for ``terms[t]``."""

    def __init__(self, terms: np.ndarray, starts: np.ndarray, rows: np.ndarray, vals: np.ndarray) -> None:
        self.terms, self.starts, self.rows, self.vals = terms, starts, rows, vals
        self._row_len: np.ndarray | None = None

    def row_len(self, n: int) -> np.ndarray:
        """Each row's token count (BM25's document length), computed once."""
        if self._row_len is None or len(self._row_len) != n:
            self._row_len = row_lengths(self.rows, self.vals, n)
        return self._row_len

    @classmethod
    def build(cls, csr: SparseRows, drop_ratio: float = 0.0) -> Postings:
        rows, idx, vals = csr.row_ids(), csr.indices, csr.values
        if drop_ratio > 0 and len(vals):
            keep = np.abs(vals) >= np.quantile(np.abs(vals), drop_ratio)
            rows, idx, vals = rows[keep], idx[keep], vals[keep]
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        terms, first = np.unique(sorted_idx, return_index=True)
        starts = np.append(first, len(sorted_idx)).astype(np.int64)
        return cls(terms.astype(np.uint32), starts, rows[order].astype(np.int64), vals[order].astype(np.float32))

    def score(
        self, q_idx: np.ndarray, q_val: np.ndarray, n: int, bm25: Bm25Params | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores float64 (n,), touched bool (n,)) of one query against every row; ``bm25``: score
        the postings as term frequencies (the query values being the terms' IDFs)."""
        pos = np.searchsorted(self.terms, q_idx)
        hit = pos < len(self.terms)
        hit[hit] = self.terms[pos[hit]] == q_idx[hit]
        pos, weights = pos[hit], q_val[hit]
        starts = self.starts[pos]
        lengths = self.starts[pos + 1] - starts
        gather = slice_positions(starts, lengths)
        rows = self.rows[gather]
        vals = self.vals[gather]
        if bm25 is not None:
            contrib = bm25.saturate(vals, self.row_len(n)[rows]) * np.repeat(weights.astype(np.float64), lengths)
        else:
            contrib = vals.astype(np.float64) * np.repeat(weights, lengths)
        return np.bincount(rows, weights=contrib, minlength=n), np.bincount(rows, minlength=n) > 0


def _drop_query(q_idx: np.ndarray, q_val: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    if ratio <= 0 or len(q_val) == 0:
        return q_idx, q_val
    ndrop = int(len(q_val) * ratio)
    keep = np.argsort(np.abs(q_val), kind="stable")[ndrop:]
    return q_idx[keep], q_val[keep]


def sparse_knn(
    postings: Postings, n: int, queries: SparseRows, k: int, valid: np.ndarray | None, drop_ratio: float = 0.0,
    bm25: Bm25Params | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product or BM25 (descending); rows sharing no dimension are not results."""
    nq = len(queries)
    dist, labels = empty_result(nq, k, False)
    for qi in range(nq):
        q_idx, q_val = _drop_query(*queries.row(qi), drop_ratio)
        scores, touched = postings.score(q_idx, q_val, n, bm25)
        if valid is not None:
            touched &= valid
        masked = np.where(touched, scores, -np.inf).astype(np.float32)[None, :]
        d, i = topk_rows(masked, k, ascending=False)
        dist[qi], labels[qi] = d[0], i[0]
    return dist, labels


@register
class SparseIndex(VectorIndex):
    kind = "sparse"

    def __init__(self) -> None:
        self.postings = Postings(
            np.empty(0, np.uint32), np.zeros(1, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
        )

    @classmethod
    def build(
        cls,
        index_type: str,
        engine: str,
        metric: str,
        params: dict[str, Any],
        rows: Any,
        dtype: int,
    ) -> SparseIndex:
        csr = SparseRows.from_rows(rows)
        idx = cls()
        idx.index_type, idx.engine, idx.metric_type = index_type, engine, metric
        idx.count, idx.dtype, idx.build_params = len(csr), dtype, dict(params)
        idx.dim = int(csr.indices.max()) + 1 if len(csr.indices) else 0
        idx.postings = Postings.build(csr, float(params.get("drop_ratio_build", 0.0)))
        return idx

    def prepare_queries(self, queries: Any) -> SparseRows:
        return SparseRows.from_rows(queries)

    def _knn(
        self, q: SparseRows, k: int, params: dict[str, Any], valid: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        bm25 = Bm25Params.of(params, self.build_params) if self.metric_type == "BM25" else None
        return sparse_knn(self.postings, self.count, q, k, valid, float(params.get("drop_ratio_search", 0.0)), bm25)

    def _payload(self) -> tuple[dict[str, Any], dict[str, bytes | memoryview]]:
        p = self.postings
        return {}, {
            name: as_buffer(arr)
            for name, arr in (("terms", p.terms), ("starts", p.starts), ("rows", p.rows), ("vals", p.vals))
        }

    @classmethod
    def _restore(cls, header: dict[str, Any], blobs: dict[str, memoryview]) -> SparseIndex:
        idx = cls()
        idx._init_common(header)
        idx.postings = Postings(
            array_from(blobs["terms"], np.uint32),
            array_from(blobs["starts"], np.int64),
            array_from(blobs["rows"], np.int64),
            array_from(blobs["vals"], np.float32),
        )
        return idx

    def memory_bytes(self) -> int:
        p = self.postings
        return int(p.terms.nbytes + p.starts.nbytes + p.rows.nbytes + p.vals.nbytes)
