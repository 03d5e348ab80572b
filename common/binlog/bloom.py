"""Vectorised 64-bit hashing of primary keys and the bloom filter of the PK stats log.

Deletes are routed to the segments that may hold their primary keys, so membership tests
run for whole batches of keys: hashes are computed with numpy (splitmix64 for int64 keys;
for strings a polynomial hash over the UTF-8 bytes computed with reduceat, then mixed),
and the filter's bit positions come from double hashing. No per-key Python loop.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_POLY = _U64(0x100000001B3)  # FNV-64 prime as the polynomial base


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser over a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=_U64) + _GOLDEN
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        return z ^ (z >> _U64(31))


def hash_strings(values: np.ndarray) -> np.ndarray:
    """uint64 hash of each string, from its UTF-8 bytes, without a per-string Python loop."""
    arr = pa.array(values, type=pa.large_string())
    n = len(arr)
    if n == 0:
        return np.empty(0, dtype=_U64)
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    lengths = np.diff(offsets)
    h = np.zeros(n, dtype=_U64)
    total = int(offsets[-1] - offsets[0])
    if total:
        body = data[offsets[0] : offsets[-1]].astype(_U64)
        ends = np.repeat(offsets[1:] - offsets[0], lengths)  # end offset of each byte's string
        from_end = ends - 1 - np.arange(total)
        powers = _powers(int(lengths.max()))
        with np.errstate(over="ignore"):
            contrib = (body + _U64(1)) * powers[from_end]
        nonempty = lengths > 0
        starts = (offsets[:-1] - offsets[0])[nonempty]
        h[nonempty] = np.add.reduceat(contrib, starts)
    with np.errstate(over="ignore"):
        return splitmix64(h ^ (lengths.astype(_U64) * _GOLDEN))


def _powers(n: int) -> np.ndarray:
    """POLY**i mod 2**64 for i < n."""
    out = np.empty(max(n, 1), dtype=_U64)
    out[0] = 1
    step = 1
    with np.errstate(over="ignore"):
        while step < n:  # doubling: O(log n) numpy ops
            width = min(step, n - step)
            out[step : step + width] = out[:width] * _pow(step)
            step += width
    return out


def _pow(e: int) -> np.uint64:
    return np.uint64(pow(int(_POLY), e, 1 << 64))


def hash_keys(pks: np.ndarray) -> np.ndarray:
    """uint64 hashes of int64 or string primary keys."""
    arr = np.asarray(pks)
    if arr.dtype.kind in "iu":
        return splitmix64(arr.astype(np.int64).view(_U64))
    return hash_strings(arr)


class BloomFilter:
    """A bit array of ``m`` bits (a multiple of 64) probed at ``k`` positions per key."""

    def __init__(self, bits: np.ndarray, k: int) -> None:
        self.bits = np.ascontiguousarray(bits, dtype=_U64)
        self.k = int(k)
        self.m = self.bits.size * 64

    @classmethod
    def for_capacity(cls, n: int, fp_rate: float = 0.01) -> BloomFilter:
        n = max(int(n), 1)
        m = math.ceil(-n * math.log(fp_rate) / (math.log(2) ** 2))
        k = max(1, round(m / n * math.log(2)))
        return cls(np.zeros((m + 63) // 64, dtype=_U64), k)

    def _positions(self, hashes: np.ndarray) -> np.ndarray:
        """(k, n) bit positions by double hashing (h1 + i * h2) mod m."""
        h1 = hashes
        h2 = splitmix64(hashes ^ _U64(0xA5A5A5A5A5A5A5A5)) | _U64(1)
        steps = np.arange(self.k, dtype=_U64)[:, None]
        with np.errstate(over="ignore"):
            return (h1[None, :] + steps * h2[None, :]) % _U64(self.m)

    def add_hashes(self, hashes: np.ndarray) -> None:
        pos = self._positions(hashes).ravel()
        words, bit = pos >> _U64(6), pos & _U64(63)
        np.bitwise_or.at(self.bits, words.astype(np.int64), _U64(1) << bit)

    def contains_hashes(self, hashes: np.ndarray) -> np.ndarray:
        if hashes.size == 0:
            return np.zeros(0, dtype=bool)
        pos = self._positions(hashes)
        words, bit = (pos >> _U64(6)).astype(np.int64), pos & _U64(63)
        hit = (self.bits[words] >> bit) & _U64(1)
        return np.all(hit == 1, axis=0)
