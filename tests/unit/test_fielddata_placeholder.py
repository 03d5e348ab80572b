"""decode_placeholder_group on the PlaceholderGroup bytes pymilvus builds for search()."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from pymilvus import DataType as DT
from pymilvus.grpc_gen import common_pb2

from common.errors import Code, MilvusError
from common.fielddata import bfloat16_to_float32, decode_placeholder_group, float32_to_bfloat16
from common.schema import DataType, Field
from tests.unit.test_fielddata_support import placeholder

FLOAT = Field(101, "vec", DataType.FloatVector, dim=4)
HALF = Field(102, "half", DataType.Float16Vector, dim=4)
BRAIN = Field(103, "brain", DataType.BFloat16Vector, dim=4)
BITS = Field(104, "bits", DataType.BinaryVector, dim=16)
INT8 = Field(105, "i8", DataType.Int8Vector, dim=4)
SPARSE = Field(106, "sp", DataType.SparseFloatVector)


def test_float_lists_and_numpy_arrays() -> None:
    queries = [[0.1, 0.2, 0.3, 0.4], [1.0, 2.0, 3.0, 4.0]]
    out = decode_placeholder_group(placeholder(queries), FLOAT)
    assert out.dtype == np.float32 and out.shape == (2, 4)
    np.testing.assert_array_equal(out, np.array(queries, dtype=np.float32))
    arr = np.random.default_rng(0).random((3, 4))  # float64 numpy is sent as float32 too
    out = decode_placeholder_group(placeholder(list(arr)), FLOAT)
    np.testing.assert_array_equal(out, arr.astype(np.float32))
    assert decode_placeholder_group(placeholder(list(arr)), FLOAT).flags.writeable


def test_half_precision_fields() -> None:
    q = np.array([[0.5, 1.0, -2.0, 4.0]], dtype=np.float16)
    out = decode_placeholder_group(placeholder(list(q)), HALF)
    assert out.dtype == np.float16 and out.tolist() == q.tolist()
    # float32 queries against a float16/bfloat16 field are converted
    out = decode_placeholder_group(placeholder([[0.5, 1.0, -2.0, 4.0]]), HALF)
    assert out.dtype == np.float16 and out.tolist() == q.tolist()
    bits = float32_to_bfloat16(np.array([[0.5, 1.0, -2.0, 4.0]], dtype=np.float32))
    out = decode_placeholder_group(placeholder([bits[0].tobytes()], DT.BFLOAT16_VECTOR), BRAIN)
    assert out.dtype == np.uint16 and bfloat16_to_float32(out).tolist() == [[0.5, 1.0, -2.0, 4.0]]
    out = decode_placeholder_group(placeholder([[0.5, 1.0, -2.0, 4.0]]), BRAIN)
    assert out.tolist() == bits.tolist()


def test_binary_int8_and_sparse() -> None:
    out = decode_placeholder_group(placeholder([b"\x01\x80", b"\xff\x00"]), BITS)
    assert out.dtype == np.uint8 and out.tolist() == [[1, 128], [255, 0]]
    q = np.array([[1, -2, 3, -128]], dtype=np.int8)
    out = decode_placeholder_group(placeholder(list(q)), INT8)
    assert out.dtype == np.int8 and out.tolist() == q.tolist()
    out = decode_placeholder_group(placeholder([{5: 0.5, 1: 2.0}, {}]), SPARSE)
    assert out.dtype == object and out.tolist() == [{1: 2.0, 5: 0.5}, {}]


def _raises(data: bytes, field: Field, message: str) -> None:
    with pytest.raises(MilvusError) as err:
        decode_placeholder_group(data, field)
    assert err.value.code == Code.PARAMETER_INVALID
    assert message in err.value.message, err.value.message


def test_wrong_dimension() -> None:
    _raises(placeholder([[0.1, 0.2, 0.3]]), FLOAT,
            "vector dimension mismatch, expected vector size(byte) 16, actual 12.")
    _raises(placeholder([[0.1] * 4, [0.1] * 5]), FLOAT, "expected vector size(byte) 16, actual 20.")
    _raises(placeholder([b"\x01"]), BITS, "expected vector size(byte) 2, actual 1.")


def test_wrong_vector_type() -> None:
    _raises(placeholder([b"\x01\x02"]), FLOAT,
            "vector type must be the same, field vec - type FloatVector, search info type BinaryVector")
    _raises(placeholder([[0.1] * 16]), BITS, "search info type FloatVector")
    _raises(placeholder([{1: 1.0}]), FLOAT, "search info type SparseFloatVector")
    _raises(placeholder([[0.1] * 4]), Field(1, "id", DataType.Int64), "field id - type Int64")


def test_nan_and_empty_and_malformed() -> None:
    _raises(placeholder([[0.1, float("nan"), 0.3, 0.4]]), FLOAT, "value 'NaN' is not a number or infinity")
    _raises(placeholder([np.array([1, np.inf, 0, 0], dtype=np.float16)]), HALF,
            "float16 vector contain nan or infinity value.")
    empty = common_pb2.PlaceholderGroup(placeholders=[common_pb2.PlaceholderValue(
        tag="$0", type=common_pb2.PlaceholderType.FloatVector)]).SerializeToString()
    _raises(empty, FLOAT,
            "nq (number of search vector per search request) should be in range [1, 16384], but got 0")
    _raises(b"\xff\xff\xff", FLOAT, "failed to unmarshal placeholder group")
    two = common_pb2.PlaceholderGroup(placeholders=[
        common_pb2.PlaceholderValue(tag="$0", type=common_pb2.PlaceholderType.FloatVector,
                                    values=[struct.pack("<4f", 1, 2, 3, 4)])] * 2).SerializeToString()
    _raises(two, FLOAT, "placeholder group should contain exactly one placeholder, got 2")
    _raises(placeholder([{2: 1.0, 1: 1.0}]).replace(struct.pack("<I", 1), struct.pack("<I", 9)), SPARSE,
            "unsorted or same indices in sparse float vector")
