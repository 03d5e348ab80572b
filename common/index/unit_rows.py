"""Rows normalised once, for COSINE searches without an index: scores equal to the indexes'.

The COSINE indexes store rows normalised (``normalize_rows``) and score a query by the inner
product with them. Brute force used to scale each raw row's inner product by 1/|x| instead, which
saves a copy but rounds differently: a segment's scores moved by an ulp when its index replaced
brute force, and a search iterator paging by the last score could see a hit twice. With the rows
normalised the same way (and, for a few queries, faiss's same per-row kernel) the scores are the
same bits on both sides. An unindexed segment keeps its normalised rows here, extended as it grows
(capacity doubles, so an append costs its own rows only).
"""

from __future__ import annotations

import threading

import numpy as np

from .metrics import normalize_rows


class UnitRows:
    def __init__(self) -> None:
        self._rows = np.empty((0, 0), dtype=np.float32)
        self._count = 0
        self._lock = threading.Lock()

    def rows(self, x: np.ndarray) -> np.ndarray:
        """``x`` (float32 (n, dim), whose first rows never change) normalised row by row."""
        n = x.shape[0]
        with self._lock:
            if n > self._count:
                if n > self._rows.shape[0] or self._rows.shape[1] != x.shape[1]:
                    grown = np.empty((max(n, 2 * self._rows.shape[0]), x.shape[1]), dtype=np.float32)
                    if self._rows.shape[1] == x.shape[1]:
                        grown[: self._count] = self._rows[: self._count]
                    else:
                        self._count = 0
                    self._rows = grown
                self._rows[self._count : n] = normalize_rows(x[self._count : n])
                self._count = n
            return self._rows[:n]

    def nbytes(self) -> int:
        return int(self._rows.nbytes)
