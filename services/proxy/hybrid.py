"""Hybrid search ranking: several ANN results fused into one by RRF or weighted scores.

HybridSearch runs each sub-request as an ordinary search (its own field, filter and limit)
and then fuses, per query, the hits of all sub-requests by primary key, as Milvus's proxy
does (2.6: internal/util/function/rerank; 2.5: internal/proxy/reScorer.go):

- ``rrf``: score = sum over sub-results of 1 / (k + rank), rank counted from 1 per query.
- ``weighted``: score = sum of weight_i * norm_i(score); with ``norm_score`` the metric's
  normaliser (COSINE (1 + s) / 2, IP 1/2 + atan(s)/pi, L2-like 1 - 2 atan(s)/pi); without it
  the raw scores, except that L2-like scores mixed with IP/COSINE ones are still turned by
  1 - 2 atan(s)/pi so that larger is better everywhere.

Sums are float32, as in Go. Hits sort by score (descending, or ascending for un-normalised
L2-only weighting), ties by smaller primary key; ``offset`` and ``limit`` then cut the list;
``round_decimal`` rounds half up. With group_by, fused hits are bucketed by group value (at
most ``group_size`` each); groups rank by their max/sum/avg score (``rank_group_scorer``),
ties going to the larger group and then the smaller first key. Where 2.5 and 2.6 differ, this
follows 2.6: RRF ranks restart for each query (2.5 counted on across queries), ``k`` defaults
to 60, and ``norm_score`` defaults to false.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.errors import Code, MilvusError, invalid
from services.proxy.grouping import GroupSpec
from services.proxy.search_results import Picked
from services.proxy.search_spec import MAX_TOPK, int_param, round_decimal_of

MAX_SUB_REQUESTS = 1024
DEFAULT_RRF_K = 60.0
LARGER_IS_BETTER = {"COSINE", "IP", "BM25"}
_PI = np.float32(math.pi)
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_TWO = np.float32(2.0)


@dataclass
class Rank:
    strategy: str
    limit: int
    offset: int
    round_decimal: int
    k: float = DEFAULT_RRF_K
    weights: list[float] = field(default_factory=list)
    norm_score: bool = False
    group_scorer: str = "max"


def parse_rank(params: dict[str, str], n_requests: int) -> Rank:
    """The ranker, limit, offset and round_decimal of a HybridSearch's rank_params."""
    if not 1 <= n_requests <= MAX_SUB_REQUESTS:
        if n_requests == 0:
            raise invalid("hybrid search needs at least one ann search request")
        raise invalid(f"maximum of ann search requests is {MAX_SUB_REQUESTS}")
    if "limit" not in params:
        raise invalid("limit not found in rank_params")
    limit = int_param(params, "limit")
    offset = int_param(params, "offset", 0) or 0
    assert limit is not None
    if limit <= 0 or offset < 0 or limit + offset > MAX_TOPK:
        raise invalid(
            f"invalid max query result window, (offset+limit) should be in range [1, {MAX_TOPK}], "
            f"but got {limit + offset}"
        )
    rank = Rank("rrf", limit, offset, round_decimal_of(params))
    rank.group_scorer = params.get("rank_group_scorer", "") or "max"
    if rank.group_scorer not in ("max", "sum", "avg"):
        raise invalid(f"input group scorer type: {rank.group_scorer} is not supported!: invalid parameter")
    strategy = params.get("strategy")
    if strategy is None:
        return rank
    strategy = strategy.strip().strip('"')
    if strategy not in ("rrf", "weighted"):
        raise invalid(f"unsupported rank type {strategy}")
    rank.strategy = strategy
    if "params" not in params:
        raise invalid("params not found in rank_params")
    try:
        values = json.loads(params["params"])
    except ValueError as exc:
        raise invalid(f"parse rerank params failed, err: {exc}") from exc
    if not isinstance(values, dict):
        raise invalid(f"parse rerank params failed, err: params must be a JSON object, got {params['params']}")
    if strategy == "rrf":
        _parse_rrf(rank, values)
    else:
        _parse_weighted(rank, values, n_requests)
    return rank


