"""The messages that flow on DML channels: insert, delete and timetick.

A proxy produces them, datanodes and querynodes consume them. Each carries the vchannel it
belongs to (many vchannels share one physical channel) and a hybrid timestamp. Columns travel
keyed by field id, encoded by :mod:`common.codec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.codec import pack, unpack

INSERT = "insert"
DELETE = "delete"
TIMETICK = "tt"

# Keep every message well below the broker's 5 MB limit: big inserts are split.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass
class InsertMsg:
    vchannel: str
    collection_id: int
    partition_id: int
    segment_id: int
    timestamp: int
    row_ids: np.ndarray  # int64, unique per row (Milvus's RowID system field)
    columns: dict[int, np.ndarray]  # field id -> column
    valid: dict[int, np.ndarray] = field(default_factory=dict)  # nullable fields' masks

    @property
    def num_rows(self) -> int:
        return len(self.row_ids)


@dataclass
class DeleteMsg:
    vchannel: str
    collection_id: int
    partition_id: int  # -1: every partition
    timestamp: int
    pks: np.ndarray


@dataclass
class TimeTickMsg:
    timestamp: int


Message = InsertMsg | DeleteMsg | TimeTickMsg


def encode(msg: Message) -> bytes:
    if isinstance(msg, InsertMsg):
        body: dict[str, Any] = {
            "t": INSERT,
            "vc": msg.vchannel,
            "c": msg.collection_id,
            "p": msg.partition_id,
            "s": msg.segment_id,
            "ts": msg.timestamp,
            "rid": msg.row_ids,
            "cols": msg.columns,
            "valid": msg.valid,
        }
    elif isinstance(msg, DeleteMsg):
        body = {
            "t": DELETE,
            "vc": msg.vchannel,
            "c": msg.collection_id,
            "p": msg.partition_id,
            "ts": msg.timestamp,
            "pks": msg.pks,
        }
    else:
        body = {"t": TIMETICK, "ts": msg.timestamp}
    return pack(body)


def decode(data: bytes) -> Message:
    body = unpack(data)
    kind = body["t"]
    if kind == INSERT:
        return InsertMsg(
            vchannel=body["vc"],
            collection_id=body["c"],
            partition_id=body["p"],
            segment_id=body["s"],
            timestamp=body["ts"],
            row_ids=body["rid"],
            columns={int(k): v for k, v in body["cols"].items()},
            valid={int(k): v for k, v in body.get("valid", {}).items()},
        )
    if kind == DELETE:
        return DeleteMsg(
            vchannel=body["vc"],
            collection_id=body["c"],
            partition_id=body["p"],
            timestamp=body["ts"],
            pks=body["pks"],
        )
    if kind == TIMETICK:
        return TimeTickMsg(timestamp=body["ts"])
    raise ValueError(f"unknown message kind {kind!r}")


def split_rows(n: int, row_bytes: int) -> list[slice]:
    """Row ranges that keep each insert message under :data:`MAX_MESSAGE_BYTES`."""
    per = max(1, MAX_MESSAGE_BYTES // max(1, row_bytes))
    return [slice(i, min(n, i + per)) for i in range(0, n, per)] or [slice(0, 0)]
