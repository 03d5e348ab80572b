"""Load a sealed segment from object storage: binlogs per field, delta logs, index files.

Vector indexes come from the files their build wrote; scalar indexes have no files and are
built here, from the loaded column (see scalar_index.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pymilvus.grpc_gen.schema_pb2 import DataType

from common import binlog
from common.errors import Code, MilvusError
from common.index import load_index
from common.schema import Field, Schema
from common.storage.base import ObjectStorage
from services.querynode.columns import ColumnStore
from services.querynode.scalar_index import SortedIndex
from services.querynode.segment import DELETED, TS, Segment

TIMESTAMP_FIELD = 1
SORTABLE = frozenset(
    {DataType.Int8, DataType.Int16, DataType.Int32, DataType.Int64, DataType.Float, DataType.Double, DataType.VarChar,
     DataType.Timestamptz}
)


def _read_field(storage: ObjectStorage, field: Field, keys: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    parts = [binlog.decode_column(field, storage.get(k)) for k in keys]
    if len(parts) == 1:
        return parts[0]
    col = np.concatenate([p[0] for p in parts])
    valid = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])  # type: ignore[misc]
    return col, valid


def estimate_bytes(storage: ObjectStorage, seg: dict[str, Any], indexes: list[dict[str, Any]]) -> int:
    keys = [k for keys in seg["binlogs"].values() for k in keys] + [f for b in indexes for f in b["files"]]
    return sum(storage.size(k) for k in keys)


def load_segment(
    storage: ObjectStorage, schema: Schema, seg: dict[str, Any], version: str, indexes: list[dict[str, Any]]
) -> Segment:
    binlogs = {int(k): v for k, v in seg["binlogs"].items()}
    n = int(seg["num_rows"])
    cols: dict[str, np.ndarray] = {}
    try:
        ts_field = Field(field_id=TIMESTAMP_FIELD, name=TS, dtype=5)
        cols[TS] = _read_field(storage, ts_field, binlogs[TIMESTAMP_FIELD])[0].astype(np.int64, copy=False)
        for f in schema.fields:
            if f.field_id not in binlogs:
                continue
            col, valid = _read_field(storage, f, binlogs[f.field_id])
            cols[f.name] = col
            if valid is not None:
                cols[f"{f.name}.valid"] = valid
    except KeyError as exc:
        raise MilvusError(Code.SEGMENT_LOAD_FAILED, f"segment {seg['id']} binlog missing: {exc}") from exc
    cols[DELETED] = np.zeros(n, dtype=np.int64)
    segment = Segment(
        seg["id"],
        seg["partition_id"],
        seg["vchannel"],
        schema,
        True,
        ColumnStore.of(cols, n),
        version=version,
        max_ts=int(cols[TS].max()) if n else 0,
    )
    for build in indexes:
        f = schema.field_by_id(build["field_id"])
        if build.get("scalar"):
            if f.dtype in SORTABLE and f.name in cols:
                segment.scalar_indexes[f.name] = SortedIndex(cols[f.name], cols.get(f"{f.name}.valid"))
            continue
        if not build["files"]:
            continue
        segment.indexes[f.name] = load_index(storage.get(build["files"][0]))
    for key in seg.get("deltalogs", []):
        pks, ts = binlog.decode_delta_log(storage.get(key))
        for t in np.unique(ts):
            segment.apply_delete(pks[ts == t], int(t))
    return segment
