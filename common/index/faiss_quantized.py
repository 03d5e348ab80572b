"""IVF_RABITQ and SCANN: IVF indexes over compressed codes that re-rank with finer vectors.

Both follow knowhere's construction on faiss, so their knobs mean what they mean in Milvus:

- IVF_RABITQ: a random rotation, then IVF lists of 1-bit RaBitQ codes
  (``RR{d},IVF{nlist},RaBitQ``). ``rbq_bits_query`` quantises the query to that many bits (0: the
  query stays float). With ``refine=true`` and a ``refine_type`` (SQ6, SQ8, FP16, BF16, FP32/FLAT)
  a second copy of the vectors at that precision re-ranks ``refine_k`` x k candidates.
- SCANN: IVF lists of 4-bit product-quantisation codes scanned with faiss's SIMD fast-scan kernel,
  one sub-quantiser per ``sub_dim`` dimensions (``IVF{nlist},PQ{d/sub_dim}x4fs``), re-ranked
  against the raw vectors (``with_raw_data``, the default) over ``reorder_k`` candidates.

Filters, the exhaustive retry of starved filtered searches, small segments (nlist clamped; a
SCANN segment with fewer rows than its 16 codewords is kept exact) and serialization are the
IVF engine's (faiss_float.py); this module only builds the index and its search parameters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import register
from .faiss_float import FaissFloatIndex, effective_nlist, faiss
from .kernels import Selector

PQ_FAST_SCAN_BITS = 4
# knowhere's refine_type names -> faiss index_factory refine specs
_REFINE_FACTORY = {"SQ6": "SQ6", "SQ8": "SQ8", "FP16": "SQfp16", "BF16": "SQbf16", "FP32": "Flat", "FLAT": "Flat"}
_REFINE_BYTES_PER_DIM = {"SQ6": 0.75, "SQ8": 1.0, "FP16": 2.0, "BF16": 2.0, "FP32": 4.0, "FLAT": 4.0}


def _factory(engine: str, d: int, nlist: int, params: dict[str, Any]) -> str:
    if engine == "IVF_RABITQ":
        spec = f"RR{d},IVF{nlist},RaBitQ"
        refine = params.get("refine_type") if params.get("refine") else None
        return f"{spec},Refine({_REFINE_FACTORY[refine]})" if refine else spec
    if engine == "SCANN":
        spec = f"IVF{nlist},PQ{d // int(params['sub_dim'])}x{PQ_FAST_SCAN_BITS}fs"
        return f"{spec},RFlat" if params.get("with_raw_data", True) else spec
    raise ValueError(f"not a quantised IVF engine: {engine}")


@register
class QuantizedIvfIndex(FaissFloatIndex):
    kind = "faiss_quantized_ivf"

    def _new_index(self, params: dict[str, Any], d: int, train: np.ndarray, fm: int) -> Any:
        if self.engine == "SCANN" and len(train) < (1 << PQ_FAST_SCAN_BITS):
            self.exact = True
            return faiss.IndexFlat(d, fm)
        self.nlist = effective_nlist(int(params["nlist"]), len(train))
        index = faiss.index_factory(d, _factory(self.engine, d, self.nlist, params), fm)
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
        ivf.cp.min_points_per_centroid = 1  # nlist is already clamped; no stderr warning
        if self.engine == "SCANN":
            ivf.pq.cp.min_points_per_centroid = 1
        if len(train):
            index.train(train)
        return index

    @property
    def is_ivf(self) -> bool:
        return not self.exact

    @property
    def refined(self) -> bool:
        """Whether candidates are re-ranked against a second copy of the vectors."""
        if self.engine == "SCANN":
            return bool(self.build_params.get("with_raw_data", True))
        return bool(self.build_params.get("refine")) and self.build_params.get("refine_type") is not None

    def _knn(
        self, q: np.ndarray, k: int, params: dict[str, Any], valid: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.engine == "SCANN":  # reorder_k candidates re-ranked: faiss's k_factor
            params = dict(params, refine_k=max(1.0, int(params.get("reorder_k") or k) / k))
        return super()._knn(q, k, params, valid)

    def _param_key(self, params: dict[str, Any]) -> Any:
        return (int(params.get("nprobe", 8)), int(params.get("rbq_bits_query", 0)), float(params.get("refine_k", 1)))

    def _new_params(self, params: dict[str, Any], selector: Selector | None) -> Any:
        if self.exact:
            return super()._new_params(params, selector)
        base: Any
        if self.engine == "IVF_RABITQ":
            ivf = faiss.IVFRaBitQSearchParameters()
            ivf.qb = int(params.get("rbq_bits_query", 0))
            base = faiss.SearchParametersPreTransform()  # the rotation in front of the IVF index
            base.index_params = ivf
            parts = [ivf]
        else:
            base = ivf = faiss.SearchParametersIVF()
            parts = []
        ivf.nprobe = min(int(params.get("nprobe", 8)), self.nlist)
        if self.refined:
            top = faiss.IndexRefineSearchParameters()
            top.k_factor = float(params.get("refine_k", 1.0))
            top.base_index_params = base
            parts.append(base)
        else:
            top = base
        if selector is not None:
            for p in (ivf, base, top):
                p.sel = selector.sel
        top._parts = parts  # faiss holds plain pointers to nested parameters: keep them alive
        return top

    def memory_bytes(self) -> int:
        n, d = self.count, self.dim
        if self.exact:
            return n * d * 4
        centroids = self.nlist * d * 4
        if self.engine == "SCANN":
            m = d // int(self.build_params.get("sub_dim", 2))
            codes = n * ((m * PQ_FAST_SCAN_BITS + 7) // 8 + 8) + m * (1 << PQ_FAST_SCAN_BITS) * (d // m) * 4
            raw = n * d * 4 if self.refined else 0
            return codes + centroids + raw
        # 1-bit codes + per-row factors + ids, the rotation matrix, the refine copy
        refine = self.build_params.get("refine_type") if self.refined else None
        extra = int(n * d * _REFINE_BYTES_PER_DIM[refine]) if refine else 0
        return n * ((d + 7) // 8 + 8 + 8) + centroids + d * d * 4 + extra
