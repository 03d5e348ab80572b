"""Column-wise FieldData (query and search replies) to the JSON rows the REST API returns.

Milvus's REST layer answers a query with one object per entity (``{"id": 1, "vector": [...],
"color": "red"}``, dynamic-field keys spread into the row) and a search with the same plus
``id`` (the primary key) and ``distance``. Values keep their JSON-natural form: 64-bit
integers as numbers unless the client asked for strings, float32 values in their short
form, sparse vectors as ``{"index": value}``, and byte vectors (binary, float16, bfloat16,
int8) base64-encoded, which is how Go serialises the ``[]byte`` Milvus puts there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from pymilvus.grpc_gen import schema_pb2

from common.fielddata.encode import decode_ids

PRIMARY_KEY = "id"
DISTANCE = "distance"

_BYTE_VECTORS = {
    "binary_vector": lambda dim: dim // 8,
    "float16_vector": lambda dim: dim * 2,
    "bfloat16_vector": lambda dim: dim * 2,
    "int8_vector": lambda dim: dim,
}


def _json_cell(raw: bytes) -> Any:
    return orjson.loads(raw) if raw else None


def scalar_values(field: schema_pb2.ScalarField, allow_int64: bool) -> list[Any]:
    kind = field.WhichOneof("data")
    if kind is None:
        return []
    data = getattr(field, kind).data
    if kind == "long_data":
        return list(data) if allow_int64 else [str(v) for v in data]
    if kind == "float_data":
        return list(np.asarray(data, dtype=np.float32))
    if kind == "json_data":
        return [_json_cell(raw) for raw in data]
    if kind == "array_data":
        return [scalar_values(cell, allow_int64) for cell in data]
    return list(data)


def vector_values(field: schema_pb2.VectorField) -> list[Any]:
    kind = field.WhichOneof("data")
    dim = int(field.dim)
    if kind == "float_vector":
        values = np.asarray(field.float_vector.data, dtype=np.float32)
        return list(values.reshape(-1, dim)) if dim else []
    if kind == "sparse_float_vector":
        rows = []
        for raw in field.sparse_float_vector.contents:
            pairs = np.frombuffer(raw, dtype=[("index", "<u4"), ("value", "<f4")])
            rows.append({str(int(i)): v for i, v in zip(pairs["index"], pairs["value"], strict=True)})
        return rows
    if kind in _BYTE_VECTORS:
        blob: bytes = getattr(field, kind)
        width = _BYTE_VECTORS[kind](dim)
        return [blob[i : i + width] for i in range(0, len(blob), width)] if width else []
    return []


def column_values(fd: schema_pb2.FieldData, allow_int64: bool) -> list[Any]:
    """One value per entity (None where ``valid_data`` says null)."""
    values = (
        vector_values(fd.vectors) if fd.WhichOneof("field") == "vectors" else scalar_values(fd.scalars, allow_int64)
    )
    valid = list(fd.valid_data)
    if not valid:
        return values
    if len(values) == len(valid):
        return [v if ok else None for v, ok in zip(values, valid, strict=True)]
    stored = iter(values)  # nullable vectors carry data for valid rows only
    return [next(stored, None) if ok else None for ok in valid]


def _dynamic_selection(output_fields: Sequence[str], fields_data: Sequence[schema_pb2.FieldData]) -> list[str]:
    static = {fd.field_name for fd in fields_data if not fd.is_dynamic}
    return [name for name in output_fields if name not in static]


def rows_of(
    fields_data: Sequence[schema_pb2.FieldData], output_fields: Sequence[str], allow_int64: bool, count: int = -1
) -> list[dict[str, Any]]:
    """Entities as dicts; ``count`` when known (search), else the length of the columns."""
    columns = [(fd, column_values(fd, allow_int64)) for fd in fields_data]
    if count < 0:
        count = max((len(values) for _, values in columns), default=0)
    rows: list[dict[str, Any]] = [{} for _ in range(count)]
    wanted = _dynamic_selection(output_fields, fields_data)
    for fd, values in columns:
        if fd.is_dynamic:
            whole = fd.field_name in wanted
            for row, meta in zip(rows, values, strict=False):
                if isinstance(meta, dict):
                    row.update(meta if whole else {k: meta[k] for k in wanted if k in meta})
            continue
        for row, value in zip(rows, values, strict=False):
            row[fd.field_name] = value
    return rows


def search_rows(result: schema_pb2.SearchResultData, allow_int64: bool) -> list[dict[str, Any]]:
    """All hits of all queries, flattened in query order (``topks`` says how many per query)."""
    ids = decode_ids(result.ids)
    rows = rows_of(result.fields_data, result.output_fields, allow_int64, count=len(ids))
    scores = np.asarray(result.scores, dtype=np.float32)
    for i, row in enumerate(rows):
        pk = ids[i]
        if isinstance(pk, np.integer):
            row[PRIMARY_KEY] = int(pk) if allow_int64 else str(int(pk))
        else:
            row[PRIMARY_KEY] = pk
        if i < len(scores):
            row[DISTANCE] = scores[i]
    return rows
