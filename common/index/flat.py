"""FLAT: exact search over the raw float32 rows, kept as a plain numpy array.

The rows are the whole index, so serialization is the array's bytes and loading is a
zero-copy view. Search uses the shared exact kernels, which are faster than a faiss
IndexFlat for large query batches and identical for small ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import VectorIndex, array_from, as_buffer, register
from .kernels import float_knn
from .metrics import COSINE, IP, L2, normalize_rows


@register
class FlatIndex(VectorIndex):
    kind = "flat"

    def __init__(self) -> None:
        self.vectors = np.empty((0, 0), dtype=np.float32)
        self.norms: np.ndarray | None = None

    @classmethod
    def build(cls, index_type: str, metric: str, params: dict[str, Any], x: np.ndarray, dtype: int) -> FlatIndex:
        """``x`` is float32 (n, dim); COSINE rows are stored normalised."""
        idx = cls()
        idx.index_type, idx.engine, idx.metric_type = index_type, "FLAT", metric
        idx.dim, idx.count, idx.dtype = int(x.shape[1]), int(x.shape[0]), dtype
        idx.build_params = dict(params)
        idx.vectors = normalize_rows(x) if metric == COSINE else np.ascontiguousarray(x, dtype=np.float32)
        idx._prepare()
        return idx

    def _prepare(self) -> None:
        self.norms = np.einsum("ij,ij->i", self.vectors, self.vectors) if self.metric_type == L2 else None

    def _knn(
        self, q: np.ndarray, k: int, params: dict[str, Any], valid: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        return float_knn(self.vectors, q, k, self.metric_type in (IP, COSINE), valid, self.norms)

    def _payload(self) -> tuple[dict[str, Any], dict[str, bytes | memoryview]]:
        return {}, {"vectors": as_buffer(self.vectors)}

    @classmethod
    def _restore(cls, header: dict[str, Any], blobs: dict[str, memoryview]) -> FlatIndex:
        idx = cls()
        idx._init_common(header)
        idx.vectors = array_from(blobs["vectors"], np.float32, (idx.count, idx.dim))
        idx._prepare()
        return idx

    def memory_bytes(self) -> int:
        extra = self.norms.nbytes if self.norms is not None else 0
        return int(self.vectors.nbytes + extra)
