"""BM25 corpus statistics of a shard, gathered from its segments for each full text search.

A BM25 score needs, besides the row's own term counts, the corpus it was drawn from: how many
rows, their average token count (``avgdl``) and, per query term, how many rows hold it (its IDF).
Milvus keeps these per shard in the delegator's IDF oracle, fed by each segment's BM25 stats
log; Quiver's shard leader asks its segments at search time instead (its own growing and sealed
ones, and each worker for the sealed ones it serves), so a segment added, moved or compacted
away is counted exactly when it is searched. A segment keeps its term counts once computed
(:class:`TermCounts`); a growing one extends them by the rows appended since. Every row of a
segment counts, deleted or not, as in Milvus.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from common.bm25 import CorpusStats
from common.index import SparseRows

if TYPE_CHECKING:
    from services.querynode.segment import Segment


class TermCounts:
    """Rows, tokens and per-term row counts over the first ``covered`` rows of a BM25 column."""

    def __init__(self) -> None:
        self.covered = 0
        self.tokens = 0.0
        self.terms = np.empty(0, dtype=np.uint32)
        self.df = np.empty(0, dtype=np.int64)
        self._lock = threading.Lock()

    def extend(self, column: np.ndarray, n: int) -> None:
        with self._lock:
            if n <= self.covered:
                return
            csr = SparseRows.from_rows(column[self.covered:n])
            new_terms, counts = np.unique(csr.indices, return_counts=True)
            terms = np.concatenate([self.terms, new_terms])
            df = np.concatenate([self.df, counts.astype(np.int64)])
            merged, inverse = np.unique(terms, return_inverse=True)
            self.terms = merged.astype(np.uint32)
            self.df = np.bincount(inverse, weights=df, minlength=len(merged)).astype(np.int64)
            self.tokens += float(csr.values.astype(np.float64).sum())
            self.covered = n

    def nbytes(self) -> int:
        return int(self.terms.nbytes + self.df.nbytes)

    def stats(self, terms: Sequence[int]) -> CorpusStats:
        asked = np.asarray(terms, dtype=np.int64)
        pos = np.searchsorted(self.terms, asked)
        inside = pos < len(self.terms)
        found = np.zeros(len(asked), dtype=bool)
        found[inside] = self.terms[pos[inside]] == asked[inside]
        df = {int(t): int(self.df[p]) for t, p, ok in zip(asked, pos, found, strict=True) if ok}
        return CorpusStats(self.covered, self.tokens, df)


def segment_stats(seg: Segment, field: str, terms: Sequence[int]) -> CorpusStats:
    """``field``'s statistics over every row of ``seg`` (its term counts cached on the segment)."""
    cols, n = seg.store.snapshot()
    column = cols.get(field)
    if column is None or n == 0:
        return CorpusStats()
    counts = seg.bm25_counts.get(field)
    if counts is None:
        counts = seg.bm25_counts.setdefault(field, TermCounts())
    counts.extend(column, n)
    return counts.stats(terms)


def shard_stats(segments: Sequence[Segment], field: str, terms: Sequence[int]) -> CorpusStats:
    total = CorpusStats()
    for seg in segments:
        total.add(segment_stats(seg, field, terms))
    return total
