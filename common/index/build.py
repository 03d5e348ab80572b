"""build_index: validate parameters, convert the column, and hand it to the right engine.

The indexnode calls this with a segment's vector column as read from its binlogs; the
result's ``serialize()`` bytes are what goes to object storage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from common.errors import invalid

from .base import VectorIndex
from .binary import BinaryIndex
from .dtypes import as_binary, as_float32, is_binary, is_sparse, vector_dim
from .faiss_float import FaissFloatIndex
from .faiss_quantized import QuantizedIvfIndex
from .flat import FlatIndex
from .params import normalize_index_type, resolve_engine, validate_index_params
from .sparse import SparseIndex, SparseRows


def build_index(
    index_type: str, metric_type: str, params: Mapping[str, Any], vectors: Any, dtype: int,
    present: np.ndarray | None = None,
) -> VectorIndex:
    """Build an index over ``vectors`` (row i gets offset i); ``present``: the rows that are not null
    (a nullable vector field's nulls are placeholder rows, in the index but never searched).

    ``vectors`` is the column in the shared layout: float32/float16/uint16 (bf16 bits)/int8
    (n, dim), packed uint8 (n, dim // 8) for binary, dicts (or SparseRows) for sparse.
    """
    name = normalize_index_type(index_type)
    if is_sparse(dtype):
        csr = SparseRows.from_rows(vectors)
        built = validate_index_params(name, metric_type, params, dtype, 0)
        metric = built.pop("metric_type")
        return SparseIndex.build(name, resolve_engine(name, dtype), metric, built, csr, dtype)
    arr = np.asarray(vectors)
    if arr.ndim != 2:
        raise invalid(f"vectors must be a 2-dimensional array, got shape {arr.shape}")
    dim = vector_dim(arr, dtype)
    built = validate_index_params(name, metric_type, params, dtype, dim)
    metric = built.pop("metric_type")
    engine = resolve_engine(name, dtype)
    if is_binary(dtype):
        return BinaryIndex.build(name, engine, metric, built, as_binary(arr, dim), dtype)
    x = as_float32(arr, dtype)
    if engine == "FLAT":
        return FlatIndex.build(name, metric, built, x, dtype)
    engine_class = QuantizedIvfIndex if engine in ("IVF_RABITQ", "SCANN") else FaissFloatIndex
    return engine_class.build(name, engine, metric, built, x, dtype, present)
