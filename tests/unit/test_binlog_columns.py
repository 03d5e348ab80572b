"""Insert binlogs: round trips of every column type, nulls, empty columns, decode speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from common.binlog import decode_column, encode_column
from common.errors import MilvusError
from common.schema import Field

RNG = np.random.default_rng(5)
N = 50


def _obj(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def _field(dtype: int, **kw: object) -> Field:
    return Field(field_id=kw.pop("field_id", 101), name=str(kw.pop("name", "f")), dtype=dtype, **kw)  # type: ignore[arg-type]


SCALAR_CASES = [
    (1, RNG.random(N) < 0.5),
    (2, RNG.integers(-128, 127, N, dtype=np.int8)),
    (3, RNG.integers(-30000, 30000, N, dtype=np.int16)),
    (4, RNG.integers(-(2**31), 2**31 - 1, N, dtype=np.int32)),
    (5, RNG.integers(-(2**62), 2**62, N, dtype=np.int64)),
    (10, RNG.standard_normal(N).astype(np.float32)),
    (11, RNG.standard_normal(N)),
]


@pytest.mark.parametrize(("dtype", "column"), SCALAR_CASES)
def test_scalar_round_trip(dtype: int, column: np.ndarray) -> None:
    out, valid = decode_column(_field(dtype), encode_column(_field(dtype), column))
    assert valid is None
    assert out.dtype == column.dtype
    np.testing.assert_array_equal(out, column)


@pytest.mark.parametrize(("dtype", "column"), SCALAR_CASES)
def test_scalar_nulls(dtype: int, column: np.ndarray) -> None:
    field = _field(dtype, nullable=True)
    valid = RNG.random(N) < 0.6
    out, got_valid = decode_column(field, encode_column(field, column, valid))
    assert got_valid is not None
    np.testing.assert_array_equal(got_valid, valid)
    np.testing.assert_array_equal(out[valid], column[valid])
    assert np.all(out[~valid] == 0)


def test_system_fields_are_plain_int64() -> None:
    for fid, name in ((0, "RowID"), (1, "Timestamp")):
        field = Field(field_id=fid, name=name, dtype=5)
        ts = np.arange(10, dtype=np.int64) + (450000000000 << 18)
        out, valid = decode_column(field, encode_column(field, ts))
        np.testing.assert_array_equal(out, ts)
        assert valid is None and out.dtype == np.int64


def test_varchar_unicode_and_nulls() -> None:
    values = _obj(["", "abc", "héllo wörld", "日本語", "x" * 1000])
    out, _ = decode_column(_field(21), encode_column(_field(21), values))
    assert out.dtype == object and list(out) == list(values)
    field = _field(21, nullable=True)
    valid = np.array([True, False, True, False, True])
    out, got = decode_column(field, encode_column(field, values, valid))
    assert list(out) == ["", "", "héllo wörld", "", "x" * 1000]
    np.testing.assert_array_equal(got, valid)


def test_json_values_round_trip() -> None:
    values = _obj([{"a": 1, "b": [1, 2, {"c": None}]}, [1, 2], "text", 3.5, None, True, {"ü": "ñ"}, []])
    out, _ = decode_column(_field(23), encode_column(_field(23), values))
    assert out.shape == (len(values),) and out.dtype == object
    assert list(out) == list(values)
    assert isinstance(out[1], list) and out[1] == [1, 2]


def test_json_nulls_and_numpy_values() -> None:
    field = _field(23, nullable=True)
    values = _obj([{"n": np.int64(3)}, {"x": 1}, np.array([1.5, 2.0])])
    valid = np.array([True, False, True])
    out, got = decode_column(field, encode_column(field, values, valid))
    assert out[0] == {"n": 3} and out[1] is None and out[2] == [1.5, 2.0]
    np.testing.assert_array_equal(got, valid)


@pytest.mark.parametrize(
    ("element_type", "rows"),
    [
        (5, [np.array([1, 2, 3]), np.array([], dtype=np.int64), np.array([-(2**40)])]),
        (10, [np.array([1.5], np.float32), np.array([2.5, 3.5], np.float32), np.array([], np.float32)]),
        (1, [np.array([True, False]), np.array([], bool), np.array([True])]),
        (21, [_obj(["a", "bc"]), _obj([]), _obj(["é"])]),
    ],
)
def test_array_round_trip(element_type: int, rows: list) -> None:
    field = _field(22, element_type=element_type, max_capacity=10)
    out, _ = decode_column(field, encode_column(field, _obj(rows)))
    assert len(out) == len(rows)
    for got, want in zip(out, rows, strict=True):
        assert isinstance(got, np.ndarray)
        assert list(got) == list(want)
        if element_type != 21:
            assert got.dtype == np.asarray(want).dtype


def test_array_nulls() -> None:
    field = _field(22, element_type=4, max_capacity=4, nullable=True)
    rows = _obj([np.array([1, 2], np.int32), np.array([3], np.int32), None])
    valid = np.array([True, False, False])
    out, got = decode_column(field, encode_column(field, rows, valid))
    assert list(out[0]) == [1, 2] and len(out[1]) == 0 and len(out[2]) == 0
    np.testing.assert_array_equal(got, valid)


VECTOR_CASES = [
    (101, 16, lambda n: RNG.standard_normal((n, 16)).astype(np.float32)),
    (102, 16, lambda n: RNG.standard_normal((n, 16)).astype(np.float16)),
    (103, 16, lambda n: RNG.integers(0, 2**16, (n, 16)).astype(np.uint16)),
    (100, 64, lambda n: RNG.integers(0, 256, (n, 8)).astype(np.uint8)),
    (105, 16, lambda n: RNG.integers(-128, 128, (n, 16)).astype(np.int8)),
]


@pytest.mark.parametrize(("dtype", "dim", "make"), VECTOR_CASES)
def test_vector_round_trip(dtype: int, dim: int, make) -> None:  # type: ignore[no-untyped-def]
    field = _field(dtype, dim=dim)
    column = make(N)
    out, valid = decode_column(field, encode_column(field, column))
    assert valid is None and out.dtype == column.dtype and out.shape == column.shape
    np.testing.assert_array_equal(out, column)
    empty, _ = decode_column(field, encode_column(field, column[:0]))
    assert empty.shape == (0, column.shape[1]) and empty.dtype == column.dtype


@pytest.mark.parametrize(("dtype", "dim", "make"), VECTOR_CASES)
def test_vector_nulls(dtype: int, dim: int, make) -> None:  # type: ignore[no-untyped-def]
    field = _field(dtype, dim=dim, nullable=True)
    column = make(N)
    valid = RNG.random(N) < 0.5
    out, got = decode_column(field, encode_column(field, column, valid))
    np.testing.assert_array_equal(got, valid)
    np.testing.assert_array_equal(out[valid], column[valid])
    assert np.all(out[~valid] == 0)


def test_vector_dim_checked() -> None:
    with pytest.raises(MilvusError, match="dim"):
        encode_column(_field(101, dim=8), np.zeros((3, 4), np.float32))


def test_sparse_round_trip_and_nulls() -> None:
    rows = [{1: 0.5, 70000: 2.0}, {}, {4294967294: 1.25}, {0: -1.0, 3: 3.0, 9: 0.125}]
    field = _field(104)
    out, _ = decode_column(field, encode_column(field, _obj(rows)))
    assert list(out) == rows
    field = _field(104, nullable=True)
    valid = np.array([True, True, False, True])
    out, got = decode_column(field, encode_column(field, _obj(rows), valid))
    assert list(out) == [rows[0], {}, {}, rows[3]]
    np.testing.assert_array_equal(got, valid)


@pytest.mark.parametrize("dtype", [1, 5, 11, 21, 23, 104])
def test_empty_columns(dtype: int) -> None:
    field = _field(dtype, element_type=5)
    column = np.empty(0, dtype=object) if dtype in (21, 23, 104) else np.empty(0)
    out, valid = decode_column(field, encode_column(field, column))
    assert len(out) == 0 and valid is None
    field = _field(dtype, nullable=True)
    out, valid = decode_column(field, encode_column(field, column, np.empty(0, bool)))
    assert len(out) == 0 and valid is not None and len(valid) == 0


def test_empty_array_column() -> None:
    field = _field(22, element_type=5, max_capacity=3)
    out, _ = decode_column(field, encode_column(field, np.empty(0, dtype=object)))
    assert len(out) == 0


def test_type_mismatch_and_garbage() -> None:
    data = encode_column(_field(5), np.arange(3))
    with pytest.raises(MilvusError, match="data type"):
        decode_column(_field(21), data)
    with pytest.raises(MilvusError) as info:
        decode_column(_field(5), b"not parquet at all")
    assert info.value.code == 1001


def test_nullable_field_without_mask_is_all_valid() -> None:
    field = _field(5, nullable=True)
    _, valid = decode_column(field, encode_column(field, np.arange(4)))
    assert valid is not None and valid.all()


def test_float_vector_decode_is_fast_and_zero_copy() -> None:
    field = _field(101, dim=128)
    column = RNG.standard_normal((100_000, 128), dtype=np.float32)
    data = encode_column(field, column)
    decode_column(field, data)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        out, _ = decode_column(field, data)
        best = min(best, time.perf_counter() - start)
    assert np.array_equal(out, column)
    assert not out.flags.owndata  # a view of the decoded Arrow buffer, not a copy
    assert best < 0.05, f"decode took {best * 1000:.1f} ms"
