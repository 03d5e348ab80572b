"""Exact k-nearest-neighbour kernels shared by brute force search and the flat indexes.

Measured on 100k x 128 float32, 2 cores: for 1-3 queries faiss's knn_L2sqr /
knn_inner_product on the caller's array (no copy, an IDSelectorBitmap for the filter,
one OpenMP thread) take ~1.5 ms per query; from 4 queries on one BLAS matmul plus faiss's
heap selection wins (nq=8: 2.5 ms vs 12 ms; nq=100: 27 ms vs 74 ms for faiss.knn).
Binary hamming uses faiss's IndexBinaryFlat; jaccard uses faiss's pairwise hamming plus
popcounts (jaccard distance = h / |a | b|). Every kernel returns faiss-style (distances,
labels): ascending metrics as-is, descending ones as similarity, label -1 and +/-inf
where fewer than k rows qualify.
"""

from __future__ import annotations

import os
from typing import Any

import faiss as _faiss
import numpy as np

faiss: Any = _faiss  # the bundled stubs are incomplete (SearchParametersHNSW, hammings, ...)

SMALL_BATCH = 20  # below this many queries faiss runs single-threaded
BLAS_MIN_QUERIES = 4  # from this many queries one matmul beats faiss's per-query scan
MAX_THREADS = max(1, faiss.omp_get_max_threads() or os.cpu_count() or 1)
_BLOCK_ELEMS = 1 << 24  # entries of one (queries x rows) score block, 64 MB of float32


def set_threads(nq: int | None) -> None:
    """faiss OpenMP threads for the calling thread: one for small batches, all otherwise.

    ``None`` means a build (all threads). The setting is per calling thread in faiss.
    """
    faiss.omp_set_num_threads(1 if nq is not None and nq < SMALL_BATCH else MAX_THREADS)


class Selector:
    """A faiss IDSelectorBitmap over a bool mask; keeps the bitmap alive while in use."""

    def __init__(self, valid: np.ndarray) -> None:
        self.bitmap = np.packbits(np.asarray(valid, dtype=bool), bitorder="little")
        self.sel = faiss.IDSelectorBitmap(len(valid), faiss.swig_ptr(self.bitmap))


def empty_result(nq: int, k: int, ascending: bool) -> tuple[np.ndarray, np.ndarray]:
    fill = np.inf if ascending else -np.inf
    return np.full((nq, k), fill, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)


def finalize(dist: np.ndarray, labels: np.ndarray, ascending: bool) -> tuple[np.ndarray, np.ndarray]:
    """Cast to (float32, int64) and put +/-inf where a label is -1 (faiss uses +/-FLT_MAX)."""
    d = np.asarray(dist, dtype=np.float32)
    i = np.asarray(labels, dtype=np.int64)
    missing = i < 0
    if missing.any():
        d = d.copy()
        d[missing] = np.inf if ascending else -np.inf
    return d, i


