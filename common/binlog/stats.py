"""The stats log of a segment: primary key min/max, row count and a bloom filter.

Querynodes and datanodes load one per flushed segment to decide which segments a delete
may touch; ``may_contain`` answers for a whole batch of keys at once (no false negatives,
about 1% false positives at the size the filter was built for). :class:`SegmentPkStats` reads a
segment's logs as one and is what routing uses.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

from common.errors import MilvusError, invalid

from .bloom import BloomFilter, hash_keys

MAGIC = b"QVPKS1"
_LEN = struct.Struct("<I")
FP_RATE = 0.01
log = logging.getLogger(__name__)


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

    def may_contain(self, pks: np.ndarray, hashes: np.ndarray | None = None) -> np.ndarray:
        """Per key: False means certainly absent; True means possibly present. ``hashes``: the
        keys' ``hash_keys`` when the caller has them (asking many segments about one batch)."""
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
            h = hashes[in_range] if hashes is not None else hash_keys(arr[in_range])
            out[in_range] = self.bloom.contains_hashes(h)
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


class SegmentPkStats:
    """What one segment's stats logs say about its primary keys, read as one (Milvus's pkoracle
    entry): a key may be in the segment if any of its logs may hold it.

    Stats that could not be read (a log missing or corrupt, or rows written without one) make the
    segment *unknown*: it may hold every key, so a delete routed by it goes there — too much, never
    too little. A segment without rows holds none.
    """

    def __init__(self, logs: list[PkStats] | None) -> None:
        self.logs = logs  # None: unknown

    @property
    def unknown(self) -> bool:
        return self.logs is None

    @classmethod
    def read(cls, get: Callable[[str], bytes], keys: list[str], num_rows: int) -> SegmentPkStats:
        """The stats at ``keys`` (``get`` reads one object); unknown if any cannot be read."""
        if not keys:
            return cls([] if num_rows == 0 else None)
        try:
            return cls([PkStats.from_bytes(get(k)) for k in keys])
        except (KeyError, ValueError, struct.error, MilvusError) as exc:
            log.warning("stats log of a segment unreadable (%s): every delete goes to it", exc)
            return cls(None)

    def bounds(self) -> tuple[Any, Any] | None:
        """The smallest and largest key of the segment (None: unknown, or no rows)."""
        logs = [s for s in self.logs or () if s.count]
        if self.logs is None or not logs:
            return None
        return min(s.min_pk for s in logs), max(s.max_pk for s in logs)

    def may_contain(self, pks: np.ndarray, hashes: np.ndarray | None = None) -> np.ndarray:
        """Per key: False means certainly absent; True means possibly present. ``hashes`` as for
        :meth:`PkStats.may_contain`.

        Logs whose min/max range misses the keys' range cost two comparisons: the bloom
        filters run only for the rest.
        """
        if self.logs is None:
            return np.ones(len(pks), dtype=bool)
        out = np.zeros(len(pks), dtype=bool)
        if len(pks) == 0:
            return out
        arr = np.asarray(pks)
        is_string = arr.dtype.kind not in "iu"
        lo: Any = None
        hi: Any = None
        for s in self.logs:
            if s.count == 0 or s.is_string != is_string:
                continue  # an int key never matches a string PK column (nor the reverse)
            if lo is None:
                lo, hi = (min(arr.tolist()), max(arr.tolist())) if is_string else (int(arr.min()), int(arr.max()))
            if hi < s.min_pk or lo > s.max_pk:
                continue
            out |= s.may_contain(arr, hashes)
        return out
