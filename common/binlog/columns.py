"""encode_column / decode_column: one field's column <-> one Parquet insert binlog.

The column layout is the shared data model (see common.fielddata.columns). Arrow types:
scalars as themselves (Timestamptz as int64 microseconds); VarChar/String/Text as utf8; JSON
as utf8 JSON text; Array as a list of its element type; dense vectors as fixed-size binary (one value per row, so the
decoded data buffer is viewed as a (n, dim) numpy array without copying); sparse vectors
as binary rows of little-endian (uint32 index, float32 value) pairs, as Milvus stores
them. Nulls are Arrow nulls; decoding puts the model's placeholders in null cells (0, "",
None, empty rows, zero vectors) and returns the validity mask separately.
"""

from __future__ import annotations

import json
from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa

from common.errors import invalid
from common.schema import Field

from .parquet import read_table, single_chunk, write_table

BOOL, INT8, INT16, INT32, INT64, FLOAT, DOUBLE = 1, 2, 3, 4, 5, 10, 11
STRING, VARCHAR, ARRAY, JSON_T, TEXT = 20, 21, 22, 23, 25
TIMESTAMPTZ = 26  # int64 microseconds since the epoch, UTC
BINARY_VECTOR, FLOAT_VECTOR, FLOAT16_VECTOR, BFLOAT16_VECTOR, SPARSE_VECTOR, INT8_VECTOR = (
    100,
    101,
    102,
    103,
    104,
    105,
)

SCALARS: dict[int, Any] = {
    BOOL: np.bool_,
    INT8: np.int8,
    INT16: np.int16,
    INT32: np.int32,
    INT64: np.int64,
    FLOAT: np.float32,
    DOUBLE: np.float64,
    TIMESTAMPTZ: np.int64,
}
STRINGS = frozenset({STRING, VARCHAR, TEXT})
VECTORS: dict[int, Any] = {
    FLOAT_VECTOR: np.float32,
    FLOAT16_VECTOR: np.float16,
    BFLOAT16_VECTOR: np.uint16,
    BINARY_VECTOR: np.uint8,
    INT8_VECTOR: np.int8,
}
_SPARSE_PAIR = np.dtype([("index", "<u4"), ("value", "<f4")])
COLUMN = "value"


def row_width(field: Field) -> int:
    """Numpy columns per row of a dense vector field (dim, or dim // 8 for binary)."""
    return field.dim // 8 if field.dtype == BINARY_VECTOR else field.dim


def encode_column(field: Field, column: Any, valid: np.ndarray | None = None) -> bytes:
    """One insert binlog (Parquet bytes) holding ``column``; ``valid`` marks non-null rows."""
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    arr = _to_arrow(field, column, mask)
    meta = {"field_id": field.field_id, "dtype": field.dtype, "dim": field.dim, "rows": len(arr)}
    return write_table({COLUMN: arr}, meta, raw=field.dtype in VECTORS)


def decode_column(field: Field, data: bytes | memoryview) -> tuple[np.ndarray, np.ndarray | None]:
    """(column, valid) from an insert binlog; ``valid`` is None unless the field is nullable.

    Dense vector columns are views of the buffer Parquet decoded into (no further copy).
    """
    table, meta = read_table(data)
    if "dtype" in meta and int(meta["dtype"]) != field.dtype:
        raise invalid(f"binlog of field {field.name} holds data type {meta['dtype']}, schema says {field.dtype}")
    arr = single_chunk(table, COLUMN)
    valid = None
    if field.nullable:
        valid = np.ones(len(arr), dtype=bool) if arr.null_count == 0 else arr.is_valid().to_numpy(zero_copy_only=False)
    return _from_arrow(field, arr), valid


# ---- encoding -------------------------------------------------------------------------


def _to_arrow(field: Field, column: Any, mask: np.ndarray | None) -> pa.Array:
    dt = field.dtype
    if dt in SCALARS:
        return pa.array(np.asarray(column, dtype=SCALARS[dt]), mask=mask)
    if dt in STRINGS:
        values = np.asarray(column, dtype=object)
        if mask is not None:
            values = values.copy()
            values[mask] = None
        return pa.array(values, type=pa.string())
    if dt == JSON_T:
        texts = [
            None if m else json.dumps(v, ensure_ascii=False, default=_json_default) for v, m in _cells(column, mask)
        ]
        return pa.array(texts, type=pa.string())
    if dt == ARRAY:
        return _array_to_arrow(field, column, mask)
    if dt in VECTORS:
        return _vector_to_arrow(field, column, mask)
    if dt == SPARSE_VECTOR:
        return _sparse_to_arrow(column, mask)
    raise invalid(f"field {field.name}: data type {dt} cannot be stored in a binlog")


def _cells(column: Any, mask: np.ndarray | None) -> Any:
    return zip(column, mask if mask is not None else np.zeros(len(column), dtype=bool), strict=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _element_arrow_type(field: Field) -> pa.DataType:
    et = field.element_type
    if et in STRINGS:
        return pa.string()
    if et in SCALARS:
        return pa.from_numpy_dtype(np.dtype(SCALARS[et]))
    raise invalid(f"field {field.name}: array element type {et} is not supported")


def _array_to_arrow(field: Field, column: Any, mask: np.ndarray | None) -> pa.Array:
    rows = [() if (m or row is None) else row for row, m in _cells(column, mask)]
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    el_type = _element_arrow_type(field)
    if field.element_type in STRINGS:
        values = pa.array(list(chain.from_iterable(rows)), type=el_type)
    else:
        np_type = SCALARS[field.element_type]
        parts = [np.asarray(r, dtype=np_type) for r in rows if len(r)]
        values = pa.array(np.concatenate(parts) if parts else np.empty(0, dtype=np_type), type=el_type)
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=None if mask is None else pa.array(mask))


