"""Exact numpy models of Milvus's search features, for the e2e tests to compare against.

Brute-force scores per metric, filtered top-k, RRF and weighted fusion (Milvus's formulas in
float32), grouping searches and iterator order. Nothing here imports Quiver: the models are
written from Milvus's documented behaviour, so a test compares two independent answers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

LARGER_IS_BETTER = {"IP", "COSINE"}


def scores(metric: str, vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Milvus's score of every row for one query (L2 is the squared distance)."""
    x = vectors.astype(np.float64)
    q = query.astype(np.float64)
    if metric == "L2":
        return ((x - q) ** 2).sum(axis=1)
    if metric == "IP":
        return x @ q
    if metric == "COSINE":
        return (x @ q) / (np.linalg.norm(x, axis=1) * np.linalg.norm(q))
    raise ValueError(metric)


def ranked(metric: str, vectors: np.ndarray, query: np.ndarray, pks: np.ndarray, mask: np.ndarray | None = None):
    """All (pk, score) rows in Milvus's result order (best first, ties by pk), optionally filtered."""
    s = scores(metric, vectors, query)
    idx = np.arange(len(pks)) if mask is None else np.flatnonzero(mask)
    sign = -1.0 if metric in LARGER_IS_BETTER else 1.0
    order = sorted(idx, key=lambda i: (sign * s[i], pks[i]))
    return [(pks[i].item() if isinstance(pks[i], np.generic) else pks[i], float(s[i])) for i in order]


def topk(metric: str, vectors: np.ndarray, query: np.ndarray, pks: np.ndarray, k: int, mask=None):
    return ranked(metric, vectors, query, pks, mask)[:k]


def rrf(subs: Sequence[list[tuple[object, float]]], k: float) -> dict[object, float]:
    """RRF scores: sum of 1 / (k + rank), rank from 1, in float32 as Milvus sums."""
    acc: dict[object, np.float32] = {}
    for hits in subs:
        for rank, (pk, _) in enumerate(hits, start=1):
            part = np.float32(1.0) / (np.float32(k) + np.float32(rank))
            acc[pk] = np.float32(acc.get(pk, np.float32(0.0)) + part)
    return {pk: float(v) for pk, v in acc.items()}


def normalise(metric: str, score: float, norm: bool, mixed: bool) -> np.float32:
    s = np.float32(score)
    atan = np.float32(math.atan(float(s)))
    pi = np.float32(math.pi)
    if not norm:
        if not mixed or metric in LARGER_IS_BETTER:
            return s
        return np.float32(1.0) - np.float32(2.0) * atan / pi
    if metric == "COSINE":
        return (np.float32(1.0) + s) * np.float32(0.5)
    if metric == "IP":
        return np.float32(0.5) + atan / pi
    return np.float32(1.0) - np.float32(2.0) * atan / pi


def weighted(
    subs: Sequence[list[tuple[object, float]]], metrics: Sequence[str], weights: Sequence[float], norm: bool
) -> dict[object, float]:
    larger = [m in LARGER_IS_BETTER for m in metrics]
    mixed = any(larger) and not all(larger)
    acc: dict[object, np.float32] = {}
    for hits, metric, w in zip(subs, metrics, weights, strict=True):
        for pk, score in hits:
            part = np.float32(w) * normalise(metric, score, norm, mixed)
            acc[pk] = np.float32(acc.get(pk, np.float32(0.0)) + part)
    return {pk: float(v) for pk, v in acc.items()}


def fused_order(acc: dict[object, float], descending: bool = True) -> list[tuple[object, float]]:
    return sorted(acc.items(), key=lambda kv: ((-kv[1] if descending else kv[1]), kv[0]))


def group_search(
    hits: list[tuple[object, float]], group_of: dict[object, object], limit: int, size: int, offset: int = 0
) -> list[tuple[object, float, object]]:
    """Grouping search over the full ranked list: groups by best hit, ``size`` hits each."""
    groups: dict[object, list[tuple[object, float]]] = {}
    for pk, score in hits:
        g = group_of[pk]
        if g not in groups:
            if len(groups) >= offset + limit:
                continue
            groups[g] = []
        if len(groups[g]) < size:
            groups[g].append((pk, score))
    out = []
    for g, members in list(groups.items())[offset:]:
        out.extend((pk, score, g) for pk, score in members)
    return out
