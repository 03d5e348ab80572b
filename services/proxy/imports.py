"""Bulk import handlers: Import (utility.do_bulk_insert), GetImportState and ListImportTasks.

As Milvus's proxy does, Import resolves the collection and the target partitions (the named
one or "_default"; every partition, in key-bucket order, when the collection has a partition
key, where naming a partition is refused), drops empty paths, checks the file types, and hands
the job to the coordinator, answering with the job id. A gRPC request is one batch of files
(one JSON or Parquet file, or the NumPy files of one batch), as Milvus's v1 Import; the REST
v2 route sends several batches through the ``FILE_GROUPS`` option. Job states come back as
Milvus's ImportState with ``infos`` (failed_reason, progress_percent, collection, files, ...).
"""

from __future__ import annotations

import json
import time
from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from common.errors import Code, MilvusError
from common.imports import IMPORT_FAILED, file_type
from services.proxy.context import ProxyContext, db_of
from services.proxy.meta_cache import CollectionMeta
from services.proxy.status import guard, ok

FILE_GROUPS = "__quiver_file_groups__"  # option: JSON list of batches (the REST route's "files")
STATES = {
    "Pending": common_pb2.ImportPending,
    "Importing": common_pb2.ImportStarted,
    "Completed": common_pb2.ImportCompleted,
    "Failed": common_pb2.ImportFailed,
}
_UNSUPPORTED_OPTIONS = {"backup": "backup (binlog) import", "l0_import": "L0 (delete) import"}


def ordered_partition_ids(meta: CollectionMeta) -> list[int]:
    """Every partition in the order the proxy buckets partition keys into them (see dml.py)."""
    names = sorted(meta.partitions, key=lambda p: int(p.rsplit("_", 1)[-1]) if p[-1].isdigit() else -1)
    return [meta.partitions[p] for p in names]


def _file_groups(request: Any, options: dict[str, str]) -> list[list[str]]:
    raw = options.pop(FILE_GROUPS, None)
    if raw is None:
        return [[p for p in request.files if p]]
    groups = json.loads(raw)
    return [[p for p in g if p] for g in groups]


def state_response(job: dict[str, Any]) -> milvus_pb2.GetImportStateResponse:
    infos = {
        "failed_reason": job["reason"],
        "progress_percent": str(job["progress"]),
        "collection": job["collection_name"],
        "files": json.dumps(job["files"]),
        "batches": json.dumps(job["batches"]),
        "state": job["state"],
        "total_rows": str(job["total_rows"]),
        "complete_time": _iso(job["completed_ms"]) if job["completed_ms"] else "",
    }
    return milvus_pb2.GetImportStateResponse(
        status=ok(),
        state=STATES.get(job["state"], common_pb2.ImportFailed),  # type: ignore[arg-type]
        row_count=job["imported_rows"],
        infos=[common_pb2.KeyValuePair(key=k, value=v) for k, v in infos.items()],
        id=job["job_id"],
        collection_id=job["collection_id"],
        segment_ids=job["segment_ids"],
        create_ts=job["created_ms"] // 1000,
    )


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


class ImportHandlers:
    ctx: ProxyContext

    @guard("Import")
    def Import(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        options = {kv.key: kv.value for kv in request.options}
        for key, what in _UNSUPPORTED_OPTIONS.items():
            if options.get(key, "").lower() == "true":
                raise MilvusError(IMPORT_FAILED, f"{what} is not supported by Quiver: importing data failed")
        if meta.schema.partition_key is not None:
            if request.partition_name:
                raise MilvusError(
                    IMPORT_FAILED, "not allow to set partition name for collection with partition key: "
                    "importing data failed",
                )
            partition_ids = ordered_partition_ids(meta)
        else:
            partition_ids = [meta.partition_id(request.partition_name or "_default")]
        try:
            groups = [g for g in _file_groups(request, options) if g]
        except (ValueError, TypeError):
            msg = "files must be a list of lists of paths: invalid parameter"
            raise MilvusError(Code.PARAMETER_INVALID, msg) from None
        if not groups:
            raise MilvusError(Code.PARAMETER_INVALID, "import request is empty: invalid parameter")
        for g in groups:
            file_type(g)
        job_id = self.ctx.coord.call(
            "create_import", db_name=meta.db_name, collection_id=meta.id, partition_ids=partition_ids,
            files=groups, options=options,
        )
        return milvus_pb2.ImportResponse(status=ok(), tasks=[int(job_id)])

    @guard("GetImportState")
    def GetImportState(self, request: Any, context: Any) -> Any:
        return state_response(self.ctx.coord.call("get_import_progress", job_id=int(request.task)))

    @guard("ListImportTasks")
    def ListImportTasks(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        coll_id = self.ctx.cache.get(db, request.collection_name).id if request.collection_name else 0
        jobs = self.ctx.coord.call("list_imports", db_name=db, collection_id=coll_id)
        if request.limit > 0:
            jobs = jobs[-request.limit :]
        return milvus_pb2.ListImportTasksResponse(status=ok(), tasks=[state_response(j) for j in jobs])
