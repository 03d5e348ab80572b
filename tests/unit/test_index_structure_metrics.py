"""SUBSTRUCTURE / SUPERSTRUCTURE on BIN_FLAT, as knowhere answers them (Milvus's L0 binary tests).

A row matches SUBSTRUCTURE when all the query's bits are set in it, SUPERSTRUCTURE when all its
bits are set in the query; matches score 0 in row order, non-matches never come back. Only
BIN_FLAT (and brute force over unindexed rows) takes these metrics.
"""

from __future__ import annotations

import numpy as np
import pytest

from common.errors import MilvusError
from common.index import brute_force_search, build_index, load_index, validate_index_params

BINARY = 100
DIM = 32
RNG = np.random.default_rng(5)
# sparse rows and dense rows, so that both relations have matches
SPARSE = np.packbits(RNG.random((300, DIM)) < 0.15, axis=1)
DENSE = np.packbits(RNG.random((300, DIM)) < 0.85, axis=1)
DATA = np.vstack([SPARSE, DENSE])
QUERIES = np.vstack([SPARSE[:4] | DENSE[4:8] & SPARSE[8:12], DENSE[:4], SPARSE[20:24]])


def _expected(metric: str, valid: np.ndarray | None, k: int) -> list[list[int]]:
    bits_x = np.unpackbits(DATA, axis=1).astype(bool)
    out = []
    for q in np.unpackbits(QUERIES, axis=1).astype(bool):
        # SUBSTRUCTURE: every query bit is set in the row; SUPERSTRUCTURE: every row bit is set in the query
        inside = q[None, :] & ~bits_x if metric == "SUBSTRUCTURE" else bits_x & ~q[None, :]
        match = ~inside.any(axis=1)
        if valid is not None:
            match &= valid
        out.append([int(i) for i in np.flatnonzero(match)[:k]])
    return out


def _check(scores: np.ndarray, offsets: np.ndarray, want: list[list[int]], k: int) -> None:
    for row_s, row_o, w in zip(scores, offsets, want, strict=True):
        assert list(row_o[: len(w)]) == w
        assert np.all(row_s[: len(w)] == 0.0)
        assert np.all(row_o[len(w) :] == -1) and np.all(row_s[len(w) :] == np.inf)
    assert any(len(w) == k for w in want) and any(0 < len(w) < k for w in want)


@pytest.mark.parametrize("metric", ["SUBSTRUCTURE", "SUPERSTRUCTURE"])
def test_bin_flat_structure_metrics(metric: str) -> None:
    k = 20
    idx = load_index(build_index("BIN_FLAT", metric, {}, DATA, BINARY).serialize())
    _check(*idx.search(QUERIES, k, {}), _expected(metric, None, k), k)
    valid = np.arange(len(DATA)) % 2 == 0
    _check(*idx.search(QUERIES, k, {}, valid), _expected(metric, valid, k), k)
    # brute force over rows without an index (growing and small segments) agrees
    _check(*brute_force_search(DATA, QUERIES, metric, k, BINARY), _expected(metric, None, k), k)


@pytest.mark.parametrize("index_type", ["BIN_IVF_FLAT", "HNSW", "AUTOINDEX"])
def test_structure_metrics_only_on_bin_flat(index_type: str) -> None:
    assert validate_index_params("BIN_FLAT", "substructure", {}, BINARY, DIM)["metric_type"] == "SUBSTRUCTURE"
    with pytest.raises(MilvusError) as err:
        validate_index_params(index_type, "SUPERSTRUCTURE", {"nlist": 8}, BINARY, DIM)
    assert err.value.message == "metric type SUPERSTRUCTURE not found or not supported, supported: [HAMMING JACCARD]"
    with pytest.raises(MilvusError):
        validate_index_params("FLAT", "SUBSTRUCTURE", {}, 101, DIM)  # never on float vectors
