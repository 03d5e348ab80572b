"""Vector data types and their conversion to what faiss consumes.

Columns arrive in the shared data model's layout (float32, float16, bfloat16 as raw uint16
bits, int8, packed uint8 bits, dicts for sparse rows). faiss indexes float32 and packed
bits only, so dense half-precision and int8 vectors are widened here, once, without Python
loops. The integer codes are pymilvus's ``schema_pb2.DataType`` values.
"""

from __future__ import annotations

import numpy as np

from common.errors import invalid

BINARY_VECTOR = 100
FLOAT_VECTOR = 101
FLOAT16_VECTOR = 102
BFLOAT16_VECTOR = 103
SPARSE_FLOAT_VECTOR = 104
INT8_VECTOR = 105

DENSE_FLOAT_TYPES = frozenset({FLOAT_VECTOR, FLOAT16_VECTOR, BFLOAT16_VECTOR, INT8_VECTOR})
VECTOR_TYPES = DENSE_FLOAT_TYPES | {BINARY_VECTOR, SPARSE_FLOAT_VECTOR}

_NAMES = {
    BINARY_VECTOR: "BinaryVector",
    FLOAT_VECTOR: "FloatVector",
    FLOAT16_VECTOR: "Float16Vector",
    BFLOAT16_VECTOR: "BFloat16Vector",
    SPARSE_FLOAT_VECTOR: "SparseFloatVector",
    INT8_VECTOR: "Int8Vector",
}


def dtype_name(dtype: int) -> str:
    """The DataType enum name Milvus prints in messages."""
    return _NAMES.get(dtype, f"DataType({dtype})")


def is_dense_float(dtype: int) -> bool:
    return dtype in DENSE_FLOAT_TYPES


def is_binary(dtype: int) -> bool:
    return dtype == BINARY_VECTOR


def is_sparse(dtype: int) -> bool:
    return dtype == SPARSE_FLOAT_VECTOR


def bf16_to_float32(bits: np.ndarray) -> np.ndarray:
    """Raw bfloat16 bits (uint16) to float32: the bits are the float32's upper half."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)


def float32_to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 to raw bfloat16 bits (uint16), rounding to nearest even."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounding = ((u >> np.uint32(16)) & np.uint32(1)) + np.uint32(0x7FFF)
    return ((u + rounding) >> np.uint32(16)).astype(np.uint16)


def as_float32(vectors: np.ndarray, dtype: int) -> np.ndarray:
    """A C-contiguous float32 (n, dim) view or copy of a dense vector column.

    Float16/Int8 columns are widened; BFloat16 columns are raw uint16 bits (an array that is
    already floating point, e.g. float32 queries for a bf16 field, is taken as values).
    """
    arr = np.asarray(vectors)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise invalid(f"vectors must be 2-dimensional, got shape {arr.shape}")
    if dtype == BFLOAT16_VECTOR and arr.dtype == np.uint16:
        arr = bf16_to_float32(arr)
    return np.ascontiguousarray(arr, dtype=np.float32)


def as_binary(vectors: np.ndarray, dim: int | None = None) -> np.ndarray:
    """A C-contiguous uint8 (n, dim // 8) array of packed bits."""
    arr = np.asarray(vectors)
    if arr.dtype != np.uint8:
        if arr.dtype.kind in "iub" and arr.size and (arr.max() > 255 or arr.min() < 0):
            raise invalid("binary vectors must be packed bytes (uint8)")
        arr = arr.astype(np.uint8)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1) if dim is None else arr.reshape(-1, dim // 8)
    if arr.ndim != 2:
        raise invalid(f"binary vectors must be 2-dimensional, got shape {arr.shape}")
    if dim is not None and arr.shape[1] * 8 != dim:
        raise invalid(f"the dim ({arr.shape[1] * 8}) of binary vectors is not equal to index dim ({dim})")
    return np.ascontiguousarray(arr)


def vector_dim(vectors: np.ndarray, dtype: int) -> int:
    """The logical dimension of a dense or binary column (bits for binary)."""
    arr = np.asarray(vectors)
    width = arr.shape[-1] if arr.ndim >= 1 else 0
    return int(width) * 8 if dtype == BINARY_VECTOR else int(width)
