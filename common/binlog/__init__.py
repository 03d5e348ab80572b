"""The on-storage format of segments: insert binlogs, delta logs, stats logs and their keys.

Datanodes encode what they flush; querynodes, indexnodes and compaction decode it. Insert
and delta logs are single-row-group Parquet files (pyarrow); the stats log is a small
header plus the bloom filter's bits. Key helpers give Milvus's object storage layout.
"""

from __future__ import annotations

from .columns import decode_column, encode_column
from .delta import decode_delta_log, encode_delta_log, pack_deletes
from .keys import (
    LogKey,
    delta_log_key,
    index_file_prefix,
    insert_log_key,
    parse_log_key,
    segment_prefix,
    stats_log_key,
)
from .stats import PkStats, SegmentPkStats

ROW_ID_FIELD_ID = 0  # Milvus's hidden system fields, stored as Int64 insert binlogs
TIMESTAMP_FIELD_ID = 1

__all__ = [
    "ROW_ID_FIELD_ID",
    "TIMESTAMP_FIELD_ID",
    "LogKey",
    "PkStats",
    "SegmentPkStats",
    "decode_column",
    "decode_delta_log",
    "delta_log_key",
    "encode_column",
    "encode_delta_log",
    "pack_deletes",
    "index_file_prefix",
    "insert_log_key",
    "parse_log_key",
    "segment_prefix",
    "stats_log_key",
]
