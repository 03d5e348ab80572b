"""Which shard (vchannel) and which partition-key bucket a row of an import belongs to.

It must agree with the proxy's insert routing (services/proxy/sharding.py, which roles may not
import): a delete is sent to the shard of its primary key's hash, and only that channel's
datanode writes delta logs for the segments on it. A unit test holds the two equal.
"""

from __future__ import annotations

import zlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def bucket_of(keys: np.ndarray, buckets: int) -> np.ndarray:
    """The bucket (0..buckets-1) of each key: a 64-bit multiplicative mix for ints, CRC32 for strings."""
    if buckets <= 1:
        return np.zeros(len(keys), dtype=np.int64)
    if keys.dtype == object or keys.dtype.kind in "US":
        h = np.fromiter((zlib.crc32(str(k).encode()) for k in keys), dtype=np.uint64, count=len(keys))
    else:
        with np.errstate(over="ignore"):
            h = (keys.astype(np.int64).view(np.uint64) * _GOLDEN) >> np.uint64(32)
    return (h % np.uint64(buckets)).astype(np.int64)
