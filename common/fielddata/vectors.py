"""Bit-level facts about vector payloads shared by inserts, search placeholders and outputs.

Milvus moves vectors as raw little-endian bytes: float16 and bfloat16 as 2-byte words,
sparse rows as (uint32 index, float32 value) pairs sorted by index. Clients may also send
float32 values for a float16/bfloat16 field, which the server converts. These helpers turn
those payloads into numpy arrays (and back) in bulk, and apply Milvus's NaN/Inf and
sparse-row checks with its messages.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._errors import not_a_number, plain

SPARSE_PAIR = np.dtype([("index", "<u4"), ("value", "<f4")])
_MAX_SPARSE_INDEX = 2**32 - 1


def check_finite(values: np.ndarray) -> None:
    """Reject the first NaN or infinity in float data (typeutil.VerifyFloats32/64)."""
    if values.size and not np.isfinite(values).all():
        flat = values.reshape(-1)
        raise not_a_number(float(flat[~np.isfinite(flat)][0]))


def check_half_finite(bits: np.ndarray, bfloat: bool) -> None:
    """Reject NaN/Inf in float16 or bfloat16 words given as uint16 (exponent all ones)."""
    mask = 0x7F80 if bfloat else 0x7C00
    if bits.size and ((bits & mask) == mask).any():
        kind = "bfloat16" if bfloat else "float16"
        raise plain(f"{kind} vector contain nan or infinity value.")


def float32_to_bfloat16(values: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 bits (round to nearest even), as uint16."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = bits + (((bits >> 16) & 1) + 0x7FFF)
    return (rounded >> 16).astype(np.uint16)


def bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    """Widen bfloat16 bits (uint16) to float32 values exactly."""
    return (np.ascontiguousarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def from_float32(values: np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    """Convert float32 vectors to a half-precision field's representation (float16 or bf16 bits)."""
    if dtype is np.uint16:
        return float32_to_bfloat16(values)
    return values.astype(np.float16)


def parse_sparse_rows(rows: Sequence[bytes]) -> np.ndarray:
    """Validate sparse rows (ValidateSparseFloatRows) and return an object array of dicts."""
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    bad = np.flatnonzero(lengths % SPARSE_PAIR.itemsize)
    if bad.size:
        raise plain(f"invalid data length in sparse float vector: {int(lengths[bad[0]])}")
    pairs = np.frombuffer(b"".join(rows), dtype=SPARSE_PAIR)
    counts = lengths // SPARSE_PAIR.itemsize
    _check_sparse_pairs(pairs, counts)
    idx, val = pairs["index"].tolist(), pairs["value"].tolist()
    out = np.empty(len(rows), dtype=object)
    start = 0
    for i, count in enumerate(counts.tolist()):
        end = start + count
        out[i] = dict(zip(idx[start:end], val[start:end], strict=True))
        start = end
    return out


def _check_sparse_pairs(pairs: np.ndarray, counts: np.ndarray) -> None:
    indices, values = pairs["index"], pairs["value"]
    if (indices == _MAX_SPARSE_INDEX).any():
        raise plain("invalid index in sparse float vector: must be less than 2^32-1")
    if indices.size > 1:
        increasing = np.diff(indices.astype(np.int64)) > 0
        row_starts = np.cumsum(counts)[:-1]
        row_starts = row_starts[(row_starts > 0) & (row_starts < indices.size)]
        increasing[row_starts - 1] = True  # a new row may restart from any index
        if not increasing.all():
            raise plain("unsorted or same indices in sparse float vector")
    check_finite(values)
    if (values < 0).any():
        raise plain(f"negative value in sparse float vector: {float(values[values < 0][0]):f}")


def sparse_row_bytes(row: dict[int, float]) -> bytes:
    """One sparse row (index -> value) as Milvus's sorted (uint32, float32) pair bytes."""
    pairs = np.empty(len(row), dtype=SPARSE_PAIR)
    if row:
        keys = sorted(row)
        pairs["index"] = keys
        pairs["value"] = [row[k] for k in keys]
    return pairs.tobytes()


def sparse_dim(rows: Sequence[dict[int, float]]) -> int:
    """The dim Milvus reports for sparse rows: one past the largest index used."""
    return max((max(row) + 1 for row in rows if row), default=0)


def check_row_bytes(row_bytes: int, sizes: Sequence[int]) -> None:
    """Search vectors must each be ``row_bytes`` long (segcore's "vector dimension mismatch")."""
    actual = next((size for size in sizes if size != row_bytes), None)
    if actual is not None:
        raise plain(f"vector dimension mismatch, expected vector size(byte) {row_bytes}, actual {actual}.")
