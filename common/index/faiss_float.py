"""IVF_FLAT, IVF_SQ8, IVF_PQ and HNSW on dense float vectors, backed by faiss.

Filtering happens inside faiss through an IDSelectorBitmap. Where a filtered ANN search
cannot fill k results although enough rows qualify (a very selective filter starves IVF
probes or the HNSW graph walk), those queries are redone exhaustively: IVF with every list
probed, HNSW with an exact scan of its stored vectors, as knowhere's brute-force fallback
does. Segments too small to train on still index: nlist is clamped to the data (about 39
rows per list, faiss's minimum for k-means), and an IVF_PQ too small to train its codebooks
(fewer rows than 2^nbits) is kept exact instead.
"""

from __future__ import annotations

from typing import Any

import faiss as _faiss
import numpy as np

from .base import VectorIndex, as_buffer, register
from .kernels import Selector, finalize, set_threads
from .metrics import COSINE, IP, L2, normalize_rows

faiss: Any = _faiss  # the bundled stubs are incomplete (SearchParametersHNSW, hammings, ...)

MIN_POINTS_PER_LIST = 39
HNSW_BRUTE_FORCE_RATIO = 0.1  # below this fraction of valid rows, scan exactly instead of walking the graph


def _faiss_metric(metric: str) -> int:
    return faiss.METRIC_INNER_PRODUCT if metric in (IP, COSINE) else faiss.METRIC_L2


