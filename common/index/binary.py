"""BIN_FLAT, BIN_IVF_FLAT and HNSW on binary vectors (HAMMING and JACCARD; BIN_FLAT also
SUBSTRUCTURE and SUPERSTRUCTURE, exact match tests: see kernels.structure_knn).

faiss's binary IVF and HNSW ignore or reject ID selectors and know only hamming, so the
lists are kept here: faiss's binary k-means (IndexBinaryIVF.train) picks the centroids,
rows are stored grouped by list, and a query scores the rows of its ``nprobe`` nearest
lists with faiss's pairwise hamming (plus popcounts for jaccard) under the filter mask.
An exact scan of packed bits is so cheap (~0.1 ms per 100k 128-bit rows) that HNSW on
binary vectors is served by the exact scan: results are exact, never worse.
"""

from __future__ import annotations

from typing import Any

import faiss as _faiss
import numpy as np

from .base import VectorIndex, array_from, as_buffer, register
from .faiss_float import effective_nlist
from .kernels import binary_knn, empty_result, popcounts, set_threads, slice_positions, structure_knn
from .metrics import JACCARD, STRUCTURE_METRICS, SUPERSTRUCTURE

faiss: Any = _faiss  # the bundled stubs are incomplete (SearchParametersHNSW, hammings, ...)


@register
class BinaryIndex(VectorIndex):
    kind = "binary"

    def __init__(self) -> None:
        self.codes = np.empty((0, 0), dtype=np.uint8)  # IVF: grouped by list
        self.perm = np.empty(0, dtype=np.int64)  # IVF: build-order offset of each stored row
        self.list_starts = np.zeros(1, dtype=np.int64)  # IVF: nlist + 1 boundaries into codes
        self.centroids = np.empty((0, 0), dtype=np.uint8)
        self.nlist = 0
        self._flat: faiss.IndexBinaryFlat | None = None
        self._pop: np.ndarray | None = None
        self._quantizer: faiss.IndexBinaryFlat | None = None

    @classmethod
    def build(
        cls, index_type: str, engine: str, metric: str, params: dict[str, Any], codes: np.ndarray, dtype: int
    ) -> BinaryIndex:
        """``codes`` is packed uint8 (n, dim // 8)."""
        idx = cls()
        idx.index_type, idx.engine, idx.metric_type = index_type, engine, metric
        idx.dim, idx.count, idx.dtype = int(codes.shape[1]) * 8, int(codes.shape[0]), dtype
        idx.build_params = dict(params)
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        if engine == "BIN_IVF_FLAT" and idx.count:
            idx.nlist = effective_nlist(int(params["nlist"]), idx.count)
            set_threads(None)
            trainer = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(idx.dim), idx.dim, idx.nlist)
            trainer.train(codes)
            idx.centroids = (
                faiss.rev_swig_ptr(faiss.downcast_IndexBinary(trainer.quantizer).xb.data(), idx.nlist * codes.shape[1])
                .reshape(idx.nlist, -1)
                .copy()
            )
            idx._setup_quantizer()
            assert idx._quantizer is not None
            _, assign = idx._quantizer.search(codes, 1)
            lists = assign[:, 0]
            idx.perm = np.argsort(lists, kind="stable").astype(np.int64)
            idx.codes = np.ascontiguousarray(codes[idx.perm])
            idx.list_starts = np.concatenate([[0], np.cumsum(np.bincount(lists, minlength=idx.nlist))])
        else:
            idx.codes = codes
        idx._prepare()
        return idx

    def _setup_quantizer(self) -> None:
        self._quantizer = faiss.IndexBinaryFlat(self.dim)
        self._quantizer.add(self.centroids)

    def _prepare(self) -> None:
        if self.metric_type == JACCARD:
            self._pop = popcounts(self.codes)
        elif not self.nlist and self.metric_type not in STRUCTURE_METRICS:
            self._flat = faiss.IndexBinaryFlat(self.dim)
            if self.count:
                self._flat.add(self.codes)

    def _knn(
        self, q: np.ndarray, k: int, params: dict[str, Any], valid: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.metric_type in STRUCTURE_METRICS:  # BIN_FLAT only (the IVF spec refuses them)
            return structure_knn(self.codes, q, k, self.metric_type == SUPERSTRUCTURE, valid)
        jaccard = self.metric_type == JACCARD
        if not self.nlist:
            return binary_knn(self.codes, q, k, jaccard, valid, self._flat, self._pop)
        nprobe = min(int(params.get("nprobe", 8)), self.nlist)
        set_threads(q.shape[0])
        assert self._quantizer is not None
        _, probes = self._quantizer.search(q, nprobe)
        stored_valid = None if valid is None else valid[self.perm]
        n_valid = self.count if valid is None else int(np.count_nonzero(valid))
        dist, labels = empty_result(q.shape[0], k, True)
        for qi in range(q.shape[0]):
            d, i = self._scan_lists(q[qi : qi + 1], probes[qi], k, jaccard, stored_valid)
            if np.count_nonzero(i >= 0) < min(k, n_valid) and nprobe < self.nlist:
                d, i = self._scan_lists(q[qi : qi + 1], np.arange(self.nlist), k, jaccard, stored_valid)
            dist[qi], labels[qi] = d[0], i[0]
        return dist, labels

    def _scan_lists(
        self, q: np.ndarray, lists: np.ndarray, k: int, jaccard: bool, stored_valid: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        lists = lists[lists >= 0]
        starts, ends = self.list_starts[lists], self.list_starts[lists + 1]
        rows = slice_positions(starts, ends - starts)
        mask = None if stored_valid is None else stored_valid[rows]
        pop = None if self._pop is None else self._pop[rows]
        return binary_knn(
            np.ascontiguousarray(self.codes[rows]), q, k, jaccard, mask, code_pop=pop, row_ids=self.perm[rows]
        )

    def _payload(self) -> tuple[dict[str, Any], dict[str, bytes | memoryview]]:
        blobs: dict[str, bytes | memoryview] = {"codes": as_buffer(self.codes)}
        if self.nlist:
            blobs["perm"] = as_buffer(self.perm)
            blobs["list_starts"] = as_buffer(self.list_starts.astype(np.int64, copy=False))
            blobs["centroids"] = as_buffer(self.centroids)
        return {"nlist": self.nlist}, blobs

    @classmethod
    def _restore(cls, header: dict[str, Any], blobs: dict[str, memoryview]) -> BinaryIndex:
        idx = cls()
        idx._init_common(header)
        idx.nlist = int(header["meta"]["nlist"])
        width = idx.dim // 8
        idx.codes = array_from(blobs["codes"], np.uint8, (idx.count, width))
        if idx.nlist:
            idx.perm = array_from(blobs["perm"], np.int64)
            idx.list_starts = array_from(blobs["list_starts"], np.int64)
            idx.centroids = array_from(blobs["centroids"], np.uint8, (idx.nlist, width))
            idx._setup_quantizer()
        idx._prepare()
        return idx

    def memory_bytes(self) -> int:
        size = self.codes.nbytes * (2 if self._flat is not None else 1)
        size += self.perm.nbytes + self.list_starts.nbytes + self.centroids.nbytes
        return int(size + (self._pop.nbytes if self._pop is not None else 0))
