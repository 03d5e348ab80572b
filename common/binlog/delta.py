"""Delta logs: the primary keys a segment's deletes removed, with each delete's timestamp.

A row is deleted for a reader whose timestamp is at or after the delete's, so querynodes
load every delta log of a segment into (pk, ts) arrays and build delete bitsets from them.
One Parquet file with two columns: "pk" (int64 or utf8) and "ts" (int64 hybrid timestamps).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from common.errors import invalid

from .parquet import read_table, single_chunk, write_table


def pack_deletes(messages: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Delete messages (keys, ts) as one key array and one timestamp array (a ts per key), the
    form delta logs store; messages without keys add nothing. At least one message is needed."""
    keys = np.concatenate([p for p, _ in messages])
    ts = np.repeat(np.array([t for _, t in messages], dtype=np.int64), [len(p) for p, _ in messages])
    return keys, ts


def encode_delta_log(pks: np.ndarray, timestamps: np.ndarray) -> bytes:
    """Parquet bytes of (pk, ts) pairs; pks int64 or strings, timestamps (u)int64."""
    pk_arr = np.asarray(pks)
    ts_arr = np.asarray(timestamps)
    if pk_arr.shape != ts_arr.shape or pk_arr.ndim != 1:
        raise invalid(f"delta log needs one timestamp per pk, got {pk_arr.shape} and {ts_arr.shape}")
    is_string = pk_arr.dtype.kind not in "iu"
    pk_col = pa.array(pk_arr, type=pa.string()) if is_string else pa.array(pk_arr.astype(np.int64, copy=False))
    ts_col = pa.array(ts_arr.astype(np.int64, copy=False))
    return write_table({"pk": pk_col, "ts": ts_col}, {"kind": "delta", "rows": len(pk_arr)}, raw=False)


def decode_delta_log(data: bytes | memoryview) -> tuple[np.ndarray, np.ndarray]:
    """(pks, timestamps): int64 or object-of-str pks, int64 timestamps."""
    table, _ = read_table(data)
    pk = single_chunk(table, "pk")
    ts = single_chunk(table, "ts").to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    if pa.types.is_integer(pk.type):
        return pk.to_numpy(zero_copy_only=False).astype(np.int64, copy=False), ts
    return np.fromiter(pk.to_numpy(zero_copy_only=False), dtype=object, count=len(pk)), ts
