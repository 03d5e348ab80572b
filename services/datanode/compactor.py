"""Execute a compaction plan: merge flushed segments into one, without the rows deleted from them.

The datanode watching the segments' vchannel runs this inside its channel thread (between
two messages, so it never interleaves with a sync): it reads every insert binlog and delta
log of the inputs, drops each row whose primary key a delete names with a later timestamp
than the row, and writes the survivors as a new segment (insert binlogs per field with the
RowID/Timestamp system fields, and a PK stats log). Rows keep their original timestamps,
so later deletes still apply to them exactly as they would have to the inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pymilvus.grpc_gen.schema_pb2 import DataType

from common import binlog
from common.collection_props import missing_column
from common.schema import Field, Schema
from common.storage.base import ObjectStorage

SYSTEM_FIELDS = (
    Field(field_id=binlog.ROW_ID_FIELD_ID, name="RowID", dtype=DataType.Int64),
    Field(field_id=binlog.TIMESTAMP_FIELD_ID, name="Timestamp", dtype=DataType.Int64),
)


@dataclass
class CompactionOutput:
    segment_id: int
    num_rows: int
    input_rows: int
    binlogs: dict[int, list[str]] = field(default_factory=dict)
    statslogs: list[str] = field(default_factory=list)
    stats: binlog.PkStats | None = None
    deltalogs_read: dict[int, list[str]] = field(default_factory=dict)  # input id -> delta logs applied

    @property
    def written(self) -> list[str]:
        return [k for keys in self.binlogs.values() for k in keys] + self.statslogs

    def record(self) -> dict[str, Any]:
        """What the coordinator records for the new segment."""
        return {"id": self.segment_id, "num_rows": self.num_rows, "binlogs": self.binlogs, "statslogs": self.statslogs}


def deleted_mask(pks: np.ndarray, row_ts: np.ndarray, del_pks: np.ndarray, del_ts: np.ndarray) -> np.ndarray:
    """Per row: a delete of its primary key is newer than the row (so the row is gone)."""
    if len(del_pks) == 0 or len(pks) == 0:
        return np.zeros(len(pks), dtype=bool)
    uniq, inverse = np.unique(del_pks, return_inverse=True)
    newest = np.zeros(len(uniq), dtype=np.int64)
    np.maximum.at(newest, inverse.reshape(-1), del_ts.astype(np.int64, copy=False))
    pos = np.minimum(np.searchsorted(uniq, pks), len(uniq) - 1)
    return np.asarray(uniq[pos] == pks, dtype=bool) & (newest[pos] > row_ts)


def _read_column(storage: ObjectStorage, f: Field, keys: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    parts = [binlog.decode_column(f, storage.get(k)) for k in keys]
    if len(parts) == 1:
        return parts[0]
    col = np.concatenate([p[0] for p in parts])
    valids = [p[1] for p in parts]
    return col, (None if any(v is None for v in valids) else np.concatenate(valids))  # type: ignore[arg-type]


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def compact_segments(
    storage: ObjectStorage,
    schema: Schema,
    collection_id: int,
    partition_id: int,
    inputs: list[dict[str, Any]],
    new_id: int,
    log_id: Callable[[], int],
    expire_ts: int = 0,
) -> CompactionOutput:
    """Merge ``inputs`` (segment records) into segment ``new_id``; returns what was written.

    Rows older than ``expire_ts`` (the collection TTL or a truncate cut-off) are dropped like
    deleted ones. An input written before a field was added has no binlog of it: its rows get
    the field's default or nulls.
    """
    binlogs = [{int(k): list(v) for k, v in seg["binlogs"].items()} for seg in inputs]
    fields = [f for f in (*SYSTEM_FIELDS, *schema.fields) if any(f.field_id in b for b in binlogs)]
    ids = [s["id"] for s in inputs]
    required = [*SYSTEM_FIELDS, schema.primary]
    if any(f.field_id not in b for f in required for b in binlogs):
        raise ValueError(f"segments {ids} lack binlogs of the primary key or system fields")
    cols: dict[int, list[np.ndarray]] = {f.field_id: [] for f in fields}
    valid: dict[int, list[np.ndarray | None]] = {f.field_id: [] for f in fields}
    for b in binlogs:
        n = 0
        for f in sorted(fields, key=lambda f: f.field_id not in b):  # present ones first: they give n
            if f.field_id in b:
                col, ok = _read_column(storage, f, b[f.field_id])
                n = len(col)
            else:
                col, ok = missing_column(f, n)
            cols[f.field_id].append(col)
            valid[f.field_id].append(ok)
    out = CompactionOutput(new_id, 0, 0, deltalogs_read={int(s["id"]): list(s.get("deltalogs", [])) for s in inputs})
    del_pks_parts, del_ts_parts = [], []
    for seg in inputs:
        for key in seg.get("deltalogs", []):
            p, t = binlog.decode_delta_log(storage.get(key))
            del_pks_parts.append(p)
            del_ts_parts.append(t)
    pk_id = schema.primary.field_id
    pks = _concat(cols[pk_id])
    row_ts = _concat(cols[binlog.TIMESTAMP_FIELD_ID]).astype(np.int64, copy=False)
    out.input_rows = len(pks)
    keep = row_ts >= expire_ts if expire_ts else np.ones(len(pks), dtype=bool)
    if del_pks_parts:
        keep &= ~deleted_mask(pks, row_ts, np.concatenate(del_pks_parts), np.concatenate(del_ts_parts))
    out.num_rows = int(keep.sum())
    if out.num_rows == 0:
        return out
    for f in fields:
        col = _concat(cols[f.field_id])[keep]
        parts = valid[f.field_id]
        ok = None if any(v is None for v in parts) else _concat(parts)[keep]  # type: ignore[arg-type]
        key = binlog.insert_log_key(collection_id, partition_id, new_id, f.field_id, log_id())
        storage.put(key, binlog.encode_column(f, col, ok))
        out.binlogs[f.field_id] = [key]
    out.stats = binlog.PkStats.build(pks[keep])
    stats_key = binlog.stats_log_key(collection_id, partition_id, new_id, pk_id, log_id())
    storage.put(stats_key, out.stats.to_bytes())
    out.statslogs = [stats_key]
    return out
