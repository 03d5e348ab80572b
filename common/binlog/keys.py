"""Object storage keys of a segment's files, laid out as Milvus lays them out.

Datanodes write, querynodes and indexnodes read, and coord's garbage collector lists and
deletes these paths, so they are built and parsed in one place. Keys are relative to the
storage root and never start with "/".
"""

from __future__ import annotations

from typing import NamedTuple

INSERT_LOG = "insert_log"
DELTA_LOG = "delta_log"
STATS_LOG = "stats_log"
INDEX_FILES = "index_files"


def insert_log_key(coll: int, part: int, seg: int, field_id: int, log_id: int) -> str:
    """``insert_log/{coll}/{part}/{seg}/{field}/{logID}``: one column of one flush."""
    return f"{INSERT_LOG}/{coll}/{part}/{seg}/{field_id}/{log_id}"


def delta_log_key(coll: int, part: int, seg: int, log_id: int) -> str:
    """``delta_log/{coll}/{part}/{seg}/{logID}``: deleted primary keys with their timestamps."""
    return f"{DELTA_LOG}/{coll}/{part}/{seg}/{log_id}"


def stats_log_key(coll: int, part: int, seg: int, field_id: int, log_id: int) -> str:
    """``stats_log/{coll}/{part}/{seg}/{field}/{logID}``: PK min/max and bloom filter."""
    return f"{STATS_LOG}/{coll}/{part}/{seg}/{field_id}/{log_id}"


def index_file_prefix(coll: int, part: int, seg: int, build_id: int, version: int) -> str:
    """``index_files/{coll}/{part}/{seg}/{buildID}/{version}/``: the files of one index build."""
    return f"{INDEX_FILES}/{coll}/{part}/{seg}/{build_id}/{version}/"


def segment_prefix(kind: str, coll: int, part: int | None = None, seg: int | None = None) -> str:
    """Prefix of every ``kind`` file of a collection, a partition, or one segment (for GC)."""
    parts = [kind, str(coll)]
    if part is not None:
        parts.append(str(part))
        if seg is not None:
            parts.append(str(seg))
    return "/".join(parts) + "/"


class LogKey(NamedTuple):
    kind: str
    collection_id: int
    partition_id: int
    segment_id: int
    field_id: int | None  # None for delta logs and index files
    log_id: int | None  # build id for index files


def parse_log_key(key: str) -> LogKey:
    """Split a key made by the helpers above; ValueError if it is not one."""
    parts = key.strip("/").split("/")
    try:
        kind = parts[0]
        coll, part, seg = (int(p) for p in parts[1:4])
        if kind in (INSERT_LOG, STATS_LOG) and len(parts) == 6:
            return LogKey(kind, coll, part, seg, int(parts[4]), int(parts[5]))
        if kind == DELTA_LOG and len(parts) == 5:
            return LogKey(kind, coll, part, seg, None, int(parts[4]))
        if kind == INDEX_FILES and len(parts) >= 6:
            return LogKey(kind, coll, part, seg, None, int(parts[4]))
    except (IndexError, ValueError):
        pass
    raise ValueError(f"not a segment log key: {key}")
