"""Float vector indexes: scores, recall, filters, small segments, dtypes, serialization."""

from __future__ import annotations

import numpy as np
import pytest

from common.errors import MilvusError
from common.index import brute_force_search, build_index, float32_to_bf16, load_index

FLOAT, F16, BF16, INT8 = 101, 102, 103, 105
RNG = np.random.default_rng(7)


def _clustered(n: int, d: int = 16, clusters: int = 20, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, d)).astype(np.float32) * 4
    return (centers[rng.integers(0, clusters, n)] + rng.standard_normal((n, d))).astype(np.float32)


DATA = _clustered(3000)
QUERIES = _clustered(25, seed=2)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f[f >= 0]) & set(t[t >= 0])) for f, t in zip(found, truth, strict=True))
    return hits / max(1, int((truth >= 0).sum()))


def _exact_scores(x: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    if metric == "L2":
        return ((q[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    if metric == "COSINE":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    return q @ x.T


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_flat_scores_are_milvus_distances(metric: str) -> None:
    idx = build_index("FLAT", metric, {}, DATA, FLOAT)
    for nq in (1, 25):  # both the faiss and the BLAS code paths
        scores, offsets = idx.search(QUERIES[:nq], 10, {})
        full = _exact_scores(DATA, QUERIES[:nq], metric)
        np.testing.assert_allclose(scores, np.take_along_axis(full, offsets, 1), rtol=1e-4, atol=1e-3)
        order = np.sort(full, axis=1)[:, :10] if metric == "L2" else -np.sort(-full, axis=1)[:, :10]
        np.testing.assert_allclose(scores, order, rtol=1e-4, atol=1e-3)
        assert scores.dtype == np.float32 and offsets.dtype == np.int64 and scores.shape == (nq, 10)


CASES = [
    ("FLAT", {}, {}, 1.0),
    ("IVF_FLAT", {"nlist": 16}, {"nprobe": 16}, 1.0),
    ("IVF_FLAT", {"nlist": 16}, {"nprobe": 4}, 0.85),
    ("IVF_SQ8", {"nlist": 16}, {"nprobe": 16}, 0.9),
    ("IVF_PQ", {"nlist": 16, "m": 8, "nbits": 6}, {"nprobe": 16}, 0.4),
    ("HNSW", {"M": 16, "efConstruction": 100}, {"ef": 64}, 0.9),
    ("AUTOINDEX", {}, {}, 0.9),
    # 1-bit codes alone rank poorly at dim 16 (RaBitQ's error shrinks with the dimension): re-ranking
    # 50k candidates on a finer copy recovers the rest
    ("IVF_RABITQ", {"nlist": 16, "refine": "true", "refine_type": "FP32"}, {"nprobe": 16, "refine_k": 50}, 0.95),
    (
        "IVF_RABITQ",
        {"nlist": 16, "refine": True, "refine_type": "sq8"},
        {"nprobe": 16, "refine_k": 50, "rbq_bits_query": 8},
        0.9,
    ),
    ("SCANN", {"nlist": 16}, {"nprobe": 16, "reorder_k": 200}, 0.95),
    ("DISKANN", {}, {"search_list": 64}, 0.9),
]


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
@pytest.mark.parametrize(("index_type", "build", "search", "min_recall"), CASES)
def test_ann_recall_and_round_trip(index_type: str, build: dict, search: dict, min_recall: float, metric: str) -> None:
    idx = build_index(index_type, metric, build, DATA, FLOAT)
    assert idx.count == len(DATA) and idx.dim == 16 and idx.metric_type == metric
    scores, offsets = idx.search(QUERIES, 10, search)
    _, truth = brute_force_search(DATA, QUERIES, metric, 10, FLOAT)
    # graph search under raw inner product (not a metric) is measurably weaker
    assert _recall(offsets, truth) >= (min_recall - 0.15 if metric == "IP" and "IVF" not in index_type else min_recall)
    ascending = metric == "L2"
    assert np.all(np.diff(scores, axis=1) >= -1e-5) if ascending else np.all(np.diff(scores, axis=1) <= 1e-5)
    loaded = load_index(idx.serialize())
    s2, o2 = loaded.search(QUERIES, 10, search)
    np.testing.assert_array_equal(o2, offsets)
    np.testing.assert_allclose(s2, scores, rtol=1e-6)
    assert loaded.index_type == index_type.upper() and loaded.memory_bytes() > 0


@pytest.mark.parametrize(
    "index_type", ["FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "IVF_RABITQ", "SCANN", "DISKANN"]
)
def test_filter_applies_inside_search(index_type: str) -> None:
    build = {"nlist": 16, "m": 4} if index_type.startswith("IVF") or index_type == "SCANN" else {}
    idx = build_index(index_type, "L2", build, DATA, FLOAT)
    valid = np.zeros(len(DATA), dtype=bool)
    valid[1::2] = True
    _, offsets = idx.search(QUERIES, 10, {"nprobe": 16}, valid)
    assert np.all(offsets >= 0) and np.all(offsets % 2 == 1)
    # a very selective filter: only five rows qualify, scattered across the clusters
    few = np.zeros(len(DATA), dtype=bool)
    chosen = RNG.choice(len(DATA), 5, replace=False)
    few[chosen] = True
    scores, offsets = idx.search(QUERIES, 10, {"nprobe": 1, "ef": 10}, few)
    for row in offsets:
        assert set(row[:5]) == set(chosen)
    assert np.all(offsets[:, 5:] == -1) and np.all(np.isinf(scores[:, 5:])) and np.all(scores[:, 5:] > 0)


def test_all_rows_filtered_out() -> None:
    idx = build_index("HNSW", "IP", {}, DATA, FLOAT)
    scores, offsets = idx.search(QUERIES[:2], 3, {}, np.zeros(len(DATA), dtype=bool))
    assert np.all(offsets == -1) and np.all(scores == -np.inf)


def test_k_larger_than_rows_pads_with_missing() -> None:
    x = DATA[:4]
    for index_type in ("FLAT", "IVF_FLAT", "HNSW"):
        idx = build_index(index_type, "IP", {}, x, FLOAT)
        scores, offsets = idx.search(x[:1], 6, {"ef": 6})
        assert sorted(offsets[0, :4]) == [0, 1, 2, 3]
        assert list(offsets[0, 4:]) == [-1, -1] and np.all(scores[0, 4:] == -np.inf)


@pytest.mark.parametrize("index_type", ["IVF_FLAT", "IVF_SQ8", "IVF_PQ", "IVF_RABITQ", "SCANN"])
@pytest.mark.parametrize("rows", [50, 5])
def test_ivf_on_fewer_rows_than_nlist(index_type: str, rows: int) -> None:
    x = DATA[:rows]
    params = {"nlist": 1024, "m": 4, "refine": True, "refine_type": "FP16"}
    idx = load_index(build_index(index_type, "L2", params, x, FLOAT).serialize())
    _, offsets = idx.search(x[:5], 1, {"nprobe": 1, "refine_k": 4, "reorder_k": 10})
    assert list(offsets[:, 0]) == [0, 1, 2, 3, 4]


def test_empty_segment_index() -> None:
    for index_type in ("FLAT", "IVF_FLAT", "HNSW"):
        idx = build_index(index_type, "L2", {}, np.empty((0, 16), np.float32), FLOAT)
        loaded = load_index(idx.serialize())
        scores, offsets = loaded.search(QUERIES[:2], 3, {})
        assert offsets.shape == (2, 3) and np.all(offsets == -1) and np.all(scores == np.inf)


@pytest.mark.parametrize("dtype", [F16, BF16, INT8])
def test_half_precision_and_int8_vectors(dtype: int) -> None:
    if dtype == F16:
        col, widened = DATA.astype(np.float16), DATA.astype(np.float16).astype(np.float32)
    elif dtype == BF16:
        col = float32_to_bf16(DATA)
        widened = (col.astype(np.uint32) << 16).view(np.float32)
    else:
        col = np.clip(np.round(DATA * 10), -128, 127).astype(np.int8)
        widened = col.astype(np.float32)
    queries = col[:5]
    index_type = "HNSW" if dtype == INT8 else "IVF_FLAT"
    idx = load_index(build_index(index_type, "L2", {"nlist": 8}, col, dtype).serialize())
    scores, offsets = idx.search(queries, 5, {"nprobe": 8})
    truth_s, truth_o = brute_force_search(widened, widened[:5], "L2", 5, FLOAT)
    assert list(offsets[:, 0]) == [0, 1, 2, 3, 4]
    assert _recall(offsets, truth_o) >= 0.9
    np.testing.assert_allclose(scores[:, 0], 0.0, atol=1e-3)


def test_bf16_conversion_round_trip() -> None:
    x = np.array([1.0, -2.5, 3.140625, 0.0], dtype=np.float32)
    bits = float32_to_bf16(x)
    assert bits.dtype == np.uint16
    np.testing.assert_array_equal((bits.astype(np.uint32) << 16).view(np.float32), x)


def test_search_argument_errors() -> None:
    idx = build_index("HNSW", "L2", {}, DATA, FLOAT)
    with pytest.raises(MilvusError, match=r"ef\(5\) should be larger than k\(10\)"):
        idx.search(QUERIES, 10, {"ef": 5})
    with pytest.raises(MilvusError, match="dimension"):
        idx.search(np.zeros((1, 8), np.float32), 10, {})
    with pytest.raises(MilvusError, match="topk"):
        idx.search(QUERIES, 0, {})
    with pytest.raises(MilvusError, match="valid mask"):
        idx.search(QUERIES, 3, {}, np.ones(5, dtype=bool))


@pytest.mark.parametrize("index_type", ["FLAT", "HNSW", "IVF_FLAT", "SCANN", "DISKANN"])
def test_range_search_l2_band(index_type: str) -> None:
    idx = build_index(index_type, "L2", {"nlist": 8}, DATA, FLOAT)
    full = _exact_scores(DATA, QUERIES[:3], "L2")
    lo, hi = np.quantile(full, 0.001), np.quantile(full, 0.01)
    params = {"radius": float(hi), "range_filter": float(lo), "nprobe": 8, "ef": 64, "search_list": 64}
    scores, offsets = idx.search(QUERIES[:3], 20, params)
    found = offsets >= 0
    assert found.any()
    assert np.all(scores[found] >= lo - 1e-3) and np.all(scores[found] < hi + 1e-3)
    if index_type == "FLAT":  # exact: every slot filled when enough rows are in the band
        in_band = ((full >= lo) & (full < hi)).sum(axis=1)
        np.testing.assert_array_equal(found.sum(axis=1), np.minimum(in_band, 20))


def test_range_search_ip_and_order_check() -> None:
    idx = build_index("FLAT", "IP", {}, DATA, FLOAT)
    scores, offsets = idx.search(QUERIES[:2], 10, {"radius": 5.0, "range_filter": 20.0})
    found = offsets >= 0
    assert np.all(scores[found] > 5.0) and np.all(scores[found] <= 20.0)
    with pytest.raises(MilvusError, match="range_filter must be greater than radius"):
        idx.search(QUERIES[:2], 10, {"radius": 5.0, "range_filter": 1.0})
