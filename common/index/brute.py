"""Exact search over raw vectors: the growing segments' search path (no index yet).

Growing data changes with every insert, so nothing is built: the kernels run directly on
the caller's arrays (no copy for float32 and packed binary columns).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from common.errors import invalid

from .base import check_valid, range_search
from .bm25 import Bm25Params
from .dtypes import as_binary, as_float32, is_binary, is_dense_float, is_sparse, vector_dim
from .kernels import binary_knn, empty_result, float_knn, structure_knn
from .metrics import (
    BM25,
    COSINE,
    IP,
    JACCARD,
    STRUCTURE_METRICS,
    SUPERSTRUCTURE,
    metric_ascending,
    normalize_rows,
    resolve_metric,
)
from .sparse import Postings, SparseRows, sparse_knn
from .unit_rows import UnitRows


def brute_force_search(
    vectors: Any,
    queries: Any,
    metric_type: str,
    k: int,
    dtype: int,
    valid: np.ndarray | None = None,
    params: Mapping[str, Any] | None = None,
    unit_rows: UnitRows | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of ``queries`` over ``vectors``: (scores float32 (nq, k), offsets int64).

    Same conventions as VectorIndex.search. ``params`` may carry ``radius`` /
    ``range_filter`` (range search) and ``drop_ratio_search`` (sparse). ``unit_rows``: the caller's
    cache of normalised rows for COSINE (scores then equal the COSINE indexes', see unit_rows.py).
    """
    if k <= 0:
        raise invalid(f"topk [{k}] is invalid, it should be in range [1, 16384]")
    metric = resolve_metric(metric_type, dtype)
    sp = dict(params or {})
    knn, q, n = _prepare(vectors, queries, metric, dtype, unit_rows)
    nq = q.shape[0] if isinstance(q, np.ndarray) else len(q)
    mask = check_valid(valid, n)
    if n == 0 or nq == 0 or (mask is not None and not mask.any()):
        return empty_result(nq, k, metric_ascending(metric))
    if mask is not None and mask.all():
        mask = None
    if sp.get("radius") is not None:
        return range_search(knn, q, nq, k, sp, mask, metric, n)
    return knn(q, k, sp, mask)


def _prepare(vectors: Any, queries: Any, metric: str, dtype: int, unit_rows: UnitRows | None) -> tuple[Any, Any, int]:
    if is_sparse(dtype):
        bm25 = metric == BM25
        csr = SparseRows.from_rows(vectors)
        postings = Postings.build(csr)
        n = len(csr)
        return (
            lambda q, k, p, v: sparse_knn(
                postings, n, q, k, v, float(p.get("drop_ratio_search", 0.0)), Bm25Params.of(p) if bm25 else None
            ),
            SparseRows.from_rows(queries),
            n,
        )
    if is_binary(dtype):
        codes = as_binary(vectors)
        qb = as_binary(queries, vector_dim(codes, dtype))
        if metric in STRUCTURE_METRICS:
            sup = metric == SUPERSTRUCTURE
            return (lambda q, k, p, v: structure_knn(codes, q, k, sup, v)), qb, codes.shape[0]
        jaccard = metric == JACCARD
        return (lambda q, k, p, v: binary_knn(codes, q, k, jaccard, v)), qb, codes.shape[0]
    if not is_dense_float(dtype):
        raise invalid(f"data type {dtype} is not a vector type")
    x = as_float32(vectors, dtype)
    q = as_float32(queries, dtype)
    if x.shape[0] and q.shape[1] != x.shape[1]:
        raise invalid(f"vector dimension mismatch: queries have dim {q.shape[1]}, vectors have dim {x.shape[1]}")
    if metric == COSINE and unit_rows is not None:
        unit = unit_rows.rows(x)
        return (lambda qq, k, p, v: float_knn(unit, qq, k, True, v)), normalize_rows(q), x.shape[0]
    if metric == COSINE:
        # scale each row's inner product by 1/|x| instead of normalising a copy of x
        norms = np.sqrt(np.einsum("ij,ij->i", x, x))
        inv = np.divide(np.float32(1.0), norms, out=np.zeros_like(norms), where=norms > 0)
        qn = normalize_rows(q)
        return (lambda qq, k, p, v: float_knn(x, qq, k, True, v, row_scale=inv)), qn, x.shape[0]
    ip = metric == IP
    return (lambda qq, k, p, v: float_knn(x, qq, k, ip, v)), q, x.shape[0]
