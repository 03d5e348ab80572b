"""The write buffer of one growing segment: columns appended batch by batch, read once at flush."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from common.collection_props import missing_column
from common.msgs import InsertMsg
from common.schema import Schema


@dataclass
class SegmentBuffer:
    segment_id: int
    partition_id: int
    start_after: str | None  # checkpoint (b64 message id) from which this segment's rows replay
    chunks: list[InsertMsg] = field(default_factory=list)
    rows: int = 0
    min_ts: int = 0  # the oldest buffered row's timestamp (0: none yet)

    def append(self, msg: InsertMsg) -> None:
        self.chunks.append(msg)
        self.rows += msg.num_rows
        self.min_ts = msg.timestamp if not self.min_ts else min(self.min_ts, msg.timestamp)

    def columns(
        self, schema: Schema | None = None
    ) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray], dict[int, np.ndarray]]:
        """(row ids, timestamps, field id -> column, field id -> validity) of all buffered rows.

        When a field was added while the segment was growing, chunks written before it lack its
        column: they get the field's default or nulls (``schema`` says which).
        """
        if schema is not None:
            self._align(schema)
        row_ids = np.concatenate([m.row_ids for m in self.chunks]) if self.chunks else np.empty(0, np.int64)
        ts = (
            np.concatenate([np.full(m.num_rows, m.timestamp, dtype=np.int64) for m in self.chunks])
            if self.chunks
            else np.empty(0, np.int64)
        )
        cols: dict[int, np.ndarray] = {}
        valid: dict[int, np.ndarray] = {}
        if self.chunks:
            for fid in self.chunks[0].columns:
                cols[fid] = np.concatenate([m.columns[fid] for m in self.chunks])
            for fid in self.chunks[0].valid:
                valid[fid] = np.concatenate([m.valid[fid] for m in self.chunks])
        return row_ids, ts, cols, valid

    def _align(self, schema: Schema) -> None:
        fids = {fid for m in self.chunks for fid in m.columns}
        for m in self.chunks:
            for fid in fids - set(m.columns):
                values, valid = missing_column(schema.field_by_id(fid), m.num_rows)
                m.columns[fid] = values
                if valid is not None:
                    m.valid[fid] = valid
            for fid in fids:
                f = schema.field_by_id(fid)
                if f.nullable and fid not in m.valid:
                    m.valid[fid] = np.ones(m.num_rows, dtype=np.bool_)
