"""Turn numpy columns back into the FieldData and IDs messages of query and search results.

Query, Search and the insert/delete responses answer with ``schemapb.FieldData`` per output
field and ``schemapb.IDs`` for primary keys, in the layout pymilvus decodes: scalar columns
full-length with a ``valid_data`` mask for nullable fields, vector columns holding only the
set rows, Array rows tagged with their element type, and the dynamic "$meta" column as JSON
with ``is_dynamic``. Packed float payloads are written as raw bytes in one protobuf merge
(0.5 ms for 10k x 128 floats, against 40 ms for ``extend``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from pymilvus.grpc_gen import schema_pb2
from pymilvus.grpc_gen.schema_pb2 import DataType

from common import timestamptz
from common.schema import Field
from common.timestamptz import DEFAULT_TIMEZONE

from .columns import STRING_TYPES, object_column
from .decode_scalar import SCALAR_SLOTS
from .vectors import sparse_dim, sparse_row_bytes


def _packed(values: np.ndarray, dtype: str) -> bytes:
    """A FloatArray/DoubleArray message body: field 1, packed, little-endian values."""
    raw = np.ascontiguousarray(values, dtype=dtype).tobytes()
    size, header = len(raw), bytearray(b"\x0a")
    while size >= 0x80:
        header.append((size & 0x7F) | 0x80)
        size >>= 7
    header.append(size)
    return bytes(header) + raw


def encode_column(
    field: Field, column: np.ndarray, valid: np.ndarray | None = None, timezone: str = DEFAULT_TIMEZONE
) -> schema_pb2.FieldData:
    """One output column as FieldData; ``valid`` (True = set) marks nulls of a nullable field.
    Timestamptz values go out as ISO 8601 strings in ``timezone``, as Milvus's proxy sends them."""
    fd = schema_pb2.FieldData(type=field.dtype, field_name=field.name, field_id=field.field_id,
                              is_dynamic=field.is_dynamic)
    mask = None if valid is None else np.asarray(valid, dtype=np.bool_)
    if mask is not None:
        fd.valid_data.extend(mask.tolist())
    if field.is_vector:
        _encode_vectors(fd.vectors, field, column if mask is None or mask.all() else column[mask])
    else:
        _encode_scalars(fd.scalars, field, column, mask, timezone)
    return fd


def _encode_scalars(out: schema_pb2.ScalarField, field: Field, column: np.ndarray,
                    mask: np.ndarray | None, timezone: str) -> None:
    dtype = field.dtype
    if dtype == DataType.Timestamptz:
        values = np.asarray(column, dtype=np.int64)
        out.string_data.data.extend(timestamptz.format_one(int(v), timezone) if m else ""
                                    for v, m in _with_mask(values.tolist(), mask))
    elif dtype == DataType.Float:
        out.float_data.MergeFromString(_packed(column, "<f4"))
    elif dtype == DataType.Double:
        out.double_data.MergeFromString(_packed(column, "<f8"))
    elif dtype in (DataType.Bool, DataType.Int8, DataType.Int16, DataType.Int32, DataType.Int64):
        getattr(out, SCALAR_SLOTS[dtype]).data.extend(np.asarray(column).tolist())
    elif dtype in STRING_TYPES:
        cells = column.tolist()
        if mask is not None or any(c is None for c in cells):
            cells = [c if c is not None and (mask is None or m) else "" for c, m in _with_mask(cells, mask)]
        out.string_data.data.extend(cells)
    elif dtype == DataType.JSON:
        out.json_data.data.extend(orjson.dumps(c, option=orjson.OPT_SERIALIZE_NUMPY) if m else b""
                                  for c, m in _with_mask(column.tolist(), mask))
    elif dtype == DataType.Array:
        out.array_data.element_type = field.element_type
        slot = SCALAR_SLOTS[field.element_type]
        for cell, m in _with_mask(list(column), mask):
            row = out.array_data.data.add()
            if m and cell is not None:
                getattr(row, slot).data.extend(np.asarray(cell).tolist())
    else:
        raise ValueError(f"cannot encode a column of data type {dtype}")


def _with_mask(cells: list[Any], mask: np.ndarray | None) -> Any:
    return zip(cells, [True] * len(cells) if mask is None else mask.tolist(), strict=True)


def _encode_vectors(out: schema_pb2.VectorField, field: Field, rows: np.ndarray) -> None:
    dtype = field.dtype
    if dtype == DataType.SparseFloatVector:
        cells = list(rows)
        out.dim = sparse_dim(cells)
        out.sparse_float_vector.dim = out.dim
        out.sparse_float_vector.contents.extend(sparse_row_bytes(r) for r in cells)
        return
    out.dim = field.dim
    if dtype == DataType.FloatVector:
        out.float_vector.MergeFromString(_packed(rows, "<f4"))
    elif dtype == DataType.BinaryVector:
        out.binary_vector = np.ascontiguousarray(rows, dtype=np.uint8).tobytes()
    elif dtype == DataType.Float16Vector:
        out.float16_vector = np.ascontiguousarray(rows, dtype="<f2").tobytes()
    elif dtype == DataType.BFloat16Vector:
        out.bfloat16_vector = np.ascontiguousarray(rows, dtype="<u2").tobytes()
    elif dtype == DataType.Int8Vector:
        out.int8_vector = np.ascontiguousarray(rows, dtype=np.int8).tobytes()
    else:
        raise ValueError(f"cannot encode a column of data type {dtype}")


def encode_ids(pks: np.ndarray, dtype: int) -> schema_pb2.IDs:
    """Primary keys as ``schemapb.IDs`` (int_id for Int64, str_id for VarChar)."""
    ids = schema_pb2.IDs()
    if dtype == DataType.Int64:
        ids.int_id.data.extend(np.asarray(pks, dtype=np.int64).tolist())
    elif dtype in STRING_TYPES:
        ids.str_id.data.extend(list(pks))
    else:
        raise ValueError(f"primary keys of data type {dtype} are not supported")
    return ids


def decode_ids(ids: schema_pb2.IDs) -> np.ndarray:
    """``schemapb.IDs`` as an int64 array or an object array of str (empty int64 when unset)."""
    which = ids.WhichOneof("id_field")
    if which == "str_id":
        return object_column(ids.str_id.data, len(ids.str_id.data))
    if which == "int_id":
        return np.asarray(ids.int_id.data, dtype=np.int64)
    return np.empty(0, dtype=np.int64)
