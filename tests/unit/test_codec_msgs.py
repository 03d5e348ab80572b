"""The wire codec and DML messages round-trip every column kind without Python lists."""

from __future__ import annotations

import numpy as np

from common import msgs
from common.codec import pack, unpack


def test_numeric_arrays_round_trip_as_buffers() -> None:
    a = np.random.default_rng(0).random((100, 16)).astype(np.float32)
    out = unpack(pack({"a": a, "i": np.arange(5, dtype=np.int64)}))
    assert out["a"].dtype == np.float32 and out["a"].shape == (100, 16)
    assert np.array_equal(out["a"], a)
    assert out["i"].tolist() == [0, 1, 2, 3, 4]


def test_object_columns_round_trip() -> None:
    strings = np.array(["a", "bé", ""], dtype=object)
    json_vals = np.array([{"k": [1, 2]}, None, "x"], dtype=object)
    arrays = np.empty(2, dtype=object)
    arrays[0], arrays[1] = np.arange(3), np.arange(3)  # equal lengths must not become 2-D
    out = unpack(pack({"s": strings, "j": json_vals, "a": arrays}))
    assert out["s"].tolist() == ["a", "bé", ""]
    assert out["j"][0] == {"k": [1, 2]} and out["j"][1] is None
    assert out["a"].shape == (2,) and list(out["a"][1]) == [0, 1, 2]


def test_messages_round_trip() -> None:
    ins = msgs.InsertMsg(
        "ch_1v0",
        1,
        2,
        3,
        99,
        np.arange(3, dtype=np.int64),
        {100: np.array([7, 8, 9]), 101: np.ones((3, 4), np.float32)},
        {100: np.array([True, False, True])},
    )
    got = msgs.decode(msgs.encode(ins))
    assert isinstance(got, msgs.InsertMsg)
    assert got.num_rows == 3 and got.segment_id == 3 and got.timestamp == 99
    assert np.array_equal(got.columns[101], np.ones((3, 4)))
    assert got.valid[100].tolist() == [True, False, True]
    dele = msgs.decode(msgs.encode(msgs.DeleteMsg("ch_1v0", 1, -1, 100, np.array(["a", "b"], dtype=object))))
    assert isinstance(dele, msgs.DeleteMsg) and list(dele.pks) == ["a", "b"] and dele.partition_id == -1
    tt = msgs.decode(msgs.encode(msgs.TimeTickMsg(123)))
    assert isinstance(tt, msgs.TimeTickMsg) and tt.timestamp == 123


def test_split_rows_keeps_messages_small() -> None:
    pieces = msgs.split_rows(10_000, 1024)
    per = msgs.MAX_MESSAGE_BYTES // 1024
    assert all(p.stop - p.start <= per for p in pieces)
    assert sum(p.stop - p.start for p in pieces) == 10_000


def test_two_dimensional_object_arrays_keep_their_shape() -> None:
    pks = np.array([["a", "b"], ["c", ""]], dtype=object)
    out = unpack(pack(pks))
    assert out.shape == (2, 2) and out.tolist() == [["a", "b"], ["c", ""]]
