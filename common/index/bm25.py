"""Okapi BM25 scoring of sparse term-frequency rows, as knowhere's BM25 metric scores them.

A BM25 function's output column holds, per row, ``{term hash: count}`` (common/bm25.py makes
them). A search sends the query's terms already weighted by their IDF (the querynode's shard
leader knows the corpus statistics), so what is left per (query term, row) pair is the
saturated term frequency::

    tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))

with ``dl`` the row's token count (the sum of its values) and ``avgdl`` the corpus average,
sent with the search as ``bm25_avgdl``. ``k1`` and ``b`` are the index's build parameters
(Milvus's defaults 1.2 and 0.75); an unindexed segment gets them from the search parameters
the proxy fills in from the field's index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_K1 = 1.2
DEFAULT_B = 0.75
DEFAULT_AVGDL = 100.0
PARAM_KEYS = ("bm25_k1", "bm25_b", "bm25_avgdl")


@dataclass(frozen=True)
class Bm25Params:
    k1: float
    b: float
    avgdl: float

    @classmethod
    def of(cls, *sources: Mapping[str, Any]) -> Bm25Params:
        """k1, b and avgdl from the first source that names each (defaults: Milvus's)."""

        def pick(key: str, default: float) -> float:
            for src in sources:
                if src.get(key) is not None:
                    return float(src[key])
            return default

        avgdl = pick("bm25_avgdl", DEFAULT_AVGDL)
        return cls(pick("bm25_k1", DEFAULT_K1), pick("bm25_b", DEFAULT_B), avgdl if avgdl > 0 else DEFAULT_AVGDL)

    def saturate(self, tf: np.ndarray, row_len: np.ndarray) -> np.ndarray:
        """The BM25 term weight of each (tf, row length) pair, float64."""
        tf64 = tf.astype(np.float64)
        norm = self.k1 * (1.0 - self.b + self.b * row_len.astype(np.float64) / self.avgdl)
        return tf64 * (self.k1 + 1.0) / (tf64 + norm)


def row_lengths(rows: np.ndarray, vals: np.ndarray, n: int) -> np.ndarray:
    """Each row's token count (sum of its term frequencies), from (row, value) postings."""
    return np.bincount(rows, weights=vals.astype(np.float64), minlength=n)
