"""Vector indexes: parameter rules, building, loading, and exact search for growing data.

The public surface every role uses: the proxy validates create-index and search params,
indexnodes ``build_index(...).serialize()``, querynodes ``load_index(bytes).search(...)``
for sealed segments and ``brute_force_search`` for growing ones, and everyone merges with
``metric_ascending``. Scores are what Milvus reports as "distance" (see metrics.py).
"""

from __future__ import annotations

from .base import VectorIndex, load_index
from .brute import brute_force_search
from .build import build_index
from .dtypes import bf16_to_float32, float32_to_bf16
from .metrics import check_metric_match, default_metric, metric_ascending, resolve_metric, worst_score
from .params import (
    normalize_index_type,
    resolve_engine,
    validate_index_params,
    validate_search_params,
    widen_candidate_lists,
)
from .sparse import SparseRows

__all__ = [
    "SparseRows",
    "VectorIndex",
    "bf16_to_float32",
    "brute_force_search",
    "build_index",
    "check_metric_match",
    "default_metric",
    "float32_to_bf16",
    "load_index",
    "metric_ascending",
    "normalize_index_type",
    "resolve_engine",
    "resolve_metric",
    "validate_index_params",
    "validate_search_params",
    "widen_candidate_lists",
    "worst_score",
]