_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def rank_from_function(function_score: Any, rank: Rank, n_requests: int) -> Rank:
    """The ranker of a HybridSearch ``function_score`` (pymilvus ``Function`` rerankers, 2.6+).

    Only ``rrf`` and ``weighted`` are built in; ``decay`` and ``model`` rerankers need field
    inputs or external model services that Quiver does not have, and are refused.
    """
    functions = list(function_score.functions)
    if len(functions) > 1:
        raise invalid("currently only supports one rerank")
    fn = functions[0]
    if fn.type != 3:  # schema_pb2.FunctionType.Rerank
        raise invalid(f"{fn.type} is not rerank function")
    params = {kv.key.lower(): kv.value for kv in fn.params}
    name = params.get("reranker", "").lower()
    if name in ("decay", "model"):
        raise MilvusError(Code.UNIMPLEMENTED, f"the {name} rerank function is not supported by Quiver yet")
    if name not in ("rrf", "weighted"):
        raise invalid(f"unsupported rerank function: [{name}] , list of supported [decay,model,rrf,weighted]")
    if list(fn.input_field_names):
        raise invalid(f"the {name} function does not support input parameters, but got {list(fn.input_field_names)}")
    rank.strategy = name
    if name == "rrf":
        if "k" in params:
            try:
                rank.k = float(params["k"])
            except ValueError as exc:
                raise invalid(f"param k:{params['k']} is not a number") from exc
        _parse_rrf(rank, {})
        return rank
    values: dict[str, Any] = {}
    if "weights" in params:
        try:
            values["weights"] = json.loads(params["weights"])
        except ValueError as exc:
            raise invalid(
                f"parse weights param failed, weight should be []float, bug got: {params['weights']}"
            ) from exc
    if "norm_score" in params:
        raw = params["norm_score"]
        if raw not in _GO_TRUE | _GO_FALSE:
            raise invalid(f"norm_score params must be true/false, bug got {raw}")
        values["norm_score"] = raw in _GO_TRUE
    _parse_weighted(rank, values, n_requests)
    return rank


def _parse_rrf(rank: Rank, values: dict[str, Any]) -> None:
    if "k" in values:
        k = values["k"]
        if isinstance(k, bool) or not isinstance(k, (int, float)):
            raise invalid("the type of rank param k should be float")
        rank.k = float(k)
    if not 0 < rank.k < MAX_TOPK:
        raise invalid(f"the rank params k should be in range (0, {MAX_TOPK})")


def _parse_weighted(rank: Rank, values: dict[str, Any], n_requests: int) -> None:
    weights = values.get("weights")
    if weights is None:
        raise invalid("weights not found")
    if not isinstance(weights, list) or any(isinstance(w, bool) or not isinstance(w, (int, float)) for w in weights):
        raise invalid(f"parse weights param failed, weight should be []float, bug got: {json.dumps(weights)}")
    if any(not 0 <= w <= 1 for w in weights):
        raise invalid("rank param weight should be in range [0, 1]")
    if not weights:
        raise invalid("weights not found")
    if len(weights) != n_requests:
        raise invalid(
            f"invalid parameter[expected={n_requests}][actual={len(weights)}]: "
            "the length of weights param mismatch with ann search requests"
        )
    norm = values.get("norm_score", False)
    if not isinstance(norm, bool):
        raise invalid(
            f"weighted rerank err, norm_score should been bool type, but [norm_score:{norm}]'s type is "
            f"{type(norm).__name__}"
        )
    rank.weights = [float(w) for w in weights]
    rank.norm_score = norm


def _atan32(s: np.float32) -> np.float32:
    return np.float32(math.atan(float(s)))


def normaliser(metric: str, norm: bool, mixed: bool) -> Any:
    """Milvus's getNormalizeFunc, in float32."""
    m = metric.upper()
    if not norm:
        if not mixed or m in LARGER_IS_BETTER:
            return lambda s: s
        return lambda s: _ONE - _TWO * _atan32(s) / _PI
    if m == "COSINE":
        return lambda s: (_ONE + s) * _HALF
    if m == "IP":
        return lambda s: _HALF + _atan32(s) / _PI
    if m == "BM25":
        return lambda s: _TWO * _atan32(s) / _PI
    return lambda s: _ONE - _TWO * _atan32(s) / _PI


def _round(score: np.float32, decimals: int) -> np.float32:
    if decimals == -1:
        return score
    mult = math.pow(10.0, decimals)
    return np.float32(math.floor(float(score) * mult + 0.5) / mult)


def _key(pk: Any) -> Any:
    return pk.item() if isinstance(pk, np.generic) else pk


