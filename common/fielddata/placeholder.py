"""Decode the query vectors of a Search request (a serialized PlaceholderGroup) into numpy.

A SearchRequest carries its vectors as ``common.PlaceholderGroup`` bytes: one placeholder
whose ``values`` are one bytes blob per query (packed float32 for FloatVector, which
pymilvus 2.5/2.6/3.0 all send, 2-byte words for float16/bfloat16, packed bits for binary,
int8 bytes, or sparse (uint32, float32) pairs). The querynode's search needs them as one
``(nq, dim)`` array in the field's column representation; float32 queries against a
float16/bfloat16 field are converted, as Milvus allows.
"""

from __future__ import annotations

import numpy as np
from google.protobuf.message import DecodeError
from pymilvus.grpc_gen import common_pb2
from pymilvus.grpc_gen.schema_pb2 import DataType

from common.schema import Field, dtype_name

from ._errors import invalid_msg, plain
from .columns import DENSE_VECTOR_DTYPES, row_width
from .vectors import check_finite, check_half_finite, check_row_bytes, from_float32, parse_sparse_rows

NQ_LIMIT = 16384
_HALF = (DataType.Float16Vector, DataType.BFloat16Vector)


def _placeholder_name(ptype: int) -> str:
    try:
        return common_pb2.PlaceholderType.Name(ptype)
    except ValueError:
        return str(ptype)


def decode_placeholder_group(data: bytes, field: Field) -> np.ndarray:
    """``(nq, width)`` query vectors for ``field`` (object array of dicts for sparse)."""
    try:
        group = common_pb2.PlaceholderGroup.FromString(data)
    except DecodeError:
        raise invalid_msg("failed to unmarshal placeholder group") from None
    if len(group.placeholders) != 1:
        raise invalid_msg("placeholder group should contain exactly one placeholder, "
                          f"got {len(group.placeholders)}")
    placeholder = group.placeholders[0]
    values = list(placeholder.values)
    nq = len(values)
    if not 0 < nq <= NQ_LIMIT:
        raise plain(f"nq (number of search vector per search request) should be in range [1, {NQ_LIMIT}], "
                    f"but got {nq}")
    ptype = placeholder.type
    converting = ptype == DataType.FloatVector and field.dtype in _HALF
    if not field.is_vector or (ptype != field.dtype and not converting):
        raise invalid_msg(f"vector type must be the same, field {field.name} - type "
                          f"{dtype_name(field.dtype)}, search info type {_placeholder_name(ptype)}")
    if field.dtype == DataType.SparseFloatVector:
        return parse_sparse_rows(values)
    source = np.dtype(np.float32 if converting else DENSE_VECTOR_DTYPES[field.dtype]).newbyteorder("<")
    width = row_width(field)
    check_row_bytes(width * source.itemsize, [len(v) for v in values])
    rows = np.frombuffer(b"".join(values), dtype=source).reshape(nq, width).astype(source.newbyteorder("="))
    if ptype == DataType.FloatVector:
        check_finite(rows)
        return from_float32(rows, DENSE_VECTOR_DTYPES[field.dtype]) if converting else rows
    if field.dtype in _HALF:
        check_half_finite(rows.view(np.uint16), bfloat=field.dtype == DataType.BFloat16Vector)
    return rows


def decode_text_placeholder(data: bytes) -> list[str]:
    """The texts of a full text search (a BM25 output field is searched with VarChar placeholders)."""
    try:
        group = common_pb2.PlaceholderGroup.FromString(data)
    except DecodeError:
        raise invalid_msg("failed to unmarshal placeholder group") from None
    if len(group.placeholders) != 1 or not len(group.placeholders[0].values):
        raise invalid_msg("please provide varchar/text for BM25 Function based search")
    placeholder = group.placeholders[0]
    if placeholder.type != common_pb2.PlaceholderType.VarChar:
        raise invalid_msg("please provide varchar/text for BM25 Function based search, "
                          f"got {_placeholder_name(placeholder.type)}")
    nq = len(placeholder.values)
    if nq > NQ_LIMIT:
        raise plain(f"nq (number of search vector per search request) should be in range [1, {NQ_LIMIT}], "
                    f"but got {nq}")
    try:
        return [v.decode("utf-8") for v in placeholder.values]
    except UnicodeDecodeError:
        raise invalid_msg("search text must be valid UTF-8") from None
