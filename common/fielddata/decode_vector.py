"""Read and check the payload of one vector FieldData into a numpy array of its rows.

Dense vectors arrive as a repeated float (FloatVector) or raw bytes (the others) plus a
declared ``dim``; Milvus's proxy checks the oneof, that ``dim`` equals the schema's, that the
payload divides into whole rows, and that float data holds no NaN or infinity. Rows are
decoded in one numpy call (``np.asarray`` on the protobuf container, ``np.frombuffer`` on
bytes). A float16/bfloat16 field also accepts float32 data, converted as Milvus does.
"""

from __future__ import annotations

import numpy as np
from pymilvus.grpc_gen import schema_pb2
from pymilvus.grpc_gen.schema_pb2 import DataType

from common.schema import Field

from ._errors import dim_mismatch, invalid_msg, mismatch
from .columns import DENSE_VECTOR_DTYPES, row_width
from .vectors import check_finite, check_half_finite, from_float32, parse_sparse_rows

VECTOR_SLOTS: dict[int, str] = {
    DataType.FloatVector: "float_vector", DataType.BinaryVector: "binary_vector",
    DataType.Float16Vector: "float16_vector", DataType.BFloat16Vector: "bfloat16_vector",
    DataType.SparseFloatVector: "sparse_float_vector", DataType.Int8Vector: "int8_vector",
}
# Milvus's message when the expected vector oneof is missing: (detail, expected).
_ILLEGAL = {
    DataType.FloatVector: ("float vector field '{}' is illegal, array type mismatch", "need float vector"),
    DataType.BinaryVector: ("binary float vector field '{}' is illegal, array type mismatch",
                            "need bytes array"),
    DataType.Float16Vector: ("float16 float field '{}' is illegal, nil Vector_Float16 type",
                             "need vector_float16 array"),
    DataType.BFloat16Vector: ("bfloat16 float field '{}' is illegal, nil Vector_BFloat16 type",
                              "need vector_bfloat16 array"),
    DataType.SparseFloatVector: ("sparse float field '{}' is illegal, nil SparseFloatVector",
                                 "need sparse float array"),
    DataType.Int8Vector: ("int8 vector field '{}' is illegal, nil Vector_Int8 type",
                          "need vector_int8 array"),
}
_HALF = {DataType.Float16Vector: "float16", DataType.BFloat16Vector: "bfloat16"}


def vector_type_mismatch(field: Field) -> Exception:
    detail, need = _ILLEGAL[field.dtype]
    return mismatch(detail.format(field.name), need, "got nil")


def read_vector(field: Field, fd: schema_pb2.FieldData) -> np.ndarray:
    """Rows present in ``fd`` for a vector field: (rows, width) array, or dicts for sparse."""
    slot = fd.vectors.WhichOneof("data") if fd.WhichOneof("field") == "vectors" else None
    expected = VECTOR_SLOTS[field.dtype]
    if slot is None and field.nullable:
        return _no_rows(field)
    converting = slot == "float_vector" and field.dtype in _HALF
    if slot != expected and not converting:
        raise vector_type_mismatch(field)
    if field.dtype == DataType.SparseFloatVector:
        return parse_sparse_rows(fd.vectors.sparse_float_vector.contents)
    if fd.vectors.dim != field.dim:
        raise dim_mismatch(field.name, fd.vectors.dim, field.dim)
    if slot == "float_vector":
        values = np.asarray(fd.vectors.float_vector.data, dtype=np.float32)
        _check_divides(values.size, field.dim, "float")
        check_finite(values)
        rows = values.reshape(-1, field.dim)
        return from_float32(rows, DENSE_VECTOR_DTYPES[field.dtype]) if converting else rows
    raw: bytes = getattr(fd.vectors, expected)
    dtype = np.dtype(DENSE_VECTOR_DTYPES[field.dtype]).newbyteorder("<")
    if field.dtype == DataType.BinaryVector:
        if (len(raw) * 8) % field.dim:
            raise invalid_msg(f"the num({len(raw) * 8}) of all bits should divide the dim({field.dim})")
    elif len(raw) % (dtype.itemsize * field.dim):
        kind = _HALF.get(field.dtype, "int8")
        raise invalid_msg(f"the length({len(raw)}) of {kind} data should divide the dim({field.dim})")
    rows = np.frombuffer(raw, dtype=dtype).reshape(-1, row_width(field)).astype(dtype.newbyteorder("="))
    if field.dtype in _HALF:
        check_half_finite(rows.view(np.uint16), bfloat=field.dtype == DataType.BFloat16Vector)
    return rows


def _check_divides(count: int, dim: int, kind: str) -> None:
    if count % dim:
        raise invalid_msg(f"the length({count}) of {kind} data should divide the dim({dim})")


def _no_rows(field: Field) -> np.ndarray:
    if field.dtype == DataType.SparseFloatVector:
        return np.empty(0, dtype=object)
    return np.empty((0, row_width(field)), dtype=DENSE_VECTOR_DTYPES[field.dtype])
