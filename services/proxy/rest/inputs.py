"""JSON entities, query vectors and primary keys turned into the gRPC request pieces.

Inserts reuse pymilvus's own client-side row conversion (``Prepare.row_insert_param``), fed
the schema from DescribeCollection, after a light pass that maps JSON-only spellings to what
pymilvus expects: byte vectors as lists of ints or base64 strings, sparse vectors with string
keys, 64-bit keys sent as strings. Search vectors become a PlaceholderGroup; ``id`` values of
get/delete become Milvus's ``pk in [...]`` filter.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from pymilvus.client.abstract import CollectionSchema
from pymilvus.client.prepare import Prepare
from pymilvus.exceptions import MilvusException
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from common.fielddata.vectors import float32_to_bfloat16, sparse_row_bytes
from services.proxy.rest.envelope import (
    CHECK_PRIMARY_KEY,
    INCORRECT_FORMAT,
    INVALID_INSERT_DATA,
    MISSING_PARAMETERS,
    TITLES,
    RestError,
    rest_error,
)

DT = schema_pb2.DataType


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"invalid base64 vector: {exc}") from None


def _sparse(value: Any) -> dict[int, float]:
    if isinstance(value, dict) and set(value) == {"indices", "values"}:
        return {int(i): float(v) for i, v in zip(value["indices"], value["values"], strict=True)}
    if isinstance(value, dict):
        return {int(k): float(v) for k, v in value.items()}
    raise ValueError(f"a sparse vector must be an object of index: value, got {type(value).__name__}")


def _half(dtype: int) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, str):
            return _b64(value)
        if isinstance(value, list):
            floats = np.asarray(value, dtype=np.float32)
            return floats.astype(np.float16) if dtype == DT.Float16Vector else float32_to_bfloat16(floats).tobytes()
        return value

    return convert


def _int64(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value
    return value


_CONVERT: dict[int, Callable[[Any], Any]] = {
    DT.Int64: _int64,
    DT.BinaryVector: lambda v: _b64(v) if isinstance(v, str) else bytes(v) if isinstance(v, list) else v,
    DT.Float16Vector: _half(DT.Float16Vector),
    DT.BFloat16Vector: _half(DT.BFloat16Vector),
    DT.Int8Vector: lambda v: np.asarray(v, dtype=np.int8) if isinstance(v, list) else v,
    DT.SparseFloatVector: _sparse,
}


def _normalise(row: Mapping[str, Any], types: Mapping[str, int]) -> dict[str, Any]:
    out = dict(row)
    for name, value in row.items():
        convert = _CONVERT.get(types.get(name, -1))
        if convert is not None and value is not None:
            out[name] = convert(value)
    return out


def write_request(
    describe: milvus_pb2.DescribeCollectionResponse, db: str, partition: str, rows: list[dict[str, Any]], upsert: bool
) -> Any:
    """An InsertRequest (or UpsertRequest) for JSON rows, built as pymilvus's MilvusClient builds it."""
    if not rows:
        raise rest_error(INVALID_INSERT_DATA, TITLES[MISSING_PARAMETERS])
    info = CollectionSchema(raw=describe).dict()
    fields = info.get("fields", [])
    types = {f["name"]: int(f["type"]) for f in fields}
    builder = Prepare.row_upsert_param if upsert else Prepare.row_insert_param
    kwargs: dict[str, Any] = {
        "collection_name": describe.collection_name or describe.schema.name,
        "partition_name": partition,
        "fields_info": fields,
        "enable_dynamic": bool(info.get("enable_dynamic_field", False)),
    }
    if "struct_fields_info" in inspect.signature(builder).parameters:
        kwargs["struct_fields_info"] = info.get("struct_array_fields", [])
    try:
        kwargs["entities"] = [_normalise(row, types) for row in rows]
        request = builder(**kwargs)
    except MilvusException as exc:
        raise rest_error(INVALID_INSERT_DATA, exc.message) from None
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise rest_error(INVALID_INSERT_DATA, str(exc)) from None
    request.db_name = db
    return request


