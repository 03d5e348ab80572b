"""encode_column / encode_ids: round trips through decode_insert, and pymilvus reads the result."""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus.client import field_data_extractors as fx
from pymilvus.grpc_gen import schema_pb2

from common.fielddata import decode_ids, decode_insert, encode_column, encode_ids, valid_name
from common.schema import DataType, Field, Schema
from tests.unit.test_fielddata_support import all_types_rows, all_types_schema, row_insert


def _decoded(n: int = 5) -> tuple[Schema, dict[str, np.ndarray]]:
    schema = all_types_schema()
    req = row_insert(schema, all_types_rows(n))
    return schema, decode_insert(schema, req.fields_data, n)


def _same(a: np.ndarray, b: np.ndarray) -> None:
    if a.dtype == object:
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            if isinstance(x, np.ndarray):
                assert x.dtype == y.dtype and x.tolist() == y.tolist()
            else:
                assert x == y
    else:
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_every_type_round_trips_through_encode_and_decode() -> None:
    schema, cols = _decoded()
    fds = [encode_column(f, cols[f.name], cols.get(valid_name(f.name))) for f in schema.fields]
    assert fds[-1].is_dynamic and fds[-1].field_name == "$meta" and fds[-1].type == DataType.JSON
    assert [fd.field_id for fd in fds] == [f.field_id for f in schema.fields]
    again = decode_insert(schema, fds, 5)
    assert list(again) == list(cols)
    for name in cols:
        _same(again[name], cols[name])


def test_pymilvus_reads_encoded_columns() -> None:
    schema, cols = _decoded(4)
    rows = all_types_rows(4)
    for f in schema.fields:
        fd = encode_column(f, cols[f.name])
        values = fx.decode_range(fd, 0, 4)
        if f.name == "$meta":
            assert values == [{"extra": i} for i in range(4)]
        elif f.dtype == DataType.FloatVector:
            np.testing.assert_allclose(np.array(values), np.stack([r["fv"] for r in rows]))
        elif f.dtype == DataType.Float16Vector:
            assert [np.frombuffer(v, dtype=np.float16).tolist() for v in values] == cols["hv"].tolist()
        elif f.dtype == DataType.BinaryVector:
            assert values == [r["bv"] for r in rows]
        elif f.dtype == DataType.SparseFloatVector:
            assert values == [r["sv"] for r in rows]
        elif f.dtype in (DataType.BFloat16Vector, DataType.Int8Vector):
            assert b"".join(values) == cols[f.name].tobytes()
        elif f.dtype == DataType.Float:
            np.testing.assert_allclose(values, [r["f"] for r in rows])
        elif f.dtype == DataType.Array:
            assert values == [list(r[f.name]) for r in rows]
        else:
            assert values == [r[f.name] for r in rows], f.name


def test_nullable_scalars_are_full_length_and_vectors_compressed() -> None:
    valid = np.array([True, False, True])
    score = Field(102, "score", DataType.Double, nullable=True)
    fd = encode_column(score, np.array([1.5, 0.0, 2.5]), valid)
    assert list(fd.valid_data) == [True, False, True] and list(fd.scalars.double_data.data) == [1.5, 0.0, 2.5]
    assert fx.decode_range(fd, 0, 3) == [1.5, None, 2.5]
    name = Field(103, "name", DataType.VarChar, max_length=9, nullable=True)
    fd = encode_column(name, np.array(["a", None, "c"], dtype=object), valid)
    assert list(fd.scalars.string_data.data) == ["a", "", "c"]
    doc = Field(104, "doc", DataType.JSON, nullable=True)
    fd = encode_column(doc, np.array([{"a": 1}, None, [2]], dtype=object), valid)
    assert fx.decode_range(fd, 0, 3) == [{"a": 1}, None, [2]]
    tags = Field(105, "tags", DataType.Array, element_type=DataType.Int32, max_capacity=3, nullable=True)
    cells = np.empty(3, dtype=object)
    cells[:] = [np.array([1, 2], dtype=np.int32), np.empty(0, dtype=np.int32), np.array([3], dtype=np.int32)]
    fd = encode_column(tags, cells, valid)
    assert fd.scalars.array_data.element_type == DataType.Int32
    assert fx.decode_range(fd, 0, 3) == [[1, 2], None, [3]]
    vec = Field(106, "vec", DataType.FloatVector, dim=2, nullable=True)
    fd = encode_column(vec, np.array([[1, 2], [0, 0], [3, 4]], dtype=np.float32), valid)
    assert list(fd.vectors.float_vector.data) == [1, 2, 3, 4] and fd.vectors.dim == 2
    assert [fx.decode_cell(fd, i) for i in range(3)] == [[1.0, 2.0], None, [3.0, 4.0]]


def test_empty_columns_encode() -> None:
    vec = Field(101, "v", DataType.FloatVector, dim=3)
    fd = encode_column(vec, np.zeros((0, 3), dtype=np.float32))
    assert fd.vectors.dim == 3 and len(fd.vectors.float_vector.data) == 0
    fd = encode_column(Field(102, "x", DataType.Int64), np.zeros(0, dtype=np.int64))
    assert fd.type == DataType.Int64 and len(fd.scalars.long_data.data) == 0


def test_ids_round_trip() -> None:
    ids = encode_ids(np.array([3, -1, 2**62], dtype=np.int64), DataType.Int64)
    assert list(ids.int_id.data) == [3, -1, 2**62]
    out = decode_ids(ids)
    assert out.dtype == np.int64 and out.tolist() == [3, -1, 2**62]
    sids = encode_ids(np.array(["a", "é"], dtype=object), DataType.VarChar)
    assert list(sids.str_id.data) == ["a", "é"]
    back = decode_ids(sids)
    assert back.dtype == object and back.tolist() == ["a", "é"]
    empty = decode_ids(schema_pb2.IDs())
    assert empty.dtype == np.int64 and empty.size == 0
    with pytest.raises(ValueError):
        encode_ids(np.array([1.0]), DataType.Double)
