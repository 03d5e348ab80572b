"""Binary vector indexes: hamming and jaccard scores, IVF lists, filters, serialization."""

from __future__ import annotations

import numpy as np
import pytest

from common.index import brute_force_search, build_index, load_index

BINARY = 100
DIM = 64


def _codes(n: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # a few prototypes with bit flips, so lists and neighbours are meaningful
    protos = rng.integers(0, 256, (12, DIM // 8), dtype=np.uint8)
    flips = np.packbits(rng.random((n, DIM)) < 0.1, axis=1)
    return protos[rng.integers(0, 12, n)] ^ flips


DATA = _codes(2000)
QUERIES = _codes(12, seed=4)


def _bits(x: np.ndarray) -> np.ndarray:
    return np.unpackbits(x, axis=1).astype(bool)


def _exact(x: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    a, b = _bits(q)[:, None, :], _bits(x)[None, :, :]
    if metric == "HAMMING":
        return (a ^ b).sum(-1).astype(np.float64)
    inter, union = (a & b).sum(-1), (a | b).sum(-1)
    return np.where(union > 0, 1 - inter / np.maximum(union, 1), 0.0)


@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
@pytest.mark.parametrize("index_type", ["BIN_FLAT", "HNSW", "AUTOINDEX"])
def test_exact_binary_indexes(index_type: str, metric: str) -> None:
    idx = load_index(build_index(index_type, metric, {}, DATA, BINARY).serialize())
    scores, offsets = idx.search(QUERIES, 10, {})
    full = _exact(DATA, QUERIES, metric)
    np.testing.assert_allclose(scores, np.take_along_axis(full, offsets, 1), rtol=1e-5)
    np.testing.assert_allclose(scores, np.sort(full, axis=1)[:, :10], rtol=1e-5)


@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
def test_bin_ivf_flat(metric: str) -> None:
    idx = build_index("BIN_IVF_FLAT", metric, {"nlist": 16}, DATA, BINARY)
    assert idx.engine == "BIN_IVF_FLAT"
    full = np.sort(_exact(DATA, QUERIES, metric), axis=1)[:, :10]
    scores, _ = idx.search(QUERIES, 10, {"nprobe": 16})  # every list probed: exact
    np.testing.assert_allclose(scores, full, rtol=1e-5)
    few, _ = idx.search(QUERIES, 10, {"nprobe": 2})
    assert np.all(few >= full - 1e-6)  # never better than exact
    loaded = load_index(idx.serialize())
    s2, o2 = loaded.search(QUERIES, 10, {"nprobe": 2})
    np.testing.assert_allclose(s2, few)
    _, o1 = idx.search(QUERIES, 10, {"nprobe": 2})
    np.testing.assert_array_equal(o1, o2)


@pytest.mark.parametrize("index_type", ["BIN_FLAT", "BIN_IVF_FLAT", "HNSW"])
@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
def test_binary_filter(index_type: str, metric: str) -> None:
    idx = build_index(index_type, metric, {"nlist": 16}, DATA, BINARY)
    valid = np.arange(len(DATA)) % 3 == 0
    _, offsets = idx.search(QUERIES, 10, {"nprobe": 4}, valid)
    assert np.all(offsets >= 0) and np.all(offsets % 3 == 0)
    few = np.zeros(len(DATA), dtype=bool)
    few[[5, 700, 1999]] = True
    scores, offsets = idx.search(QUERIES, 5, {"nprobe": 1}, few)
    for row in offsets:
        assert set(row[:3]) == {5, 700, 1999}
    assert np.all(offsets[:, 3:] == -1) and np.all(scores[:, 3:] == np.inf)


def test_bin_ivf_small_segment() -> None:
    idx = build_index("BIN_IVF_FLAT", "HAMMING", {"nlist": 1024}, DATA[:20], BINARY)
    scores, offsets = idx.search(DATA[:3], 1, {"nprobe": 1})
    assert list(offsets[:, 0]) == [0, 1, 2] and np.all(scores[:, 0] == 0)


def test_empty_vectors_jaccard_identical() -> None:
    zeros = np.zeros((3, DIM // 8), dtype=np.uint8)
    scores, _ = brute_force_search(zeros, zeros[:1], "JACCARD", 2, BINARY)
    np.testing.assert_array_equal(scores, [[0.0, 0.0]])


def test_binary_query_dim_checked() -> None:
    idx = build_index("BIN_FLAT", "HAMMING", {}, DATA, BINARY)
    with pytest.raises(Exception, match="dim"):
        idx.search(np.zeros((1, 4), np.uint8), 3, {})
