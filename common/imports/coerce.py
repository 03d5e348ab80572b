"""Turn one field's values, as a file holds them, into the shared column model, checking types.

Every import reader (JSON rows, Parquet, NumPy) ends up with a Python list or an Arrow/numpy
array per field. This module checks each value against the field's data type the way
Milvus's import row parser does ("expected type 'Int64' for field 'age', got type 'str' with
value 'x'", "expected dim '8' for field 'vec' ...") and returns the column representation of
common.fielddata.columns, with ``None`` cells (nulls) filled by placeholders and reported in a
validity mask. Range, length and finiteness checks come later, from the insert decoder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from pymilvus.grpc_gen.schema_pb2 import DataType

from common import timestamptz
from common.errors import MilvusError
from common.fielddata.columns import DENSE_VECTOR_DTYPES, SCALAR_DTYPES, STRING_TYPES, empty_column, row_width
from common.fielddata.vectors import float32_to_bfloat16
from common.schema import Field, dtype_name

from .errors import ImportFileError

_INTS = (DataType.Int8, DataType.Int16, DataType.Int32, DataType.Int64)
_FLOATS = (DataType.Float, DataType.Double)


def type_error(field: Field, value: Any, dtype: int | None = None) -> ImportFileError:
    name = dtype_name(dtype if dtype is not None else field.dtype)
    shown = repr(value) if len(repr(value)) <= 64 else repr(value)[:61] + "..."
    return ImportFileError(
        f"expected type '{name}' for field '{field.name}', got type '{type(value).__name__}' with value {shown}"
    )


def dim_error(field: Field, actual: int) -> ImportFileError:
    return ImportFileError(
        f"expected dim '{field.dim}' for field '{field.name}' with type '{dtype_name(field.dtype)}', got dim '{actual}'"
    )


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def _is_number(v: Any) -> bool:
    return _is_int(v) or isinstance(v, float | np.floating)


def _timestamptz(field: Field, v: Any, timezone: str) -> int:
    """An ISO 8601 string (or UTC microseconds as an integer) for a Timestamptz field."""
    if isinstance(v, str):
        try:
            return timestamptz.parse_one(v, timezone)
        except MilvusError as exc:
            raise ImportFileError(f"field '{field.name}': {exc.message}") from None
    if _is_int(v):
        return int(v)
    raise type_error(field, v)


def _scalar(field: Field, dtype: int, v: Any) -> Any:
    if dtype == DataType.Bool:
        if not isinstance(v, bool | np.bool_):
            raise type_error(field, v, dtype)
        return bool(v)
    if dtype in _INTS:
        if not _is_int(v):
            raise type_error(field, v, dtype)
        info = np.iinfo(np.dtype(SCALAR_DTYPES[dtype]))
        if not info.min <= int(v) <= info.max:
            raise ImportFileError(
                f"value {v} of field '{field.name}' is out of the range of {dtype_name(dtype)} [{info.min}, {info.max}]"
            )
        return int(v)
    if dtype in _FLOATS:
        if not _is_number(v):
            raise type_error(field, v, dtype)
        return float(v)
    if dtype in STRING_TYPES:
        if not isinstance(v, str):
            raise type_error(field, v, dtype)
        return v
    raise ImportFileError(f"field '{field.name}': data type {dtype_name(dtype)} cannot be imported")


def _json_value(field: Field, v: Any) -> Any:
    if isinstance(v, str | bytes):
        try:
            return json.loads(v)
        except ValueError:
            raise ImportFileError(f"field '{field.name}': value {v!r} is not a valid JSON string") from None
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def _dynamic_value(field: Field, v: Any) -> dict[str, Any]:
    obj = _json_value(field, v)
    if not isinstance(obj, dict):
        raise ImportFileError(f"illegal value for dynamic field '{field.name}': {v!r} is not a JSON object")
    return obj


def _array_value(field: Field, v: Any) -> np.ndarray:
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if not isinstance(v, list | tuple):
        raise type_error(field, v)
    et = field.element_type
    cells = [_scalar(field, et, x) for x in v]
    if et in STRING_TYPES:
        out = np.empty(len(cells), dtype=object)
        out[:] = cells
        return out
    return np.asarray(cells, dtype=SCALAR_DTYPES[et])


def _sparse_value(field: Field, v: Any) -> dict[int, float]:
    if isinstance(v, str | bytes):
        v = _json_value(field, v)
    if not isinstance(v, dict):
        raise type_error(field, v)
    if "indices" in v and "values" in v:
        idx, vals = v["indices"], v["values"]
        if not isinstance(idx, list | tuple | np.ndarray) or not isinstance(vals, list | tuple | np.ndarray):
            raise type_error(field, v)
        if len(idx) != len(vals):
            raise ImportFileError(f"field '{field.name}': sparse vector has {len(idx)} indices and {len(vals)} values")
        pairs = list(zip(idx, vals, strict=True))
    else:
        pairs = list(v.items())
    out: dict[int, float] = {}
    for k, x in pairs:
        try:
            key = int(k)
        except (TypeError, ValueError):
            raise ImportFileError(f"field '{field.name}': sparse vector index {k!r} is not an integer") from None
        if key < 0 or key >= 2**32 - 1:
            raise ImportFileError(f"field '{field.name}': sparse vector index {key} is out of range [0, 4294967294]")
        if not _is_number(x):
            raise type_error(field, x, DataType.Float)
        out[key] = float(x)
    return out


def _dense_rows(field: Field, values: Sequence[Any], valid: np.ndarray) -> np.ndarray:
    """(n, width) array of a dense vector field; null rows stay zero."""
    width = row_width(field)
    target = DENSE_VECTOR_DTYPES[field.dtype]
    out = empty_column(field, len(values))
    half = field.dtype in (DataType.Float16Vector, DataType.BFloat16Vector)
    ints = field.dtype in (DataType.BinaryVector, DataType.Int8Vector)
    for i, row in enumerate(values):
        if not valid[i]:
            continue
        arr = row if isinstance(row, np.ndarray) else None
        if arr is None:
            if not isinstance(row, list | tuple):
                raise type_error(field, row)
            if not all((_is_int(x) if ints else _is_number(x)) for x in row):
                bad = next(x for x in row if not (_is_int(x) if ints else _is_number(x)))
                raise type_error(field, bad, DataType.Int64 if ints else DataType.Float)
            arr = np.asarray(row, dtype=np.int64 if ints else np.float64)
        if arr.ndim != 1:
            raise type_error(field, row)
        if len(arr) != width:
            raise dim_error(field, len(arr) * 8 if field.dtype == DataType.BinaryVector else len(arr))
        if ints:
            lo, hi = (0, 255) if field.dtype == DataType.BinaryVector else (-128, 127)
            if arr.dtype.kind not in "iu" or (len(arr) and (arr.min() < lo or arr.max() > hi)):
                raise ImportFileError(f"field '{field.name}': vector elements must be integers in [{lo}, {hi}]")
        if half:
            f32 = np.asarray(arr, dtype=np.float32)
            out[i] = float32_to_bfloat16(f32) if target is np.uint16 else f32.astype(np.float16)
        else:
            out[i] = np.asarray(arr).astype(target)
    return out


def _dense_block(field: Field, block: np.ndarray) -> np.ndarray:
    """A whole (n, width) numeric array (NumPy files, uniform Parquet lists), checked at once."""
    ints = field.dtype in (DataType.BinaryVector, DataType.Int8Vector)
    if block.dtype.kind not in ("iu" if ints else "iuf"):
        raise type_error(field, block.dtype.name, field.dtype)
    width = row_width(field)
    if block.shape[1] != width:
        raise dim_error(field, block.shape[1] * 8 if field.dtype == DataType.BinaryVector else block.shape[1])
    if ints and block.size:
        lo, hi = (0, 255) if field.dtype == DataType.BinaryVector else (-128, 127)
        if block.min() < lo or block.max() > hi:
            raise ImportFileError(f"field '{field.name}': vector elements must be integers in [{lo}, {hi}]")
    target = DENSE_VECTOR_DTYPES[field.dtype]
    if target is np.uint16:
        return float32_to_bfloat16(np.asarray(block, dtype=np.float32))
    return np.ascontiguousarray(block, dtype=target)


def _scalar_block(field: Field, arr: np.ndarray) -> np.ndarray:
    """A whole 1-D numeric/bool array (NumPy files, Parquet columns without nulls), checked at once."""
    dt = field.dtype
    kinds = "b" if dt == DataType.Bool else "iu" if dt in _INTS else "iuf"
    if arr.dtype.kind not in kinds:
        raise type_error(field, arr[0].item() if len(arr) else arr.dtype.name)
    if dt in _INTS and len(arr):
        info = np.iinfo(np.dtype(SCALAR_DTYPES[dt]))
        lo, hi = int(arr.min()), int(arr.max())
        if lo < info.min or hi > info.max:
            bad = lo if lo < info.min else hi
            raise ImportFileError(
                f"value {bad} of field '{field.name}' is out of the range of {dtype_name(dt)} [{info.min}, {info.max}]"
            )
    return arr.astype(SCALAR_DTYPES[dt])


def to_column(
    field: Field, values: Sequence[Any], timezone: str = timestamptz.DEFAULT_TIMEZONE
) -> tuple[np.ndarray, np.ndarray]:
    """(column, valid) for ``values``; ``None`` cells are nulls (placeholders, valid False).
    ``timezone``: where Timestamptz text without an offset is read (the collection's)."""
    n = len(values)
    if field.dtype == DataType.Timestamptz:
        cells = values.tolist() if isinstance(values, np.ndarray) else list(values)
        valid = np.fromiter((v is not None for v in cells), dtype=np.bool_, count=n)
        micros = np.zeros(n, dtype=np.int64)
        for i, v in enumerate(cells):
            if v is not None:
                micros[i] = _timestamptz(field, v, timezone)
        return micros, valid
    if isinstance(values, np.ndarray) and values.ndim == 1 and field.dtype in SCALAR_DTYPES:
        return _scalar_block(field, values), np.ones(n, dtype=np.bool_)
    if isinstance(values, np.ndarray) and values.ndim == 1:
        values = values.tolist()
    valid = np.fromiter((v is not None for v in values), dtype=np.bool_, count=n)
    dt = field.dtype
    if dt in DENSE_VECTOR_DTYPES:
        if isinstance(values, np.ndarray) and values.ndim == 2:
            return _dense_block(field, values), np.ones(n, dtype=np.bool_)
        return _dense_rows(field, values, valid), valid
    out = empty_column(field, n)
    if dt in SCALAR_DTYPES or dt in STRING_TYPES:
        cells = [_scalar(field, dt, v) if ok else None for v, ok in zip(values, valid, strict=True)]
        if dt in STRING_TYPES:
            for i, c in enumerate(cells):
                if c is not None:
                    out[i] = c
        elif valid.all():
            out = np.asarray(cells, dtype=SCALAR_DTYPES[dt])
        else:
            out[valid] = np.asarray([c for c in cells if c is not None], dtype=SCALAR_DTYPES[dt])
        return out, valid
    convert = {
        DataType.JSON: _dynamic_value if field.is_dynamic else _json_value,
        DataType.Array: _array_value,
        DataType.SparseFloatVector: _sparse_value,
    }.get(dt)
    if convert is None:
        raise ImportFileError(f"field '{field.name}': data type {dtype_name(dt)} cannot be imported")
    for i, v in enumerate(values):
        if valid[i]:
            out[i] = convert(field, v)
    return out, valid