def effective_nlist(nlist: int, n: int) -> int:
    """nlist clamped so every list can get ~39 training points (at least one list)."""
    return max(1, min(int(nlist), n // MIN_POINTS_PER_LIST))


@register
class FaissFloatIndex(VectorIndex):
    kind = "faiss_float"

    def __init__(self) -> None:
        self.index: Any = None
        self.nlist = 0  # effective nlist for IVF engines (0 otherwise)
        self.exact = False  # IVF_PQ kept as a flat index because the segment is too small
        # unfiltered SearchParameters by _param_key: faiss only reads them, so searches share one
        self._plain_params: dict[Any, Any] = {}

    @classmethod
    def build(
        cls, index_type: str, engine: str, metric: str, params: dict[str, Any], x: np.ndarray, dtype: int,
        present: np.ndarray | None = None,
    ) -> FaissFloatIndex:
        """``x`` is float32 (n, dim); COSINE rows are normalised before indexing. ``present``: the
        rows that are not null (a nullable field's nulls are zero rows, never searched): an IVF
        index is trained on those only."""
        idx = cls()
        idx.index_type, idx.engine, idx.metric_type = index_type, engine, metric
        idx.dim, idx.count, idx.dtype = int(x.shape[1]), int(x.shape[0]), dtype
        idx.build_params = dict(params)
        data = normalize_rows(x) if metric == COSINE else np.ascontiguousarray(x, dtype=np.float32)
        n, d = data.shape
        train = data if present is None or present.all() or not present.any() else data[present]
        set_threads(None)
        index = idx._new_index(params, d, train, _faiss_metric(metric))
        if n:
            index.add(data)
        idx.index = index
        return idx

    def _new_index(self, params: dict[str, Any], d: int, train: np.ndarray, fm: int) -> Any:
        """The faiss index of ``self.engine``, trained on ``train`` but still empty; sets ``nlist`` /
        ``exact``. Engines built differently (faiss_quantized.py) replace only this."""
        index: Any
        engine = self.engine
        if engine == "HNSW":
            index = faiss.IndexHNSWFlat(d, int(params["M"]), fm)
            index.hnsw.efConstruction = int(params["efConstruction"])
        elif engine == "IVF_PQ" and len(train) < (1 << int(params.get("nbits", 8))):
            self.exact = True
            index = faiss.IndexFlat(d, fm)
        else:
            self.nlist = effective_nlist(int(params["nlist"]), len(train))
            quantizer = faiss.IndexFlat(d, fm)
            if engine == "IVF_FLAT":
                index = faiss.IndexIVFFlat(quantizer, d, self.nlist, fm)
            elif engine == "IVF_SQ8":
                index = faiss.IndexIVFScalarQuantizer(quantizer, d, self.nlist, faiss.ScalarQuantizer.QT_8bit, fm)
            elif engine == "IVF_PQ":
                index = faiss.IndexIVFPQ(quantizer, d, self.nlist, int(params["m"]), int(params["nbits"]), fm)
            else:
                raise ValueError(f"not a faiss float engine: {engine}")
            index.cp.min_points_per_centroid = 1  # nlist is already clamped; no stderr warning
            if engine == "IVF_PQ":
                index.pq.cp.min_points_per_centroid = 1
            index.own_fields = True
            quantizer.this.disown()
            if len(train):
                index.train(train)
        return index

    @property
    def is_ivf(self) -> bool:
        return self.engine.startswith("IVF") and not self.exact

    def _knn(
        self, q: np.ndarray, k: int, params: dict[str, Any], valid: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        nq = q.shape[0]
        set_threads(nq)
        n_valid = self.count if valid is None else int(np.count_nonzero(valid))
        selector = Selector(valid) if valid is not None else None
        if self.engine == "HNSW" and n_valid < HNSW_BRUTE_FORCE_RATIO * self.count:
            return self._exact(q, k, selector)
        dist, labels = self._search(self.index, q, k, self._params(params, selector))
        short = np.count_nonzero(labels >= 0, axis=1) < min(k, n_valid)
        if short.any() and not self.exact and (self.engine == "HNSW" or self.nlist > params.get("nprobe", 0)):
            rows = np.flatnonzero(short)
            if self.engine == "HNSW":
                d2, l2 = self._exact(q[rows], k, selector)
            else:
                full = dict(params, nprobe=self.nlist)
                d2, l2 = self._search(self.index, q[rows], k, self._params(full, selector))
            dist[rows], labels[rows] = d2, l2
        del selector
        return dist, labels

    def _params(self, params: dict[str, Any], selector: Selector | None) -> Any:
        if selector is None:
            key = self._param_key(params)
            sp = self._plain_params.get(key)
            if sp is None:
                if len(self._plain_params) >= 64:
                    self._plain_params.clear()
                sp = self._plain_params[key] = self._new_params(params, None)
            return sp
        return self._new_params(params, selector)

    def _param_key(self, params: dict[str, Any]) -> Any:
        """What tells apart the search parameters ``_new_params`` builds from ``params``."""
        return int(params.get("ef", 16)) if self.engine == "HNSW" else int(params.get("nprobe", 8))

    def _new_params(self, params: dict[str, Any], selector: Selector | None) -> Any:
        sp: Any
        if self.engine == "HNSW":
            sp = faiss.SearchParametersHNSW()
            sp.efSearch = int(params.get("ef", 16))
        elif self.is_ivf:
            sp = faiss.SearchParametersIVF()
            sp.nprobe = min(int(params.get("nprobe", 8)), self.nlist)
        else:
            sp = faiss.SearchParameters()
        if selector is not None:
            sp.sel = selector.sel
        return sp

    def _exact(self, q: np.ndarray, k: int, selector: Selector | None) -> tuple[np.ndarray, np.ndarray]:
        """Exact scan of an HNSW index's stored vectors (its storage is an IndexFlat)."""
        storage = faiss.downcast_index(self.index.storage)
        sp = faiss.SearchParameters()
        if selector is not None:
            sp.sel = selector.sel
        return self._search(storage, q, k, sp)

    def _search(self, index: Any, q: np.ndarray, k: int, sp: Any) -> tuple[np.ndarray, np.ndarray]:
        dist, labels = index.search(q, k, params=sp)
        return finalize(dist, labels, self.metric_type == L2)

    def _payload(self) -> tuple[dict[str, Any], dict[str, bytes | memoryview]]:
        blob = faiss.serialize_index(self.index)
        return {"nlist": self.nlist, "exact": self.exact}, {"faiss": as_buffer(blob)}

    @classmethod
    def _restore(cls, header: dict[str, Any], blobs: dict[str, memoryview]) -> FaissFloatIndex:
        idx = cls()
        idx._init_common(header)
        idx.nlist = int(header["meta"]["nlist"])
        idx.exact = bool(header["meta"]["exact"])
        idx.index = faiss.deserialize_index(np.frombuffer(blobs["faiss"], dtype=np.uint8))
        return idx

    def memory_bytes(self) -> int:
        n, d = self.count, self.dim
        if self.engine == "HNSW":
            m = int(self.build_params.get("M", 30))
            # raw vectors + level-0 links (2M) + upper levels (~M/(M-1) per row) + level table
            return int(n * (d * 4 + 2 * m * 4 + 4 * m // max(m - 1, 1) + 16))
        if self.exact:
            return n * d * 4
        centroids = self.nlist * d * 4
        if self.engine == "IVF_FLAT":
            return n * (d * 4 + 8) + centroids
        if self.engine == "IVF_SQ8":
            return n * (d + 8) + centroids + 2 * d * 4
        m, nbits = int(self.build_params["m"]), int(self.build_params["nbits"])
        return n * ((m * nbits + 7) // 8 + 8) + centroids + (1 << nbits) * d * 4