def anns_field(schema: schema_pb2.CollectionSchema, name: str) -> schema_pb2.FieldSchema:
    """The vector field to search: the one named, or the only one there is."""
    vectors = [f for f in schema.fields if f.data_type in _PLACEHOLDER]
    if name:
        for f in vectors:
            if f.name == name:
                return f
        raise rest_error(INCORRECT_FORMAT, f"cannot find a vector field named: {name}")
    if len(vectors) > 1:
        names = ", ".join(f.name for f in vectors[:2])
        raise rest_error(
            INCORRECT_FORMAT, f"search without annsField, but already found multiple vector fields: [{names},,,]"
        )
    if not vectors:
        raise rest_error(INCORRECT_FORMAT, "cannot find a vector field named: ")
    return vectors[0]


def _floats(v: Any) -> tuple[int, bytes]:
    return common_pb2.FloatVector, np.asarray(v, dtype="<f4").tobytes()


def _byte_vector(ptype: int) -> Callable[[Any], tuple[int, bytes]]:
    def convert(v: Any) -> tuple[int, bytes]:
        if isinstance(v, str):
            return ptype, _b64(v)
        if ptype == common_pb2.Int8Vector:
            return ptype, np.asarray(v, dtype=np.int8).tobytes()
        if ptype == common_pb2.BinaryVector:
            return ptype, bytes(v)
        return _floats(v)  # float16/bfloat16 fields take float32 queries

    return convert


_PLACEHOLDER: dict[int, Callable[[Any], tuple[int, bytes]]] = {
    DT.FloatVector: _floats,
    DT.BinaryVector: _byte_vector(common_pb2.BinaryVector),
    DT.Float16Vector: _byte_vector(common_pb2.Float16Vector),
    DT.BFloat16Vector: _byte_vector(common_pb2.BFloat16Vector),
    DT.Int8Vector: _byte_vector(common_pb2.Int8Vector),
    DT.SparseFloatVector: lambda v: (common_pb2.SparseFloatVector, sparse_row_bytes(_sparse(v))),
}


def placeholder_group(field: schema_pb2.FieldSchema, data: list[Any], function_output: bool = False) -> bytes:
    """The query vectors (or texts, for a function-output field) as PlaceholderGroup bytes."""
    if not data:
        raise rest_error(INCORRECT_FORMAT, "data should not be empty")
    values: list[bytes] = []
    ptype = common_pb2.FloatVector
    try:
        for item in data:
            if function_output and isinstance(item, str):
                ptype, blob = common_pb2.VarChar, item.encode()
            else:
                ptype, blob = _PLACEHOLDER[field.data_type](item)
            values.append(blob)
    except (TypeError, ValueError, OverflowError) as exc:
        raise rest_error(INCORRECT_FORMAT, f"invalid search vector for field {field.name}: {exc}") from None
    group = common_pb2.PlaceholderGroup(
        placeholders=[common_pb2.PlaceholderValue(tag="$0", type=ptype, values=values)]  # type: ignore[arg-type]
    )
    return group.SerializeToString()


def _int_key(key: Any) -> str | None:
    if isinstance(key, bool):
        return None
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    if isinstance(key, int):
        return str(key)
    if isinstance(key, str):
        try:
            return str(int(key))
        except ValueError:
            return None
    return None


def _str_key(key: Any) -> str | None:
    if isinstance(key, bool) or not isinstance(key, str | int):
        return None
    return json.dumps(str(key))


def pk_filter(schema: schema_pb2.CollectionSchema, ids: Any) -> str:
    """``pk in [...]`` for the ``id`` of get/delete (one key or a list; ints or strings)."""
    pk = next((f for f in schema.fields if f.is_primary_key), None)
    if pk is None:
        raise RestError(CHECK_PRIMARY_KEY, f"{TITLES[CHECK_PRIMARY_KEY]}, error: collection has no primary field")
    keys = ids if isinstance(ids, list) else [ids]
    render = _int_key if pk.data_type == DT.Int64 else _str_key
    rendered = [r for r in (render(k) for k in keys) if r is not None]
    if len(rendered) != len(keys) or not keys:
        raise rest_error(CHECK_PRIMARY_KEY, f"invalid id {ids!r} for primary key {pk.name}")
    return f"{pk.name} in [{','.join(rendered)}]"
