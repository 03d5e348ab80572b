"""Read and check the payload of one scalar FieldData (bool .. JSON, Array) into a numpy column.

Each reader gets the schema field and the FieldData a client sent and returns the values
actually present (nulls not yet expanded), after Milvus's per-type checks from the proxy's
validateUtil: the right oneof was filled, Int8/Int16 fit their range, floats are finite,
VarChar values fit max_length (in UTF-8 bytes), JSON parses and fits 64 KiB, Array rows fit
max_capacity and carry the element type. Protobuf repeated fields go to numpy in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson
from pymilvus.grpc_gen import schema_pb2
from pymilvus.grpc_gen.schema_pb2 import DataType

from common import timestamptz
from common.schema import Field, dtype_name
from common.timestamptz import DEFAULT_TIMEZONE

from ._errors import invalid_msg, mismatch, plain
from .columns import SCALAR_DTYPES, STRING_TYPES, element_dtype, object_column
from .vectors import check_finite

JSON_MAX_LENGTH = 65536

# ScalarField oneof that carries each type, and Milvus's "need ..." wording for a wrong one.
SCALAR_SLOTS: dict[int, str] = {
    DataType.Bool: "bool_data", DataType.Int8: "int_data", DataType.Int16: "int_data",
    DataType.Int32: "int_data", DataType.Int64: "long_data", DataType.Float: "float_data",
    DataType.Double: "double_data", DataType.VarChar: "string_data", DataType.String: "string_data",
    DataType.JSON: "json_data", DataType.Array: "array_data", DataType.Timestamptz: "string_data",
}
_NEED = {DataType.Bool: "need bool array", DataType.Int8: "need int array", DataType.Int16: "need int array",
         DataType.Int32: "need int array", DataType.Int64: "need long int array",
         DataType.Float: "need float32 array", DataType.Double: "need float64(double) array",
         DataType.VarChar: "need string array", DataType.String: "need string array",
         DataType.JSON: "need json array", DataType.Timestamptz: "need string array"}
_PREFIX = {DataType.VarChar: "varchar field", DataType.String: "varchar field", DataType.JSON: "json field",
           DataType.Array: "array field"}
_INT_RANGE = {DataType.Int8: (-128, 127), DataType.Int16: (-32768, 32767)}
# Go type names Milvus prints when an Array row carries the wrong element oneof.
_GO_SLOT = {"bool_data": "BoolData", "int_data": "IntData", "long_data": "LongData",
            "float_data": "FloatData", "double_data": "DoubleData", "string_data": "StringData",
            "bytes_data": "BytesData", "array_data": "ArrayData", "json_data": "JsonData"}
_ELEMENT_WORD = {DataType.Bool: "bool", DataType.Int8: "int", DataType.Int16: "int", DataType.Int32: "int",
                 DataType.Int64: "int64", DataType.Float: "float", DataType.Double: "double",
                 DataType.VarChar: "string", DataType.String: "string"}


def type_mismatch(field: Field) -> Exception:
    """The "array type mismatch" error Milvus gives when the expected oneof is absent."""
    is_array = field.dtype == DataType.Array
    need = f"need {dtype_name(field.element_type)} array" if is_array else _NEED[field.dtype]
    prefix = _PREFIX.get(field.dtype, "field")
    return mismatch(f"{prefix} '{field.name}' is illegal, array type mismatch", need, "got nil")


def read_scalar(field: Field, fd: schema_pb2.FieldData, timezone: str = DEFAULT_TIMEZONE) -> Any:
    """Values present in ``fd`` for a scalar field: a numpy column, or a list for JSON/Array.
    ``timezone``: where a Timestamptz string without an offset is read (the collection's)."""
    slot = fd.scalars.WhichOneof("data") if fd.WhichOneof("field") == "scalars" else None
    if slot is None and (field.nullable or field.default_value is not None):
        return [] if field.dtype in (DataType.JSON, DataType.Array) else _empty(field)
    if field.dtype == DataType.Timestamptz:
        if slot == "timestamptz_data":  # already UTC microseconds (Milvus's own internal form)
            return np.asarray(fd.scalars.timestamptz_data.data, dtype=np.int64)
        if slot != "string_data":
            raise invalid_msg("timestamptz field data must be a string array")
        return timestamptz.parse(fd.scalars.string_data.data, timezone)
    if slot != SCALAR_SLOTS[field.dtype]:
        raise type_mismatch(field)
    data = getattr(fd.scalars, slot).data
    if field.dtype in SCALAR_DTYPES:
        return _numeric(field, data)
    if field.dtype in STRING_TYPES:
        values = object_column(data, len(data))
        if not field.auto_id:
            check_lengths(values, field.max_length, lambda i, n: plain(
                f"length of varchar field {field.name} exceeds max length, row number: {i}, "
                f"length: {n}, max length: {field.max_length}: invalid parameter"))
        return values
    return list(data)  # JSON cells (bytes) or Array rows (ScalarField), parsed by the callers below


def _empty(field: Field) -> np.ndarray:
    if field.dtype in STRING_TYPES:
        return np.empty(0, dtype=object)
    return np.empty(0, dtype=SCALAR_DTYPES[field.dtype])


def _numeric(field: Field, data: Any) -> np.ndarray:
    dtype = SCALAR_DTYPES[field.dtype]
    if field.dtype in _INT_RANGE:
        wide = np.asarray(data, dtype=np.int32)
        check_range(wide, *_INT_RANGE[field.dtype])
        return wide.astype(dtype)
    values = np.asarray(data, dtype=dtype)
    if field.dtype in (DataType.Float, DataType.Double):
        check_finite(values)
    return values


def check_range(values: np.ndarray, low: int, high: int) -> None:
    """verifyOverflowByRange: Int8/Int16 data travel as int32 and must fit their type."""
    bad = np.flatnonzero((values < low) | (values > high))
    if bad.size:
        i = int(bad[0])
        raise mismatch(f"the {i}th element ({int(values[i])}) out of range: [{low}, {high}]",
                       "integer doesn't overflow", "out of range")


def check_lengths(values: np.ndarray, max_length: int, error: Callable[[int, int], Exception]) -> None:
    """First string longer than ``max_length`` UTF-8 bytes -> ``error(row, byte_length)``.

    Character counts bound byte counts (1..4 bytes each), so only strings whose character
    count is over a quarter of the limit are encoded to measure them.
    """
    if not len(values):
        return
    chars = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    suspects = np.flatnonzero(chars * 4 > max_length)
    for i in suspects.tolist():
        size = len(values[i].encode("utf-8"))
        if size > max_length:
            raise error(i, int(size))


def json_rows(field: Field, raw: Sequence[bytes]) -> list[Any]:
    """Parse JSON cells, with Milvus's length limit; "$meta" rows must be objects."""
    out: list[Any] = []
    for i, cell in enumerate(raw):
        if len(cell) > JSON_MAX_LENGTH:
            if field.is_dynamic:
                raise mismatch(f"the length ({len(cell)}) of dynamic field exceeds max length "
                               f"({JSON_MAX_LENGTH})", "valid length dynamic field",
                               "length exceeds max length")
            raise mismatch(f"the length ({len(cell)}) of json field ({field.name}) exceeds max length "
                           f"({JSON_MAX_LENGTH})", "valid length json string", "length exceeds max length")
        try:
            out.append(orjson.loads(cell))
        except orjson.JSONDecodeError as exc:
            raise invalid_msg(f"invalid JSON in field {field.name}, row number: {i}: {exc}") from None
    return out


def check_dynamic_rows(rows: Sequence[Any], static_names: Sequence[str]) -> None:
    """verifyDynamicFieldData: each "$meta" row is an object with no "$meta" or static-field keys."""
    static = set(static_names)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise invalid_msg(f"the value of dynamic field must be a JSON object, row number: {i}")
        if "$meta" in row:
            raise plain("cannot set json key to: $meta")
        clash = static.intersection(row)
        if clash:
            raise plain(f"dynamic field name cannot include the static field name: {sorted(clash)[0]}")


def array_rows(field: Field, rows: Sequence[schema_pb2.ScalarField]) -> list[np.ndarray]:
    """checkArrayFieldData: each row's capacity and element oneof, then rows as 1-D arrays."""
    el = field.element_type
    expected = SCALAR_SLOTS[el]
    dtype = element_dtype(el)
    out: list[np.ndarray] = []
    for i, row in enumerate(rows):
        slot = row.WhichOneof("data")
        if slot is None:
            out.append(np.empty(0, dtype=dtype))
            continue
        if slot != expected:
            raise mismatch("insert data does not match", f"{_ELEMENT_WORD[el]} array",
                           f"*schemapb.ScalarField_{_GO_SLOT.get(slot, slot)} array")
        data = getattr(row, slot).data
        if len(data) > field.max_capacity:
            raise mismatch(f"the length ({len(data)}) of {i}th array exceeds max capacity "
                           f"({field.max_capacity})", "valid length array",
                           "array length exceeds max capacity")
        out.append(_array_row(field, i, data, dtype))
    return out


def _array_row(field: Field, row: int, data: Any, dtype: Any) -> np.ndarray:
    el = field.element_type
    if dtype is object:
        values = object_column(data, len(data))
        check_lengths(values, field.max_length, lambda j, n: plain(
            f'length of Array array field "{field.name}" exceeds max length, row number: {row}, '
            f"array index: {j}, length: {n}, max length: {field.max_length}: invalid parameter"))
        return values
    if el in _INT_RANGE:
        wide = np.asarray(data, dtype=np.int32)
        check_range(wide, *_INT_RANGE[el])
        return wide.astype(dtype)
    return np.asarray(data, dtype=dtype)
