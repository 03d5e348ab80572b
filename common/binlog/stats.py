"""The stats log of a segment: primary key min/max, row count and a bloom filter.

Querynodes and datanodes load one per flushed segment to decide which segments a delete
may touch; ``may_contain`` answers for a whole batch of keys at once (no false negatives,
about 1% false positives at the size the filter was built for).
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from common.errors import invalid

from .bloom import BloomFilter, hash_keys

MAGIC = b"QVPKS1"
_LEN = struct.Struct("<I")
FP_RATE = 0.01


class PkStats:
    """Stats of one segment's primary keys (int64 or string)."""

    def __init__(self, min_pk: Any, max_pk: Any, count: int, is_string: bool, bloom: BloomFilter) -> None:
        self.min_pk = min_pk
        self.max_pk = max_pk
        self.count = count
        self.is_string = is_string
        self.bloom = bloom

    @classmethod
    def build(cls, pks: np.ndarray, fp_rate: float = FP_RATE) -> PkStats:
        arr = np.asarray(pks)
        is_string = arr.dtype.kind not in "iu"
        if not is_string:
            arr = arr.astype(np.int64, copy=False)
        bloom = BloomFilter.for_capacity(len(arr), fp_rate)
        if len(arr) == 0:
            return cls(None, None, 0, is_string, bloom)
        bloom.add_hashes(hash_keys(arr))
        lo, hi = (min(arr), max(arr)) if is_string else (int(arr.min()), int(arr.max()))
        return cls(lo, hi, len(arr), is_string, bloom)

    def may_contain(self, pks: np.ndarray) -> np.ndarray:
        """Per key: False means certainly absent; True means possibly present."""
        arr = np.asarray(pks)
        if self.count == 0 or len(arr) == 0:
            return np.zeros(len(arr), dtype=bool)
        if (arr.dtype.kind in "iu") == self.is_string:
            return np.zeros(len(arr), dtype=bool)  # an int key never matches a string PK column
        if not self.is_string:
            arr = arr.astype(np.int64, copy=False)
        in_range = (arr >= self.min_pk) & (arr <= self.max_pk)
        out = np.zeros(len(arr), dtype=bool)
        if in_range.any():
            out[in_range] = self.bloom.contains_hashes(hash_keys(arr[in_range]))
        return out

    def to_bytes(self) -> bytes:
        header = {
            "min": self.min_pk,
            "max": self.max_pk,
            "count": self.count,
            "string": self.is_string,
            "k": self.bloom.k,
            "words": int(self.bloom.bits.size),
        }
        head = json.dumps(header).encode()
        return b"".join([MAGIC, _LEN.pack(len(head)), head, self.bloom.bits.astype("<u8").tobytes()])

    @classmethod
    def from_bytes(cls, data: bytes) -> PkStats:
        view = memoryview(data)
        if bytes(view[: len(MAGIC)]) != MAGIC:
            raise invalid("stats log is corrupted: bad magic")
        (head_len,) = _LEN.unpack_from(view, len(MAGIC))
        start = len(MAGIC) + 4
        header = json.loads(bytes(view[start : start + head_len]))
        bits = np.frombuffer(view[start + head_len :], dtype="<u8").astype(np.uint64)
        if bits.size != header["words"]:
            raise invalid("stats log is corrupted: size mismatch")
        bloom = BloomFilter(bits, header["k"])
        return cls(header["min"], header["max"], int(header["count"]), bool(header["string"]), bloom)

    def __repr__(self) -> str:
        return f"PkStats(min={self.min_pk!r}, max={self.max_pk!r}, count={self.count}, bits={self.bloom.m})"