def topk_rows(
    scores: np.ndarray, k: int, ascending: bool = True, row_ids: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row best k of a (nq, n) float32 matrix, sorted; +inf (ascending) / -inf excluded.

    Selection runs in faiss's heaps (C++, one thread): ~3 ms for 100 x 100k, where
    numpy's argpartition takes ~19 ms. ``row_ids`` maps column positions to labels.
    """
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    nq, n = scores.shape
    dist = np.empty((nq, k), dtype=np.float32)
    labels = np.empty((nq, k), dtype=np.int64)
    heaps = faiss.float_maxheap_array_t() if ascending else faiss.float_minheap_array_t()
    heaps.nh, heaps.k = nq, k
    heaps.val, heaps.ids = faiss.swig_ptr(dist), faiss.swig_ptr(labels)
    # Single-threaded on purpose (one core selects ~1M entries/ms): an OpenMP team left
    # spinning here starves numpy's BLAS threads on the next matmul (0.8 ms -> 7 ms measured
    # on 2 cores), and this runs right after one.
    faiss.omp_set_num_threads(1)
    heaps.heapify()
    if n:
        heaps.addn(n, faiss.swig_ptr(scores), 0, 0, nq)
    heaps.reorder()
    dist, labels = finalize(dist, labels, ascending)
    if row_ids is not None:
        found = labels >= 0
        labels[found] = row_ids[labels[found]]
    return dist, labels


def float_knn(
    x: np.ndarray,
    q: np.ndarray,
    k: int,
    inner_product: bool,
    valid: np.ndarray | None = None,
    x_norms: np.ndarray | None = None,
    row_scale: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact kNN over float32 rows ``x``: squared L2 (ascending) or inner product (descending).

    ``x_norms`` are cached squared norms (L2). ``row_scale`` multiplies each row's inner
    product (COSINE over unnormalised rows: 1 / |x|), which saves normalising a copy of x.
    """
    n, d = x.shape
    nq = q.shape[0]
    if n == 0 or k <= 0:
        return empty_result(nq, max(k, 0), not inner_product)
    if nq < BLAS_MIN_QUERIES and row_scale is None:
        return _faiss_knn(x, q, k, inner_product, valid)
    return _blas_knn(x, q, k, inner_product, valid, x_norms, row_scale)


def _faiss_knn(
    x: np.ndarray, q: np.ndarray, k: int, inner_product: bool, valid: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    n, d = x.shape
    nq = q.shape[0]
    set_threads(nq)
    dist = np.empty((nq, k), dtype=np.float32)
    labels = np.empty((nq, k), dtype=np.int64)
    selector = Selector(valid) if valid is not None else None
    sel = selector.sel if selector is not None else None
    xp, qp = faiss.swig_ptr(x), faiss.swig_ptr(q)
    if inner_product:
        faiss.knn_inner_product(qp, xp, d, nq, n, k, faiss.swig_ptr(dist), faiss.swig_ptr(labels), sel)
    else:
        faiss.knn_L2sqr(qp, xp, d, nq, n, k, faiss.swig_ptr(dist), faiss.swig_ptr(labels), None, sel)
    del selector
    return finalize(dist, labels, not inner_product)


def _blas_knn(
    x: np.ndarray,
    q: np.ndarray,
    k: int,
    inner_product: bool,
    valid: np.ndarray | None,
    x_norms: np.ndarray | None,
    row_scale: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One matmul per block of queries, then heap selection.

    L2 ranks rows by ``|x|^2 - 2 q.x`` (|q|^2 is added to the k winners only); a filter is
    folded into the per-row bias (+inf / -inf), so each block costs one extra pass at most.
    """
    n = x.shape[0]
    nq = q.shape[0]
    bias: np.ndarray | None
    if inner_product:
        bias = None if valid is None else np.where(valid, np.float32(0), np.float32(-np.inf))
    else:
        bias = x_norms if x_norms is not None else np.einsum("ij,ij->i", x, x)
        if valid is not None:
            bias = np.where(valid, bias, np.float32(np.inf)).astype(np.float32)
    block = max(1, _BLOCK_ELEMS // max(n, 1))
    out_d: list[np.ndarray] = []
    out_i: list[np.ndarray] = []
    for start in range(0, nq, block):
        qb = q[start : start + block]
        scores = (qb @ x.T) if inner_product else ((qb * np.float32(-2.0)) @ x.T)
        if row_scale is not None:
            scores *= row_scale[None, :]
        if bias is not None:
            scores += bias[None, :]
        d, i = topk_rows(scores, k, ascending=not inner_product)
        if not inner_product:
            found = i >= 0
            d += np.einsum("ij,ij->i", qb, qb)[:, None]
            np.maximum(d, 0.0, out=d, where=found)
        out_d.append(d)
        out_i.append(i)
    return np.vstack(out_d), np.vstack(out_i)


def slice_positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + n)`` for every (s, n) pair, without a Python loop."""
    total = int(lengths.sum())
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return np.repeat(np.asarray(starts, dtype=np.int64) - offsets, lengths) + np.arange(total)


def popcounts(codes: np.ndarray) -> np.ndarray:
    """Set bits per row of packed uint8 codes, int32."""
    return np.bitwise_count(codes).sum(axis=1, dtype=np.int32)


def binary_knn(
    codes: np.ndarray,
    q: np.ndarray,
    k: int,
    jaccard: bool,
    valid: np.ndarray | None = None,
    flat: faiss.IndexBinaryFlat | None = None,
    code_pop: np.ndarray | None = None,
    row_ids: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact kNN over packed binary rows: hamming (int distances as float32) or jaccard distance.

    ``flat`` is an optional prebuilt IndexBinaryFlat over ``codes`` (hamming only);
    ``row_ids`` relabels results (used by the IVF lists, which hold permuted rows).
    """
    n, nbytes = codes.shape
    nq = q.shape[0]
    if n == 0 or k <= 0:
        return empty_result(nq, max(k, 0), True)
    set_threads(nq)
    if not jaccard and row_ids is None:
        if flat is None:
            flat = faiss.IndexBinaryFlat(nbytes * 8)
            flat.add(codes)
        params = None
        selector = Selector(valid) if valid is not None else None
        if selector is not None:
            params = faiss.SearchParameters()
            params.sel = selector.sel
        dist, labels = flat.search(q, k, params=params)
        del selector
        return finalize(dist.astype(np.float32), labels, True)
    if code_pop is None and jaccard:
        code_pop = popcounts(codes)
    invalid_cols = None if valid is None else ~np.asarray(valid, dtype=bool)
    block = max(1, _BLOCK_ELEMS // max(n, 1))
    out_d: list[np.ndarray] = []
    out_i: list[np.ndarray] = []
    for start in range(0, nq, block):
        qb = np.ascontiguousarray(q[start : start + block])
        ham = np.empty((qb.shape[0], n), dtype=np.int32)
        faiss.hammings(faiss.swig_ptr(qb), faiss.swig_ptr(codes), qb.shape[0], n, nbytes, faiss.swig_ptr(ham))
        scores = ham.astype(np.float32)
        if jaccard:
            union2 = scores + code_pop[None, :]  # type: ignore[index]
            union2 += popcounts(qb)[:, None]
            # jaccard distance = h / |a | b| = 2h / (|a| + |b| + h); two empty sets are identical
            np.divide(2.0 * scores, union2, out=scores, where=union2 > 0)
        if invalid_cols is not None:
            scores[:, invalid_cols] = np.inf
        d, i = topk_rows(scores, k, True, row_ids)
        out_d.append(d)
        out_i.append(i)
    return np.vstack(out_d), np.vstack(out_i)


def structure_knn(
    codes: np.ndarray, q: np.ndarray, k: int, superstructure: bool, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """SUBSTRUCTURE / SUPERSTRUCTURE over packed binary rows, as knowhere's BIN_FLAT answers them.

    A row matches SUBSTRUCTURE when every bit of the query is set in it (q & row == q),
    SUPERSTRUCTURE when every bit of the row is set in the query (q & row == row). The first
    ``k`` matching rows in row order come back with distance 0; the remaining slots are empty
    (label -1, distance +inf), since knowhere never ranks non-matches.
    """
    n = codes.shape[0]
    nq = q.shape[0]
    dist, labels = empty_result(nq, max(k, 0), True)
    if n == 0 or k <= 0:
        return dist, labels
    keep = None if valid is None else np.asarray(valid, dtype=bool)
    block = max(1, _BLOCK_ELEMS // max(codes.size, 1))
    for start in range(0, nq, block):
        qb = q[start : start + block]
        both = codes[None, :, :] & qb[:, None, :]
        target = codes[None, :, :] if superstructure else qb[:, None, :]
        match = (both == target).all(axis=2)
        if keep is not None:
            match &= keep[None, :]
        for j, row in enumerate(match):
            hits = np.flatnonzero(row)[:k]
            labels[start + j, : len(hits)] = hits
            dist[start + j, : len(hits)] = 0.0
    return dist, labels
