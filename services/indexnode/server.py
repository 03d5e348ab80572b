"""The indexnode's RPC face and its build pool."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from common import binlog
from common.fielddata import empty_column
from common.index import build_index
from common.rpc import rpc
from common.schema import Field
from common.storage.base import ObjectStorage

log = logging.getLogger(__name__)


class IndexNode:
    def __init__(self, storage: ObjectStorage, workers: int = 1) -> None:
        self.storage = storage
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="index-build")
        self._jobs: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @rpc
    def build_index(self, task: dict[str, Any]) -> None:
        build_id = int(task["build_id"])
        with self._lock:
            if build_id in self._jobs and self._jobs[build_id]["state"] != "Failed":
                return
            self._jobs[build_id] = {"state": "InProgress"}
        self._pool.submit(self._build, task)

    @rpc
    def query_jobs(self, build_ids: list[int]) -> dict[int, dict[str, Any]]:
        with self._lock:
            return {b: self._jobs[b] for b in build_ids if b in self._jobs}

    def _build(self, task: dict[str, Any]) -> None:
        build_id = int(task["build_id"])
        try:
            vectors, present = self._vectors(task)
            index = build_index(
                task["index_type"], task["metric_type"], task["params"], vectors, task["dtype"], present
            )
            data = index.serialize()
            prefix = binlog.index_file_prefix(
                task["collection_id"], task["partition_id"], task["segment_id"], build_id, task["version"]
            )
            key = f"{prefix.rstrip('/')}/index"
            self.storage.put(key, data)
            result = {"state": "Finished", "files": [key], "size": len(data)}
        except Exception as exc:
            log.exception("index build %d failed", build_id)
            result = {"state": "Failed", "reason": f"{type(exc).__name__}: {exc}"}
        with self._lock:
            self._jobs[build_id] = result

    def _vectors(self, task: dict[str, Any]) -> tuple[Any, np.ndarray | None]:
        """The segment's vector column and which rows are not null (None: all are). A segment
        written before its (nullable) vector field was added has no binlog: every row is null."""
        field = Field(field_id=task["field_id"], name="vector", dtype=task["dtype"], dim=task["dim"], nullable=True)
        if not task["binlogs"]:
            n = int(task.get("num_rows", 0))
            return empty_column(field, n), np.zeros(n, dtype=np.bool_)
        parts = [binlog.decode_column(field, self.storage.get(k)) for k in task["binlogs"]]
        vectors = np.concatenate([v for v, _ in parts]) if len(parts) > 1 else parts[0][0]
        if all(p is None for _, p in parts):
            return vectors, None
        present = np.concatenate([p if p is not None else np.ones(len(v), np.bool_) for v, p in parts])
        return vectors, present

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