def _validity(mask: np.ndarray | None) -> pa.Buffer | None:
    return None if mask is None else pa.py_buffer(np.packbits(~mask, bitorder="little"))


def _vector_to_arrow(field: Field, column: Any, mask: np.ndarray | None) -> pa.Array:
    np_type = VECTORS[field.dtype]
    arr = np.asarray(column)
    width = row_width(field)
    if arr.ndim != 2 or (arr.shape[1] != width and arr.shape[0] > 0):
        raise invalid(f"field {field.name}: vector column shape {arr.shape} does not match dim {field.dim}")
    data = np.ascontiguousarray(arr, dtype=np_type).reshape(-1, width)
    n = data.shape[0]
    row_bytes = width * np.dtype(np_type).itemsize
    nulls = 0 if mask is None else int(mask.sum())
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(row_bytes), n, [_validity(mask), pa.py_buffer(data)], null_count=nulls
    )


def _sparse_to_arrow(column: Any, mask: np.ndarray | None) -> pa.Array:
    rows = [{} if (m or row is None) else row for row, m in _cells(column, mask)]
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    nnz = int(lengths.sum())
    pairs = np.empty(nnz, dtype=_SPARSE_PAIR)
    pairs["index"] = np.fromiter(chain.from_iterable(r.keys() for r in rows), dtype=np.int64, count=nnz)
    pairs["value"] = np.fromiter(chain.from_iterable(r.values() for r in rows), dtype=np.float32, count=nnz)
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths * _SPARSE_PAIR.itemsize, out=offsets[1:])
    nulls = 0 if mask is None else int(mask.sum())
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(rows), [_validity(mask), pa.py_buffer(offsets), pa.py_buffer(pairs)], null_count=nulls
    )


# ---- decoding -------------------------------------------------------------------------


def _from_arrow(field: Field, arr: pa.Array) -> np.ndarray:
    dt = field.dtype
    n = len(arr)
    if dt in SCALARS:
        if arr.null_count:
            arr = arr.fill_null(False if dt == BOOL else 0)
        return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=SCALARS[dt])
    if dt in STRINGS:
        if arr.null_count:
            arr = arr.fill_null("")
        return _object_array(arr.to_numpy(zero_copy_only=False), n)
    if dt == JSON_T:
        texts = arr.fill_null("null").to_pylist() if arr.null_count else arr.to_pylist()
        return _object_array(json.loads("[" + ",".join(texts) + "]") if n else [], n)
    if dt == ARRAY:
        return _array_from_arrow(field, arr)
    if dt in VECTORS:
        return _vector_from_arrow(field, arr)
    if dt == SPARSE_VECTOR:
        return _sparse_from_arrow(arr)
    raise invalid(f"field {field.name}: data type {dt} cannot be read from a binlog")


def _object_array(values: Any, n: int) -> np.ndarray:
    """An object array of exactly ``n`` cells (nested lists stay cells, never broadcast)."""
    return np.fromiter(values, dtype=object, count=n)


def _array_from_arrow(field: Field, arr: pa.ListArray) -> np.ndarray:
    offsets = arr.offsets.to_numpy()
    values = arr.values.to_numpy(zero_copy_only=False)
    if field.element_type not in STRINGS:
        values = values.astype(SCALARS[field.element_type], copy=False)
    if len(arr) == 0:
        return np.empty(0, dtype=object)
    rows = np.split(values[offsets[0] : offsets[-1]], (offsets[1:-1] - offsets[0]).astype(np.int64))
    return _object_array(rows, len(arr))


def _vector_from_arrow(field: Field, arr: pa.FixedSizeBinaryArray) -> np.ndarray:
    np_type = VECTORS[field.dtype]
    width = row_width(field)
    n = len(arr)
    row_bytes = width * np.dtype(np_type).itemsize
    if n == 0:
        return np.empty((0, width), dtype=np_type)
    buf = arr.buffers()[1]
    out = np.frombuffer(buf, dtype=np_type, count=n * width, offset=arr.offset * row_bytes).reshape(n, width)
    if arr.null_count:  # null slots hold unspecified bytes: give them zero vectors
        out = out.copy()
        out[~arr.is_valid().to_numpy(zero_copy_only=False)] = 0
    return out


def _sparse_from_arrow(arr: pa.LargeBinaryArray) -> np.ndarray:
    n = len(arr)
    if n == 0:
        return np.empty(0, dtype=object)
    if arr.type != pa.large_binary():
        arr = arr.cast(pa.large_binary())
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int64)[arr.offset : arr.offset + n + 1] // _SPARSE_PAIR.itemsize
    pairs = np.frombuffer(data_buf, dtype=_SPARSE_PAIR) if data_buf is not None else np.empty(0, _SPARSE_PAIR)
    idx = pairs["index"].astype(np.int64).tolist()
    val = pairs["value"].astype(np.float64).tolist()
    valid = arr.is_valid().to_numpy(zero_copy_only=False) if arr.null_count else None
    cells = (
        dict(zip(idx[lo:hi], val[lo:hi], strict=True)) if valid is None or valid[r] else {}
        for r, (lo, hi) in enumerate(zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True))
    )
    return _object_array(cells, n)
