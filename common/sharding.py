"""Hash primary keys (and partition keys) to buckets, vectorised.

Integers go through a 64-bit multiplicative mix; strings through CRC32. The same key always
lands in the same shard, so a delete reaches the channel that carried the insert. The proxy
routes inserts and deletes with it, the datanode routes bulk-imported rows with it: one
function, so the two can never disagree.
"""

from __future__ import annotations

import zlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def bucket_of(keys: np.ndarray, buckets: int) -> np.ndarray:
    """The bucket (0..buckets-1) of each key."""
    if buckets <= 1:
        return np.zeros(len(keys), dtype=np.int64)
    if keys.dtype == object or keys.dtype.kind in "US":
        h = np.fromiter((zlib.crc32(str(k).encode()) for k in keys), dtype=np.uint64, count=len(keys))
    else:
        with np.errstate(over="ignore"):
            h = (keys.astype(np.int64).view(np.uint64) * _GOLDEN) >> np.uint64(32)
    return (h % np.uint64(buckets)).astype(np.int64)
