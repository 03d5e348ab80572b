"""Metric types: names, sort direction, defaults and which vector types accept which metric.

Every layer that ranks or merges results (indexes, brute force, the querynode's segment
merge, the proxy's shard merge) must agree on what a "distance" means and which way is
better, so the rules live here once. Scores follow Milvus: L2 is the squared euclidean
distance, IP the inner product, COSINE the cosine similarity, HAMMING the number of differing
bits and JACCARD the jaccard distance (1 - |a & b| / |a | b|). SUBSTRUCTURE and SUPERSTRUCTURE
(BIN_FLAT only) are match tests, as knowhere has them: a row matches SUBSTRUCTURE when the
query's bits are all set in it, SUPERSTRUCTURE when its bits are all set in the query; matches
score 0 and come in row order, rows that do not match are never returned.
"""

from __future__ import annotations

import numpy as np

from common.errors import invalid

from .dtypes import BINARY_VECTOR, SPARSE_FLOAT_VECTOR, dtype_name, is_dense_float

L2 = "L2"
IP = "IP"
COSINE = "COSINE"
HAMMING = "HAMMING"
JACCARD = "JACCARD"
SUBSTRUCTURE = "SUBSTRUCTURE"
SUPERSTRUCTURE = "SUPERSTRUCTURE"
BM25 = "BM25"  # sparse rows of term frequencies scored with Okapi BM25 (common/index/bm25.py)

FLOAT_METRICS: tuple[str, ...] = (L2, IP, COSINE)
BINARY_METRICS: tuple[str, ...] = (HAMMING, JACCARD)
SPARSE_METRICS: tuple[str, ...] = (IP, BM25)
STRUCTURE_METRICS: tuple[str, ...] = (SUBSTRUCTURE, SUPERSTRUCTURE)  # BIN_FLAT only

_ASCENDING = {
    L2: True, HAMMING: True, JACCARD: True, SUBSTRUCTURE: True, SUPERSTRUCTURE: True, IP: False, COSINE: False,
    BM25: False,
}


def metric_ascending(metric: str) -> bool:
    """True when smaller scores are better (L2, HAMMING, JACCARD); False for IP and COSINE."""
    try:
        return _ASCENDING[metric.upper()]
    except KeyError:
        raise invalid(f"metric type {metric} not found or not supported") from None


def worst_score(metric: str) -> float:
    """The score reported for an empty result slot: +inf for ascending metrics, -inf otherwise."""
    return float("inf") if metric_ascending(metric) else float("-inf")


def default_metric(dtype: int) -> str:
    """Milvus's default metric when an index is created without one."""
    if dtype == BINARY_VECTOR:
        return HAMMING
    if dtype == SPARSE_FLOAT_VECTOR:
        return IP
    return COSINE


def metrics_for(dtype: int) -> tuple[str, ...]:
    """The metrics a vector data type supports at all (before index-specific limits)."""
    if dtype == BINARY_VECTOR:
        return BINARY_METRICS
    if dtype == SPARSE_FLOAT_VECTOR:
        return SPARSE_METRICS
    if is_dense_float(dtype):
        return FLOAT_METRICS
    raise invalid(f"data type {dtype_name(dtype)} is not a vector type")


def resolve_metric(metric_type: str | None, dtype: int) -> str:
    """Upper-cased metric, the data type's default when empty; checked against the type."""
    metric = (metric_type or "").strip().upper() or default_metric(dtype)
    supported = metrics_for(dtype)
    if dtype == BINARY_VECTOR and metric in STRUCTURE_METRICS:
        return metric  # only BIN_FLAT takes them: its IndexSpec lists them, the other specs refuse
    if metric == BM25 and is_dense_float(dtype):
        raise invalid("float vector index does not support metric type: BM25")
    if metric not in supported:
        raise invalid(f"metric type {metric} not found or not supported, supported: [{' '.join(supported)}]")
    return metric


def check_metric_match(index_metric: str, requested: str | None) -> str:
    """The metric a search must use on an index built with ``index_metric``.

    An empty request means "whatever the index uses"; a different one is Milvus's
    "metric type not match" error.
    """
    if not requested:
        return index_metric
    if requested.upper() != index_metric.upper():
        raise invalid(f"metric type not match: invalid parameter[expected={index_metric}][actual={requested.upper()}]")
    return index_metric


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero); returns a new float32 array."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(x / norms, dtype=np.float32)
