"""The coordinator's metadata records, stored as JSON in the KV store."""

from __future__ import annotations

import base64
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from common.schema import Schema

GROWING = "Growing"
SEALED = "Sealed"
FLUSHED = "Flushed"
DROPPED = "Dropped"


class Record(BaseModel):
    model_config = ConfigDict(ignored_types=(cached_property,))

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class DatabaseInfo(Record):
    id: int
    name: str
    created_ts: int
    properties: dict[str, str] = {}


class PartitionInfo(Record):
    id: int
    collection_id: int
    name: str
    created_ts: int


class CollectionInfo(Record):
    id: int
    db_id: int
    db_name: str
    name: str
    schema_b64: str
    shards_num: int
    vchannels: list[str]
    pchannels: list[str]
    consistency_level: int
    created_ts: int
    properties: dict[str, str] = {}
    description: str = ""

    @cached_property
    def parsed_schema(self) -> Schema:
        return Schema.from_bytes(base64.b64decode(self.schema_b64))

    @staticmethod
    def encode_schema(schema: Schema) -> str:
        return base64.b64encode(schema.to_bytes()).decode()


class SegmentInfo(Record):
    id: int
    collection_id: int
    partition_id: int
    vchannel: str
    state: str = GROWING
    num_rows: int = 0  # rows the datanode has seen (flushed: rows in the binlogs)
    assigned_rows: int = 0
    max_rows: int = 0
    created_ts: int = 0
    last_assign_ts: int = 0
    seal_ts: int = 0
    flush_ts: int = 0
    binlogs: dict[int, list[str]] = {}  # field id -> insert_log keys
    statslogs: list[str] = []
    deltalogs: list[str] = []
    start_position: str | None = None  # b64 message id of its first insert
    dml_position: str | None = None  # b64 message id up to which it is flushed
    deleted_rows: int = 0  # delete entries in its delta logs (an upper bound of its deleted rows)
    compacted_from: list[int] = []  # the segments a compaction merged into this one
    compacted_to: int = 0  # the compaction result that replaced this (dropped) segment
    dropped_at_ms: int = 0  # wall-clock time it was dropped; garbage-collected after a tolerance
    # committed outside the datanode's flush (import, compaction): its delta logs are complete up to
    # delta_floor_ts until the channel's checkpoint saves reach delta_covered_seq (delta_watermark.py)
    delta_floor_ts: int = 0
    delta_covered_seq: int = 0


class IndexInfo(Record):
    id: int
    collection_id: int
    field_id: int
    name: str
    index_type: str
    metric_type: str
    params: dict[str, Any]  # normalised build params
    user_params: dict[str, str]  # what the user sent, for DescribeIndex
    created_ts: int


class SegmentIndexInfo(Record):
    build_id: int
    index_id: int
    segment_id: int
    collection_id: int
    partition_id: int
    state: str = "InProgress"  # InProgress | Finished | Failed
    node_endpoint: str = ""
    files: list[str] = []
    num_rows: int = 0
    size: int = 0
    fail_reason: str = ""
    attempts: int = 0


class Tombstone(Record):
    """Something dropped whose files outlive its metadata until garbage collection removes them.

    ``kind`` is "collection", "partition" or "index"; ``prefixes`` are the object storage
    prefixes to delete (an index's build directories; empty: derived from the ids).
    """

    kind: str
    collection_id: int
    partition_id: int = 0
    index_id: int = 0
    dropped_at_ms: int
    prefixes: list[str] = []


class LoadInfo(Record):
    collection_id: int
    partition_ids: list[int]  # empty: the whole collection
    replica_number: int = 1
    load_all: bool = True
    # placement that survives a coordinator restart: [{"id", "nodes": [endpoint], "channels": {vchannel: endpoint}}]
    replicas: list[dict[str, Any]] = Field(default_factory=list)


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def unb64(data: str | None) -> bytes | None:
    return None if data is None else base64.b64decode(data)
