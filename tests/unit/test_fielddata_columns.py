"""Column helpers: empty columns per type, row selection and concatenation, bfloat16 bits."""

from __future__ import annotations

import numpy as np
import pytest

from common.fielddata import (
    bfloat16_to_float32,
    concat_columns,
    empty_column,
    float32_to_bfloat16,
    num_rows,
    parse_sparse_rows,
    sparse_row_bytes,
    take_rows,
    valid_name,
)
from common.schema import DataType, Field

EXPECTED = [
    (Field(1, "b", DataType.Bool), np.bool_, (3,), False),
    (Field(1, "i", DataType.Int16), np.int16, (3,), 0),
    (Field(1, "d", DataType.Double), np.float64, (3,), 0.0),
    (Field(1, "s", DataType.VarChar, max_length=3), object, (3,), ""),
    (Field(1, "j", DataType.JSON), object, (3,), None),
    (Field(1, "$meta", DataType.JSON, is_dynamic=True), object, (3,), {}),
    (Field(1, "fv", DataType.FloatVector, dim=4), np.float32, (3, 4), None),
    (Field(1, "bv", DataType.BinaryVector, dim=24), np.uint8, (3, 3), None),
    (Field(1, "hv", DataType.Float16Vector, dim=2), np.float16, (3, 2), None),
    (Field(1, "bf", DataType.BFloat16Vector, dim=2), np.uint16, (3, 2), None),
    (Field(1, "i8", DataType.Int8Vector, dim=2), np.int8, (3, 2), None),
    (Field(1, "sp", DataType.SparseFloatVector), object, (3,), {}),
]


@pytest.mark.parametrize("field,dtype,shape,cell", EXPECTED, ids=[e[0].name for e in EXPECTED])
def test_empty_column_per_type(field: Field, dtype: object, shape: tuple[int, ...], cell: object) -> None:
    col = empty_column(field, 3)
    assert col.dtype == dtype and col.shape == shape
    if cell is not None or col.dtype == object:
        assert col[0] == cell
    else:
        assert not col.any()
    assert empty_column(field).shape[0] == 0


def test_empty_array_rows_have_element_dtype_and_cells_are_distinct() -> None:
    col = empty_column(Field(1, "a", DataType.Array, element_type=DataType.Int64, max_capacity=2), 2)
    assert col[0].dtype == np.int64 and col[0].size == 0 and col[0] is not col[1]
    meta = empty_column(Field(1, "$meta", DataType.JSON, is_dynamic=True), 2)
    meta[0]["x"] = 1
    assert meta[1] == {}


def test_take_and_concat() -> None:
    arrays = np.empty(3, dtype=object)
    arrays[:] = [np.array([1]), np.array([2, 3]), np.array([], dtype=np.int64)]
    cols = {"id": np.array([10, 11, 12]), "v": np.arange(6, dtype=np.float32).reshape(3, 2), "a": arrays,
            "x": np.array([1.0, 0.0, 2.0]), valid_name("x"): np.array([True, False, True])}
    picked = take_rows(cols, np.array([2, 0]))
    assert picked["id"].tolist() == [12, 10] and picked["v"].tolist() == [[4, 5], [0, 1]]
    assert picked["a"][1].tolist() == [1] and picked["x.valid"].tolist() == [True, True]
    masked = take_rows(cols, cols["x.valid"])
    assert masked["id"].tolist() == [10, 12]
    joined = concat_columns([cols, picked])
    assert num_rows(joined) == 5 and joined["v"].shape == (5, 2)
    assert joined["a"].dtype == object and joined["a"][4].tolist() == [1]
    assert concat_columns([]) == {} and num_rows({}) == 0
    assert concat_columns([cols])["id"] is cols["id"]
    with pytest.raises(ValueError):
        concat_columns([cols, {"id": np.array([1])}])


def test_bfloat16_conversion_rounds_to_nearest_even() -> None:
    values = np.array([1.0, -2.5, 3.140625, 1.00390625, 1.01171875], dtype=np.float32)
    bits = float32_to_bfloat16(values)
    assert bits.dtype == np.uint16
    assert bits.tolist()[:3] == [0x3F80, 0xC020, 0x4049]
    assert bits[3] == 0x3F80  # exactly half way: ties to even (down)
    assert bits[4] == 0x3F82  # half way above an odd mantissa: ties to even (up)
    np.testing.assert_array_equal(bfloat16_to_float32(bits[:3]), values[:3])


def test_sparse_rows_round_trip() -> None:
    rows = [{7: 0.25, 2: 1.5}, {}, {0: 3.0}]
    parsed = parse_sparse_rows([sparse_row_bytes(r) for r in rows])
    assert parsed.tolist() == rows
    assert sparse_row_bytes({2: 1.5}) == b"\x02\x00\x00\x00\x00\x00\xc0\x3f"
