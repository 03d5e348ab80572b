"""Top-k merging across segments and nodes, and query row merging."""

from __future__ import annotations

import numpy as np

from common.reduce import Hits, merge_hits, merge_rows


def _hits(scores: list[list[float]], pks: list[list[int]], field: list[int]) -> Hits:
    s = np.array(scores, dtype=np.float32)
    return Hits(s, np.array(pks, dtype=np.int64), np.isfinite(s), {"f": np.array(field)})


def test_merge_ascending_with_offset_and_fields() -> None:
    a = _hits([[0.1, 0.5, np.inf]], [[1, 2, 0]], [10, 20, 0])
    b = _hits([[0.2, 0.3, 0.9]], [[3, 4, 5]], [30, 40, 50])
    out = merge_hits([a, b], 3, ascending=True)
    assert out.pks.tolist() == [[1, 3, 4]]
    assert out.fields["f"].tolist() == [10, 30, 40]
    paged = merge_hits([a, b], 2, ascending=True, offset=1)
    assert paged.pks.tolist() == [[3, 4]]


def test_merge_descending_dedups_pks() -> None:
    a = _hits([[0.9, 0.5]], [[7, 8]], [1, 2])
    b = _hits([[0.8, 0.7]], [[7, 9]], [3, 4])
    out = merge_hits([a, b], 3, ascending=False)
    assert out.pks.tolist() == [[7, 9, 8]]
    assert out.scores[0].tolist() == [np.float32(0.9), np.float32(0.7), np.float32(0.5)]
    assert out.filled.tolist() == [[True, True, True]]


def test_merge_pads_when_too_few() -> None:
    a = _hits([[0.1, np.inf]], [[1, 0]], [5, 0])
    out = merge_hits([a], 2, ascending=True)
    assert out.filled.tolist() == [[True, False]]


def test_merge_rows_sorts_dedups_and_pages() -> None:
    p1 = {"id": np.array([5, 1, 3]), "x": np.array([50, 10, 30])}
    p2 = {"id": np.array([2, 3]), "x": np.array([20, 30])}
    out = merge_rows([p1, p2], "id", limit=3, offset=1)
    assert out["id"].tolist() == [2, 3, 5]
    assert out["x"].tolist() == [20, 30, 50]
    assert merge_rows([{}, {"id": np.array([], dtype=np.int64)}], "id", None) == {}
