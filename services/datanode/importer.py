"""The datanode's import worker: read a job's files, write their rows as segments, ask coord to commit.

Milvus's datanode imports the same way: every file of the job is read and checked first (a
bad file fails the job before anything is written), then the rows get row ids, primary keys
(auto_id), one timestamp, a shard by primary key hash and a partition (by partition key hash,
exactly as the proxy routes inserts), and each (shard, partition) group is cut into segments
of at most the coordinator's segment size. Each segment is written as insert binlogs (with the
RowID and Timestamp system fields) and a PK stats log, then the coordinator registers them all
at once. A refused commit (the job was retried or dropped meanwhile) deletes the files again.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymilvus.grpc_gen.schema_pb2 import DataType

from common import binlog
from common.backends import open_storage
from common.config import QuiverConfig
from common.errors import MilvusError
from common.fielddata import concat_columns, take_rows, valid_name
from common.imports import Columns, ImportFileError, bucket_of, read_batch
from common.rpc import Caller
from common.schema import Field, Schema
from common.storage.base import ObjectStorage

log = logging.getLogger(__name__)

SYSTEM_FIELDS = (
    Field(field_id=binlog.ROW_ID_FIELD_ID, name="RowID", dtype=DataType.Int64),
    Field(field_id=binlog.TIMESTAMP_FIELD_ID, name="Timestamp", dtype=DataType.Int64),
)


def source_storage(cfg: QuiverConfig, storage: ObjectStorage) -> ObjectStorage:
    """Where import files are read: the bucket itself on S3 (as Milvus), else the storage root."""
    if cfg.storage.backend != "s3":
        return storage
    bucket_root = cfg.model_copy(update={"storage": cfg.storage.model_copy(update={"root_path": ""})})
    return open_storage(bucket_root)


@dataclass
class ImportTask:
    job_id: int
    attempt: int
    collection_id: int
    schema: Schema
    vchannels: list[str]
    partition_ids: list[int]
    files: list[list[str]]
    max_rows: int

    @classmethod
    def parse(cls, task: dict[str, Any]) -> ImportTask:
        return cls(
            job_id=int(task["job_id"]), attempt=int(task["attempt"]), collection_id=int(task["collection_id"]),
            schema=Schema.from_bytes(base64.b64decode(task["schema"])), vchannels=list(task["vchannels"]),
            partition_ids=[int(p) for p in task["partition_ids"]], files=[list(g) for g in task["files"]],
            max_rows=max(1, int(task["max_rows"])),
        )


def route(
    schema: Schema, columns: Columns, vchannels: list[str], partition_ids: list[int]
) -> dict[tuple[int, int], np.ndarray]:
    """Row indices per (shard, partition id), as the proxy routes an insert."""
    pks = columns[schema.primary.name]
    shards = bucket_of(pks, len(vchannels))
    key = schema.partition_key
    if key is not None and len(partition_ids) > 1:
        parts = np.asarray(partition_ids, dtype=np.int64)[bucket_of(columns[key.name], len(partition_ids))]
    else:
        parts = np.full(len(pks), partition_ids[0], dtype=np.int64)
    out: dict[tuple[int, int], np.ndarray] = {}
    for shard in range(len(vchannels)):
        in_shard = shards == shard
        for pid in np.unique(parts[in_shard]):
            out[(shard, int(pid))] = np.flatnonzero(in_shard & (parts == pid))
    return out


def write_segment(
    storage: ObjectStorage, schema: Schema, collection_id: int, partition_id: int, segment_id: int,
    columns: Columns, row_ids: np.ndarray, ts: int, log_id: Callable[[], int],
) -> dict[str, Any]:
    """Insert binlogs (system fields included) and a PK stats log of one segment; its record."""
    n = len(row_ids)
    binlogs: dict[int, list[str]] = {}
    data: list[tuple[Field, np.ndarray, np.ndarray | None]] = [
        (SYSTEM_FIELDS[0], row_ids, None), (SYSTEM_FIELDS[1], np.full(n, ts, dtype=np.int64), None)
    ]
    data += [(f, columns[f.name], columns.get(valid_name(f.name))) for f in schema.fields]
    for f, column, valid in data:
        key = binlog.insert_log_key(collection_id, partition_id, segment_id, f.field_id, log_id())
        storage.put(key, binlog.encode_column(f, column, valid))
        binlogs[f.field_id] = [key]
    pk = schema.primary
    stats_key = binlog.stats_log_key(collection_id, partition_id, segment_id, pk.field_id, log_id())
    storage.put(stats_key, binlog.PkStats.build(columns[pk.name]).to_bytes())
    return {"id": segment_id, "partition_id": partition_id, "num_rows": n, "binlogs": binlogs,
            "statslogs": [stats_key]}


class ImportWorker:
    """Runs import tasks on their own threads (one per job attempt)."""

    def __init__(self, storage: ObjectStorage, source: Callable[[], ObjectStorage], coord: Caller) -> None:
        self.storage = storage
        self._source_factory = source
        self._source: ObjectStorage | None = None
        self.coord = coord
        self._running: set[tuple[int, int]] = set()
        self._lock = threading.Lock()

    def source(self) -> ObjectStorage:
        if self._source is None:
            self._source = self._source_factory()
        return self._source

    def submit(self, raw: dict[str, Any]) -> None:
        task = ImportTask.parse(raw)
        with self._lock:
            if (task.job_id, task.attempt) in self._running:
                return
            self._running.add((task.job_id, task.attempt))
        threading.Thread(target=self._run, args=(task,), name=f"import-{task.job_id}", daemon=True).start()

    def _run(self, task: ImportTask) -> None:
        try:
            self._import(task)
        except Exception as exc:
            reason = exc.message if isinstance(exc, MilvusError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, ImportFileError):
                log.exception("import job %d failed", task.job_id)
            try:
                self.coord.call("fail_import", job_id=task.job_id, attempt=task.attempt, reason=reason)
            except MilvusError as err:
                log.warning("could not report the failure of import job %d: %s", task.job_id, err)
        finally:
            with self._lock:
                self._running.discard((task.job_id, task.attempt))

    def _progress(self, task: ImportTask, percent: int, total: int = 0, batches: list[dict[str, int]] | None = None
                  ) -> None:
        self.coord.call("report_import_progress", job_id=task.job_id, attempt=task.attempt, progress=percent,
                        total_rows=total, batches=batches)

    def _import(self, task: ImportTask) -> None:
        schema = task.schema
        parts, batches = [], []
        for i, paths in enumerate(task.files):
            parts.append(read_batch(self.source(), schema, paths))
            size = sum(self.source().size(p.lstrip("/")) for p in paths)
            batches.append({"rows": len(next(iter(parts[-1].values()))), "size": size})
            self._progress(task, 10 + 40 * (i + 1) // len(task.files))
        columns = concat_columns(parts)
        n = len(next(iter(columns.values())))
        self._progress(task, 50, n, batches)
        first = int(self.coord.call("alloc_ids", count=n))
        row_ids = np.arange(first, first + n, dtype=np.int64)
        pk = schema.primary
        if pk.name not in columns:  # auto_id: the row ids are the keys (as strings for VarChar), as an insert
            columns[pk.name] = row_ids.copy() if pk.dtype == DataType.Int64 else row_ids.astype(str).astype(object)
        ts = int(self.coord.call("import_row_ts", job_id=task.job_id, attempt=task.attempt))
        groups = route(schema, columns, task.vchannels, task.partition_ids)
        chunks = [(shard, pid, rows[i : i + task.max_rows])
                  for (shard, pid), rows in groups.items() for i in range(0, len(rows), task.max_rows)]
        per_segment = len(schema.fields) + 4
        count = len(chunks) * per_segment
        first_id = int(self.coord.call("alloc_ids", count=count))
        ids = iter(range(first_id, first_id + count))
        records: list[dict[str, Any]] = []
        try:
            for done, (shard, pid, rows) in enumerate(chunks):
                rec = write_segment(self.storage, schema, task.collection_id, pid, next(ids),
                                    take_rows(columns, rows), row_ids[rows], ts, lambda: next(ids))
                records.append(rec | {"vchannel": task.vchannels[shard], "max_rows": task.max_rows})
                self._progress(task, 50 + 40 * (done + 1) // len(chunks))
            self.coord.call("complete_import", job_id=task.job_id, attempt=task.attempt, segments=records)
        except Exception:
            if not self._committed(records):
                for rec in records:
                    for key in [k for keys in rec["binlogs"].values() for k in keys] + rec["statslogs"]:
                        self.storage.delete(key)
            raise
        log.info("import job %d: %d rows in %d segment(s)", task.job_id, n, len(records))

    def _committed(self, records: list[dict[str, Any]]) -> bool:
        """Whether coord recorded these segments (True when it cannot tell: never delete live files)."""
        if not records:
            return False
        try:
            return bool(self.coord.call("segment_infos", segment_ids=[records[0]["id"]]))
        except MilvusError:
            return True
