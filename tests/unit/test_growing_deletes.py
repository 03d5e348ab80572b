"""Deletes on growing segments find their rows through the pk order (services/querynode/segment.py).

A growing segment keeps its primary keys sorted up to some row and scans only the rows appended
since; the order is extended (merged) as the segment grows. Checked against an exact model: a
delete at ``ts`` marks every row of its keys inserted before ``ts`` that no earlier delete marked,
whatever the mix of appends, repeated keys (upserts) and deletes.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus import DataType

from common.schema import Field, Schema
from services.querynode import segment as segment_module
from services.querynode.columns import ColumnStore
from services.querynode.segment import DELETED, Segment


def growing_segment(kind: str) -> Segment:
    """An empty growing segment with an INT64 (``int``) or VARCHAR (``str``) primary key "id"."""
    pk = Field(
        field_id=100,
        name="id",
        dtype=DataType.INT64 if kind == "int" else DataType.VARCHAR,
        is_primary=True,
        **({} if kind == "int" else {"max_length": 16}),
    )
    schema = Schema("c", "", (pk, Field(field_id=101, name="v", dtype=DataType.FLOAT_VECTOR, dim=2)))
    return Segment(1, 1, "dml_0_1v0", schema, False, ColumnStore())


def _keys(kind: str, values: np.ndarray) -> np.ndarray:
    return values.astype(np.int64) if kind == "int" else np.array([f"k{v}" for v in values], dtype=object)


@pytest.mark.parametrize("kind", ["int", "str"])
@pytest.mark.parametrize("unsorted_rows", [1, 7, 64])
def test_growing_deletes_match_an_exact_model(kind: str, unsorted_rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segment_module, "GROWING_UNSORTED_ROWS", unsorted_rows)  # many merges
    rng = np.random.default_rng(7 + unsorted_rows)
    seg = growing_segment(kind)
    key_col: list[np.ndarray] = []
    ts_col: list[np.ndarray] = []
    ts = 100
    merges = 0
    for _ in range(120):
        ts += 1
        if rng.random() < 0.6:  # an insert; keys drawn from a small range, so keys repeat (upserts)
            b = int(rng.integers(1, 40))
            values = rng.integers(0, 300, b)
            seg.append({"id": _keys(kind, values), "v": np.zeros((b, 2), np.float32)}, ts, b)
            key_col.append(values)
            ts_col.append(np.full(b, ts))
        else:  # a delete of a few keys, some never inserted; sometimes one stamped in the past
            when = ts if rng.random() < 0.8 else ts - int(rng.integers(1, 20))
            covered = 0 if seg._pk_order is None else len(seg._pk_order[1])
            seg.apply_delete(_keys(kind, rng.integers(0, 320, int(rng.integers(1, 6)))), when)
            merges += seg._pk_order is not None and len(seg._pk_order[1]) != covered
    assert merges > 3  # the order was extended many times, not built once

    # the model replays the same operations over plain arrays
    rng = np.random.default_rng(7 + unsorted_rows)
    model_keys = np.concatenate(key_col)
    model_ts = np.concatenate(ts_col)
    deleted = np.zeros(len(model_keys), dtype=np.int64)
    ts, n = 100, 0
    for _ in range(120):
        ts += 1
        if rng.random() < 0.6:
            b = int(rng.integers(1, 40))
            rng.integers(0, 300, b)
            n += b
        else:
            when = ts if rng.random() < 0.8 else ts - int(rng.integers(1, 20))
            keys = rng.integers(0, 320, int(rng.integers(1, 6)))
            hit = np.isin(model_keys[:n], keys) & (model_ts[:n] < when)
            hit &= (deleted[:n] == 0) | (deleted[:n] > when)
            deleted[:n][hit] = when
    cols, rows = seg.store.snapshot()
    assert rows == len(model_keys)
    np.testing.assert_array_equal(cols[DELETED][:rows], deleted)
    assert deleted.any() and not deleted.all()


@pytest.mark.parametrize("kind", ["int", "str"])
def test_every_row_of_a_key_is_found_across_the_sorted_and_unsorted_rows(kind: str) -> None:
    seg = growing_segment(kind)
    seg.append({"id": _keys(kind, np.array([5, 1, 5, 3] * 2000)), "v": np.zeros((8000, 2), np.float32)}, 10, 8000)
    seg.apply_delete(_keys(kind, np.array([9])), 11)  # builds the order over the 8,000 rows
    assert seg._pk_order is not None and len(seg._pk_order[1]) == 8000
    seg.append({"id": _keys(kind, np.array([5, 2])), "v": np.zeros((2, 2), np.float32)}, 12, 2)
    assert seg.apply_delete(_keys(kind, np.array([5, 5, 2])), 13) == 4002  # 4,000 sorted + 2 scanned
    assert len(seg._pk_order[1]) == 8000  # two new rows: scanned, not merged yet
    assert seg.apply_delete(_keys(kind, np.array([5])), 14) == 0  # the earliest delete stays
    assert seg.apply_delete(np.array([1], dtype=np.int64) if kind == "str" else np.array(["1"]), 15) == 0
