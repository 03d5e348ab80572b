"""Index parameter rules: which index types exist, what they accept, and their defaults.

Create-index and search requests carry loosely typed parameters (JSON numbers or strings).
The proxy validates them here before anything is persisted, and the index code normalises
them here again before use, so a bad value fails early with Milvus's wording
("nlist out of range: [1, 65536]") and every layer sees the same defaults. Ranges and
defaults follow Milvus/knowhere; AUTOINDEX resolves to a concrete engine per vector type.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from common.errors import Code, MilvusError, invalid

from .dtypes import (
    BFLOAT16_VECTOR,
    BINARY_VECTOR,
    FLOAT16_VECTOR,
    FLOAT_VECTOR,
    INT8_VECTOR,
    SPARSE_FLOAT_VECTOR,
    VECTOR_TYPES,
    dtype_name,
)
from .metrics import BINARY_METRICS, FLOAT_METRICS, SPARSE_METRICS, STRUCTURE_METRICS, resolve_metric

INT_MAX = 2**31 - 1
MAX_DIM = 32768


@dataclass(frozen=True)
class Rule:
    """One parameter: integer, float or bool (``True``/``False`` or their JSON text), inclusive
    range (``hi_open`` makes ``hi`` exclusive; a bool's range is unused)."""

    name: str
    kind: type
    lo: float
    hi: float
    default: Any = None
    required: bool = False
    hi_open: bool = False


@dataclass(frozen=True)
class IndexSpec:
    name: str
    dtypes: frozenset[int]
    metrics: tuple[str, ...]
    build: tuple[Rule, ...] = ()
    search: tuple[Rule, ...] = ()
    extra_metrics: dict[int, tuple[str, ...]] = field(default_factory=dict)


_NLIST = Rule("nlist", int, 1, 65536, 128)
_NPROBE = Rule("nprobe", int, 1, 65536, 8)
_EF = Rule("ef", int, 1, INT_MAX)
_DROP_BUILD = Rule("drop_ratio_build", float, 0.0, 1.0, 0.0, hi_open=True)
_DROP_SEARCH = Rule("drop_ratio_search", float, 0.0, 1.0, 0.0, hi_open=True)
# BM25 (knowhere's ranges); filled with Milvus's defaults for a BM25 function's output field by the proxy
_BM25 = (Rule("bm25_k1", float, 0.0, 3.0), Rule("bm25_b", float, 0.0, 1.0), Rule("bm25_avgdl", float, 1.0, math.inf))
# a BM25 search carries k1/b (the proxy copies the index's) and avgdl (the shard leader's: may be < 1)
_BM25_SEARCH = (*_BM25[:2], Rule("bm25_avgdl", float, 0.0, math.inf))
_RANGE = (Rule("radius", float, -math.inf, math.inf), Rule("range_filter", float, -math.inf, math.inf))
# Quantised IVF indexes can re-rank their candidates with a finer copy of the vectors (knowhere's
# "refine"): IVF_RABITQ keeps one when refine=true and refine_type names its precision.
REFINE_TYPES = ("SQ6", "SQ8", "FP16", "BF16", "FP32", "FLAT")
_REFINE = Rule("refine", bool, 0, 1, False)
_REFINE_K = Rule("refine_k", float, 1.0, math.inf, 1.0)
# DISKANN's build knobs (Milvus's defaults: max_degree 56, search_list_size 100) and its search list.
_MAX_DEGREE = Rule("max_degree", int, 1, 2048, 56)
_SEARCH_LIST = Rule("search_list_size", int, 1, INT_MAX)

_IVF_TYPES = frozenset({FLOAT_VECTOR, FLOAT16_VECTOR, BFLOAT16_VECTOR})
_FLAT_TYPES = _IVF_TYPES | {INT8_VECTOR}
_BIN = frozenset({BINARY_VECTOR})
_SPARSE = frozenset({SPARSE_FLOAT_VECTOR})

SPECS: dict[str, IndexSpec] = {
    s.name: s
    for s in (
        IndexSpec("FLAT", _FLAT_TYPES, FLOAT_METRICS, (), _RANGE),
        IndexSpec("IVF_FLAT", _IVF_TYPES, FLOAT_METRICS, (_NLIST,), (_NPROBE, *_RANGE)),
        IndexSpec("IVF_SQ8", _IVF_TYPES, FLOAT_METRICS, (_NLIST,), (_NPROBE, *_RANGE)),
        IndexSpec(
            "IVF_PQ",
            _IVF_TYPES,
            FLOAT_METRICS,
            (_NLIST, Rule("m", int, 1, 65536, required=True), Rule("nbits", int, 1, 24, 8)),
            (_NPROBE, *_RANGE),
        ),
        IndexSpec(
            "HNSW",
            _FLAT_TYPES | _BIN,
            FLOAT_METRICS,
            (Rule("M", int, 2, 2048, 30), Rule("efConstruction", int, 1, INT_MAX, 360)),
            (_EF, *_RANGE),
            extra_metrics={BINARY_VECTOR: BINARY_METRICS},
        ),
        IndexSpec(
            "IVF_RABITQ",
            _IVF_TYPES,
            FLOAT_METRICS,
            (_NLIST, _REFINE),
            (_NPROBE, Rule("rbq_bits_query", int, 0, 8, 0), _REFINE_K, *_RANGE),
        ),
        IndexSpec(
            "SCANN",
            _IVF_TYPES,
            FLOAT_METRICS,
            (_NLIST, Rule("with_raw_data", bool, 0, 1, True), Rule("sub_dim", int, 1, 65536, 2)),
            (_NPROBE, Rule("reorder_k", int, 1, INT_MAX), *_RANGE),
        ),
        IndexSpec(
            "DISKANN",
            _IVF_TYPES,
            FLOAT_METRICS,
            (
                _MAX_DEGREE,
                Rule("search_list_size", int, 1, INT_MAX, 100),
                Rule("pq_code_budget_gb_ratio", float, 0.0, math.inf),
                Rule("search_cache_budget_gb_ratio", float, 0.0, math.inf),
            ),
            (_SEARCH_LIST, Rule("beam_width_ratio", float, 0.0, math.inf), *_RANGE),
        ),
        IndexSpec("BIN_FLAT", _BIN, BINARY_METRICS + STRUCTURE_METRICS, (), _RANGE),
        IndexSpec("BIN_IVF_FLAT", _BIN, BINARY_METRICS, (_NLIST,), (_NPROBE, *_RANGE)),
        *(IndexSpec(name, _SPARSE, SPARSE_METRICS, (_DROP_BUILD, *_BM25), (_DROP_SEARCH, *_BM25_SEARCH))
          for name in ("SPARSE_INVERTED_INDEX", "SPARSE_WAND")),
        IndexSpec(
            "AUTOINDEX",
            frozenset(VECTOR_TYPES),
            FLOAT_METRICS,
            (),
            (Rule("level", int, 1, 10, 1), _EF, _NPROBE, _DROP_SEARCH, *_BM25_SEARCH, *_RANGE),
            extra_metrics={BINARY_VECTOR: BINARY_METRICS, SPARSE_FLOAT_VECTOR: SPARSE_METRICS},
        ),
    )
}

# What AUTOINDEX builds, per vector type: (engine, build params). Float graphs follow
# Milvus's default autoindex build params; binary vectors are cheap to scan exactly.
AUTOINDEX_ENGINE: dict[int, tuple[str, dict[str, Any]]] = {
    FLOAT_VECTOR: ("HNSW", {"M": 18, "efConstruction": 240}),
    FLOAT16_VECTOR: ("HNSW", {"M": 18, "efConstruction": 240}),
    BFLOAT16_VECTOR: ("HNSW", {"M": 18, "efConstruction": 240}),
    INT8_VECTOR: ("HNSW", {"M": 18, "efConstruction": 240}),
    BINARY_VECTOR: ("BIN_FLAT", {}),
    SPARSE_FLOAT_VECTOR: ("SPARSE_INVERTED_INDEX", {"drop_ratio_build": 0.0}),
}

# AUTOINDEX search "level" (1 = default) -> HNSW ef floor; ef is never below k.
AUTOINDEX_LEVEL_EF = {1: 64, 2: 128, 3: 192, 4: 256, 5: 384, 6: 512, 7: 768, 8: 1024, 9: 1536, 10: 2048}

_SPARSE_ALGOS = {"TAAT_NAIVE", "DAAT_WAND", "DAAT_MAXSCORE"}


def normalize_index_type(index_type: str | None) -> str:
    """Upper-cased index type name; empty means AUTOINDEX (as Milvus does)."""
    name = (index_type or "").strip().upper()
    return name or "AUTOINDEX"


def flatten_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge a nested ``"params"`` entry (a dict or JSON text, as pymilvus sends it) into one dict."""
    out: dict[str, Any] = dict(params or {})
    nested = out.pop("params", None)
    if isinstance(nested, str) and nested.strip():
        try:
            nested = json.loads(nested)
        except ValueError:
            raise invalid(f"invalid params: {nested}") from None
    if isinstance(nested, Mapping):
        out.update(nested)
    return out


def _coerce(rule: Rule, value: Any) -> Any:
    """The value as the rule's type, or MilvusError naming the parameter."""
    if rule.kind is bool:
        text = str(value).strip().lower()
        if isinstance(value, bool) or text in ("true", "false"):
            return text == "true"
        raise invalid(f"invalid {rule.name}: {value}, must be a bool (true or false)")
    if isinstance(value, bool):
        raise _out_of_range(rule)
    try:
        if rule.kind is int:
            if isinstance(value, float):
                if not value.is_integer():
                    raise _out_of_range(rule)
                num: float = int(value)
            else:
                num = int(str(value).strip())
        else:
            num = float(value)
    except (TypeError, ValueError):
        raise invalid(f"invalid {rule.name}: {value}, must be a {rule.kind.__name__}") from None
    if math.isnan(num) or num < rule.lo or num > rule.hi or (rule.hi_open and num >= rule.hi):
        raise _out_of_range(rule, value)
    return num


def _out_of_range(rule: Rule, value: Any = None) -> MilvusError:
    if rule.name.startswith("bm25_"):  # knowhere's config check, as Milvus reports it
        return MilvusError(Code.PARAMETER_INVALID, f"param '{rule.name}' ({value}) should be in range "
                                                   f"[{rule.lo:f}, {rule.hi:f}]: invalid parameter")
    return MilvusError(Code.PARAMETER_INVALID, f"{rule.name} out of range: [{_fmt(rule.lo)}, {_fmt(rule.hi)}]")


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return str(int(x)) if float(x).is_integer() else str(x)


def _apply(rules: tuple[Rule, ...], params: Mapping[str, Any], fill_defaults: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rule in rules:
        if rule.name in params and params[rule.name] is not None:
            out[rule.name] = _coerce(rule, params[rule.name])
        elif rule.required:
            raise MilvusError(Code.PARAMETER_MISSING, f"parameter `{rule.name}` not found")
        elif fill_defaults and rule.default is not None:
            out[rule.name] = rule.default
    return out


def get_spec(index_type: str) -> IndexSpec:
    name = normalize_index_type(index_type)
    spec = SPECS.get(name)
    if spec is None:
        raise invalid(f"invalid parameter[expected=valid index][actual=invalid index type: {index_type}]")
    return spec


def validate_index_params(
    index_type: str, metric_type: str, params: Mapping[str, Any], dtype: int, dim: int
) -> dict[str, Any]:
    """Check a create-index request; returns the normalised build parameters.

    The result holds every build parameter of the index type with defaults filled in, plus
    ``"metric_type"`` (resolved: upper-cased, the type's default when empty). Unknown keys
    are dropped. Raises MilvusError naming the bad value.
    """
    spec = get_spec(index_type)
    if dtype not in spec.dtypes:
        raise MilvusError(
            Code.INDEX_NOT_SUPPORTED, f"data type {dtype_name(dtype)} can't build with this index {spec.name}"
        )
    flat = flatten_params(params)
    metric = (metric_type or str(flat.get("metric_type") or "")).strip().upper()
    metric = resolve_metric(metric, dtype)
    allowed = spec.extra_metrics.get(dtype, spec.metrics)
    if metric not in allowed:
        raise invalid(f"metric type {metric} not found or not supported, supported: [{' '.join(allowed)}]")
    _check_dim(dtype, dim)
    out = _apply(spec.build, flat, fill_defaults=True)
    if spec.name == "IVF_PQ" and dim % out["m"] != 0:
        raise invalid(
            f"The dimension of a vector (dim) should be a multiple of the number of subquantizers (m). "
            f"Dimension: {dim}, m: {out['m']}"
        )
    if spec.name == "SCANN" and dim % out["sub_dim"] != 0:
        raise invalid(
            "The dimension of a vector (dim) should be a multiple of sub_dim. "
            f"Dimension:{dim}, sub_dim:{out['sub_dim']}"
        )
    if spec.name == "IVF_RABITQ" and out["refine"] and flat.get("refine_type") is not None:
        refine_type = str(flat["refine_type"]).strip().upper()
        if refine_type not in REFINE_TYPES:
            raise invalid(f"invalid refine type ({flat['refine_type']}), supported: [{' '.join(REFINE_TYPES)}]")
        out["refine_type"] = refine_type
    if spec.name == "DISKANN":
        # served by an in-memory proximity graph (docs/index-types.md): its level-0 degree is 2M
        out.update(M=max(2, out["max_degree"] // 2), efConstruction=out["search_list_size"])
    if spec.name.startswith("SPARSE") and "inverted_index_algo" in flat:
        algo = str(flat["inverted_index_algo"]).upper()
        if algo not in _SPARSE_ALGOS:
            raise invalid(f"inverted_index_algo {algo} not found or not supported, supported: {sorted(_SPARSE_ALGOS)}")
        out["inverted_index_algo"] = algo
    if spec.name == "AUTOINDEX":
        engine, engine_params = AUTOINDEX_ENGINE[dtype]
        out.update(engine_params)
        if dtype == SPARSE_FLOAT_VECTOR:
            out.update(_apply(_BM25, flat, fill_defaults=False))
    out["metric_type"] = metric
    return out


def _check_dim(dtype: int, dim: int) -> None:
    if dtype == SPARSE_FLOAT_VECTOR:
        return
    if dim < 1 or dim > MAX_DIM * (8 if dtype == BINARY_VECTOR else 1):
        raise invalid(f"invalid dimension: {dim}. should be in range 1 ~ {MAX_DIM}")
    if dtype == BINARY_VECTOR and dim % 8 != 0:
        raise invalid(f"invalid dimension: {dim}. binary vector dimension should be multiple of 8.")


def resolve_engine(index_type: str, dtype: int) -> str:
    """The concrete index that implements ``index_type`` for ``dtype`` (AUTOINDEX resolves)."""
    name = normalize_index_type(index_type)
    if name == "AUTOINDEX":
        return AUTOINDEX_ENGINE[dtype][0]
    if name == "DISKANN":
        return "HNSW"
    return name


def validate_search_params(
    index_type: str, params: Mapping[str, Any] | None, k: int | None = None
) -> dict[str, Any]:
    """Check search parameters for an index type; returns them normalised with defaults.

    ``k`` (the top-k) enables the HNSW rule that ``ef`` must be at least ``k``; when ``ef``
    is absent it defaults to ``max(k, 16)`` (AUTOINDEX: a floor chosen by ``level``).
    Unknown keys are dropped; radius/range_filter are kept for range search. Valid results are
    memoised (every search of a collection repeats the same few parameter sets): a copy of the
    normalised dict comes back, errors are raised afresh each time.
    """
    key = _memo_key(index_type, params, k)
    if key is not None:
        hit = _VALID_SEARCH.get(key)
        if hit is not None:
            return dict(hit)
    out = _validate_search_params(index_type, params, k)
    if key is not None:
        if len(_VALID_SEARCH) >= _MEMO_SIZE:
            _VALID_SEARCH.clear()
        _VALID_SEARCH[key] = dict(out)
    return out


_MEMO_SIZE = 1024
_VALID_SEARCH: dict[tuple[Any, ...], dict[str, Any]] = {}
_SCALARS = (str, int, float, bool, type(None))


def _memo_key(index_type: str, params: Mapping[str, Any] | None, k: int | None) -> tuple[Any, ...] | None:
    """A hashable key for a flat parameter set of scalars (None: not memoisable, e.g. nested dicts).
    Each value's type is part of the key: ``True`` and ``1`` hash alike but validate differently."""
    items = []
    for name, value in (params or {}).items():
        if type(value) not in _SCALARS:
            return None
        items.append((name, type(value), value))
    items.sort(key=lambda item: item[0])
    return (index_type, k, tuple(items))


def _validate_search_params(index_type: str, params: Mapping[str, Any] | None, k: int | None) -> dict[str, Any]:
    spec = get_spec(index_type)
    flat = flatten_params(params)
    if spec.name == "DISKANN" and "search_list_size" not in flat and "search_list" in flat:
        flat["search_list_size"] = flat["search_list"]  # Milvus's documented name for it
    out = _apply(spec.search, flat, fill_defaults=True)
    if spec.name == "DISKANN":
        _check_at_least_k(out, "search_list_size", k)
        out["ef"] = out.get("search_list_size") or max(k or 16, 16)
    if spec.name == "SCANN":
        _check_at_least_k(out, "reorder_k", k)
    if spec.name == "AUTOINDEX":
        level = int(out.pop("level", 1))
        if "ef" not in out:
            out["ef"] = AUTOINDEX_LEVEL_EF[level]
            if k is not None:
                out["ef"] = max(out["ef"], k)
    if spec.name == "HNSW" and "ef" not in out and k is not None:
        out["ef"] = max(k, 16)
    if k is not None and "ef" in out and out["ef"] < k:
        raise invalid(f"ef({out['ef']}) should be larger than k({k})")
    _check_range(out)
    return out


# Search knobs that bound how many candidates an index walks; each must be at least the top-k.
CANDIDATE_LISTS = ("ef", "search_list_size", "reorder_k")


def widen_candidate_lists(params: Mapping[str, Any], k: int) -> dict[str, Any]:
    """``params`` with every candidate-list knob raised to at least ``k``.

    For searches that ask the index for more candidates than the user's top-k (grouping, search
    iterators): Milvus walks an index iterator there, so the user's ``ef`` (checked against the
    user's limit) never meets the wider internal k, and it must not fail here either.
    """
    out = dict(params)
    for name in CANDIDATE_LISTS:
        if name in out and out[name] is not None and int(out[name]) < k:
            out[name] = k
    return out


def _check_at_least_k(params: Mapping[str, Any], name: str, k: int | None) -> None:
    if k is not None and name in params and params[name] < k:
        raise invalid(f"{name}({params[name]}) should be larger than k({k})")


def _check_range(params: Mapping[str, Any]) -> None:
    if "range_filter" in params and "radius" not in params:
        raise invalid("range_filter must be used together with radius")


def check_range_order(metric_ascending: bool, radius: float, range_filter: float | None) -> None:
    """Milvus's rule: range_filter is on the "better" side of radius."""
    if range_filter is None:
        return
    if metric_ascending and not range_filter < radius:
        raise invalid("range_filter must be less than radius for L2/HAMMING/JACCARD")
    if not metric_ascending and not range_filter > radius:
        raise invalid("range_filter must be greater than radius for IP/COSINE")