def rerank(
    rank: Rank,
    subs: list[Picked],
    metrics: list[str],
    nq: int,
    names: list[str],
    group: GroupSpec | None = None,
) -> Picked:
    """Fuse the sub-results (each flat per query, as Picked) into the final hits."""
    larger = [m.upper() in LARGER_IS_BETTER for m in metrics]
    mixed = any(larger) and not all(larger)
    descending = rank.strategy == "rrf" or rank.norm_score or any(larger) or group is not None
    norms = [normaliser(m, rank.norm_score, mixed) for m in metrics]
    starts = [np.concatenate([[0], np.cumsum(s.topks)]).astype(np.int64) for s in subs]
    bases = np.concatenate([[0], np.cumsum([len(s.pks) for s in subs])]).astype(np.int64)
    out_flat: list[int] = []
    out_scores: list[np.float32] = []
    topks: list[int] = []
    for q in range(nq):
        acc: dict[Any, np.float32] = {}
        where: dict[Any, int] = {}
        for i, sub in enumerate(subs):
            lo, hi = int(starts[i][q]), int(starts[i][q + 1])
            for j in range(lo, hi):
                pk = _key(sub.pks[j])
                if rank.strategy == "rrf":
                    part = _ONE / (np.float32(rank.k) + np.float32(j - lo + 1))
                else:
                    part = np.float32(rank.weights[i]) * norms[i](np.float32(sub.scores[j]))
                if pk in acc:
                    acc[pk] = np.float32(acc[pk] + part)
                else:
                    acc[pk] = np.float32(part)
                    where[pk] = int(bases[i]) + j
        ids = sorted(acc, key=lambda p: (-float(acc[p]) if descending else float(acc[p]), p))
        if group is not None:
            ids = _group_ids(ids, acc, where, subs, bases, group, rank)
        else:
            ids = ids[rank.offset : rank.offset + rank.limit]
        topks.append(len(ids))
        for pk in ids:
            out_flat.append(where[pk])
            out_scores.append(_round(acc[pk], rank.round_decimal))
    return _assemble(subs, out_flat, out_scores, topks, names, group is not None)


def _group_value(subs: list[Picked], bases: np.ndarray, flat: int) -> Any:
    i = int(np.searchsorted(bases, flat, side="right")) - 1
    values = subs[i].group_values
    assert values is not None
    return _key(values[flat - int(bases[i])])


def _group_ids(
    ids: list[Any],
    acc: dict[Any, np.float32],
    where: dict[Any, int],
    subs: list[Picked],
    bases: np.ndarray,
    group: GroupSpec,
    rank: Rank,
) -> list[Any]:
    """Milvus's newGroupingIDScores: buckets of group_size, groups ranked by their score."""
    buckets: dict[Any, list[Any]] = {}
    for pk in ids:
        members = buckets.setdefault(_group_value(subs, bases, where[pk]), [])
        if len(members) < group.size:
            members.append(pk)

    def final(members: list[Any]) -> float:
        scores = [float(acc[p]) for p in members]
        if rank.group_scorer == "sum":
            return float(np.float32(sum(np.float32(s) for s in scores)))
        if rank.group_scorer == "avg":
            return float(np.float32(sum(np.float32(s) for s in scores)) / np.float32(len(scores)))
        return max(scores)

    ranked = sorted(buckets.values(), key=lambda m: (-final(m), -len(m), m[0]))
    chosen = ranked[rank.offset : rank.offset + rank.limit]
    return [pk for members in chosen for pk in members]


def _assemble(
    subs: list[Picked], flat: list[int], scores: list[np.float32], topks: list[int], names: list[str], grouped: bool
) -> Picked:
    idx = np.asarray(flat, dtype=np.int64)
    pks = np.concatenate([s.pks for s in subs])[idx] if subs else np.empty(0, dtype=np.int64)
    cols: dict[str, np.ndarray] = {}
    for name in names:
        parts = [s.cols[name] for s in subs if name in s.cols]
        if len(parts) == len(subs) and parts:
            cols[name] = np.concatenate(parts)[idx]
    values = None
    if grouped:
        parts = [s.group_values for s in subs if s.group_values is not None]
        values = np.concatenate(parts)[idx] if parts else np.empty(0, dtype=object)
    return Picked(pks, np.asarray(scores, dtype=np.float32), topks, cols, values)
