"""Brute force search (growing segments) and sparse vector search."""

from __future__ import annotations

import numpy as np
import pytest

from common.errors import MilvusError
from common.index import SparseRows, brute_force_search, build_index, load_index
from common.index.metrics import normalize_rows
from common.index.unit_rows import UnitRows

FLOAT, F16, BINARY, SPARSE = 101, 102, 100, 104
RNG = np.random.default_rng(11)
X = RNG.standard_normal((1500, 24)).astype(np.float32)


def _naive(x: np.ndarray, q: np.ndarray, metric: str, k: int, valid: np.ndarray | None = None) -> np.ndarray:
    if metric == "L2":
        s = ((q[:, None, :] - x[None]) ** 2).sum(-1)
    else:
        if metric == "COSINE":
            x = x / np.linalg.norm(x, axis=1, keepdims=True)
            q = q / np.linalg.norm(q, axis=1, keepdims=True)
        s = -(q @ x.T)
    if valid is not None:
        s[:, ~valid] = np.inf
    return np.argsort(s, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
@pytest.mark.parametrize("nq", [1, 3, 8, 40])  # faiss path (< 4 queries) and BLAS path
def test_float_matches_naive(metric: str, nq: int) -> None:
    q = RNG.standard_normal((nq, 24)).astype(np.float32)
    scores, offsets = brute_force_search(X, q, metric, 7, FLOAT)
    np.testing.assert_array_equal(offsets, _naive(X, q, metric, 7))
    assert scores.shape == (nq, 7) and scores.dtype == np.float32
    valid = RNG.random(len(X)) < 0.3
    _, offsets = brute_force_search(X, q, metric, 7, FLOAT, valid)
    np.testing.assert_array_equal(offsets, _naive(X, q, metric, 7, valid))


@pytest.mark.parametrize("nq", [1, 10])
def test_l2_scores_exact_and_padding(nq: int) -> None:
    x = X[:5]
    q = X[:nq] + 0.5
    scores, offsets = brute_force_search(x, q, "L2", 8, FLOAT)
    assert np.all(offsets[:, 5:] == -1) and np.all(scores[:, 5:] == np.inf)
    expect = ((q[:, None, :] - x[None]) ** 2).sum(-1)
    np.testing.assert_allclose(scores[:, :5], np.take_along_axis(expect, offsets[:, :5], 1), rtol=1e-4)


def test_float16_columns_and_empty_inputs() -> None:
    col = X.astype(np.float16)
    _, offsets = brute_force_search(col, col[:4], "L2", 1, F16)
    assert list(offsets[:, 0]) == [0, 1, 2, 3]
    scores, offsets = brute_force_search(np.empty((0, 24), np.float32), X[:2], "IP", 3, FLOAT)
    assert np.all(offsets == -1) and np.all(scores == -np.inf)
    scores, offsets = brute_force_search(X, X[:2], "L2", 3, FLOAT, np.zeros(len(X), bool))
    assert np.all(offsets == -1) and np.all(scores == np.inf)


def test_argument_errors() -> None:
    with pytest.raises(MilvusError, match="metric type"):
        brute_force_search(X, X[:1], "HAMMING", 3, FLOAT)
    with pytest.raises(MilvusError, match="dimension"):
        brute_force_search(X, X[:1, :8], "L2", 3, FLOAT)
    with pytest.raises(MilvusError, match="topk"):
        brute_force_search(X, X[:1], "L2", 0, FLOAT)


def test_brute_force_range_search() -> None:
    scores, offsets = brute_force_search(X, X[:2], "L2", 50, FLOAT, params={"radius": 30.0, "range_filter": 10.0})
    found = offsets >= 0
    assert found.any() and np.all(scores[found] >= 10.0) and np.all(scores[found] < 30.0)
    full = ((X[:2, None, :] - X[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(found.sum(1), np.minimum(((full >= 10) & (full < 30)).sum(1), 50))


def test_binary_brute_force() -> None:
    codes = RNG.integers(0, 256, (300, 4), dtype=np.uint8)
    scores, offsets = brute_force_search(codes, codes[:3], "HAMMING", 4, BINARY)
    assert list(offsets[:, 0]) == [0, 1, 2] and np.all(scores[:, 0] == 0)
    bits = np.unpackbits(codes, axis=1)
    ham = (bits[:3, None, :] != bits[None]).sum(-1)
    np.testing.assert_array_equal(scores, np.sort(ham, axis=1)[:, :4])


def _sparse_rows(n: int, seed: int) -> list[dict[int, float]]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        dims = rng.choice(200, rng.integers(1, 12), replace=False)
        rows.append({int(d): float(v) for d, v in zip(dims, rng.random(len(dims)) + 0.01, strict=True)})
    return rows


SPARSE_ROWS = _sparse_rows(400, 1)
SPARSE_Q = _sparse_rows(6, 2)


def _sparse_naive(rows: list[dict[int, float]], q: dict[int, float]) -> np.ndarray:
    return np.array([sum(v * q.get(d, 0.0) for d, v in r.items()) for r in rows])


def test_sparse_brute_force_matches_naive() -> None:
    col = np.empty(len(SPARSE_ROWS), dtype=object)
    col[:] = SPARSE_ROWS
    scores, offsets = brute_force_search(col, SPARSE_Q, "IP", 5, SPARSE)
    for qi, q in enumerate(SPARSE_Q):
        naive = _sparse_naive(SPARSE_ROWS, q)
        np.testing.assert_allclose(scores[qi], np.sort(naive)[::-1][:5], rtol=1e-5)
        np.testing.assert_allclose(naive[offsets[qi]], scores[qi], rtol=1e-5)


def test_sparse_rows_without_overlap_are_not_results() -> None:
    rows = [{1: 1.0}, {2: 1.0}, {1: 0.5, 3: 2.0}]
    scores, offsets = brute_force_search(rows, [{1: 2.0}], "IP", 3, SPARSE)
    assert list(offsets[0]) == [0, 2, -1]
    np.testing.assert_allclose(scores[0, :2], [2.0, 1.0])
    assert scores[0, 2] == -np.inf


@pytest.mark.parametrize("index_type", ["SPARSE_INVERTED_INDEX", "SPARSE_WAND", "AUTOINDEX"])
def test_sparse_index(index_type: str) -> None:
    idx = load_index(build_index(index_type, "IP", {}, SPARSE_ROWS, SPARSE).serialize())
    valid = np.arange(len(SPARSE_ROWS)) % 2 == 0
    scores, offsets = idx.search(SPARSE_Q, 5, {}, valid)
    for qi, q in enumerate(SPARSE_Q):
        naive = np.where(valid, _sparse_naive(SPARSE_ROWS, q), 0.0)
        expect = np.sort(naive)[::-1][:5]
        np.testing.assert_allclose(scores[qi][offsets[qi] >= 0], expect[expect > 0], rtol=1e-5)
        assert np.all(offsets[qi][offsets[qi] >= 0] % 2 == 0)


def test_sparse_drop_ratios() -> None:
    rows = [{0: 1.0, 1: 0.01}, {1: 5.0}]
    idx = build_index("SPARSE_INVERTED_INDEX", "IP", {"drop_ratio_build": 0.3}, rows, SPARSE)
    _, offsets = idx.search([{1: 1.0}], 2, {})
    assert list(offsets[0]) == [1, -1]  # the 0.01 weight was dropped at build
    idx = build_index("SPARSE_INVERTED_INDEX", "IP", {}, rows, SPARSE)
    _, offsets = idx.search([{0: 1.0, 1: 0.001}], 2, {"drop_ratio_search": 0.5})
    assert list(offsets[0]) == [0, -1]  # the query's smaller weight was dropped


def test_sparse_rows_validation() -> None:
    csr = SparseRows.from_rows([{3: 1.0, 7: 2.0}, {}])
    assert list(csr.indptr) == [0, 2, 2] and list(csr.indices) == [3, 7]
    with pytest.raises(MilvusError):
        SparseRows.from_rows([{-1: 1.0}])
    with pytest.raises(MilvusError):
        SparseRows.from_rows([[1, 2]])


@pytest.mark.parametrize("index_type,build,search", [
    ("FLAT", {}, {}),
    ("HNSW", {"M": 16, "efConstruction": 200}, {"ef": 3000}),
    ("IVF_FLAT", {"nlist": 8}, {"nprobe": 8}),
])
def test_cosine_brute_force_scores_equal_the_indexes_bit_for_bit(
    index_type: str, build: dict[str, int], search: dict[str, int]
) -> None:
    """With the rows normalised once (UnitRows), a segment's COSINE scores do not move when its index
    replaces brute force (a search iterator paging by the last score would repeat a hit)."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3000, 32)) * rng.uniform(0.1, 10, (3000, 1))).astype(np.float32)
    q = rng.standard_normal((1, 32)).astype(np.float32)
    idx = build_index(index_type, "COSINE", build, x, FLOAT)
    s_idx, o_idx = idx.search(q, 50, search)
    unit = UnitRows()
    brute_force_search(x[:1000], q, "COSINE", 10, FLOAT, unit_rows=unit)  # a growing segment...
    s_bf, o_bf = brute_force_search(x, q, "COSINE", 50, FLOAT, unit_rows=unit)  # ...grown since
    assert o_bf[0].tolist() == o_idx[0].tolist()
    assert s_bf.tobytes() == s_idx.tobytes()
    assert unit.rows(x).tobytes() == normalize_rows(x).tobytes()
