"""REST v2 /jobs/import/{create,list,describe,get_progress}: Milvus's bulk import routes.

pymilvus.bulk_writer's bulk_import / get_import_progress / list_import_jobs call these. Each
route goes through the servicer's Import / GetImportState / ListImportTasks (so the auth guard
and privilege checks apply as over gRPC) and answers in Milvus's shapes: ``{"jobId"}`` for
create; jobId, collectionName, state (Pending / Importing / Completed / Failed), progress,
importedRows, totalRows, completeTime, reason, fileSize and per-batch details for describe and
get_progress; ``{"records": [...]}`` for list. The batches of ``files`` (a list of lists) ride
to the servicer in the FILE_GROUPS option, since the gRPC ImportRequest has one flat list.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import field_validator
from pymilvus.grpc_gen import common_pb2, milvus_pb2

from common.errors import Code
from services.proxy.imports import FILE_GROUPS
from services.proxy.rest import models as m
from services.proxy.rest.envelope import Gateway, RestError, ok
from services.proxy.rest.routing import RestContext, rest_context


class CreateImportReq(m.DatabaseReq):
    collectionName: m.Required
    partitionName: str = ""
    files: list[list[str]]
    options: dict[str, str] = {}

    @field_validator("options", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()} if isinstance(
            value, dict) else value or {}


class ImportJobReq(m.DatabaseReq):
    jobId: str | int

    @field_validator("jobId", mode="after")
    @classmethod
    def _text(cls, value: str | int) -> str:
        return str(value)


def _job_id(raw: str | int) -> int:
    try:
        return int(str(raw))
    except ValueError:
        raise RestError(Code.PARAMETER_INVALID, f"invalid jobId {raw!r}: invalid parameter") from None


def _infos(resp: milvus_pb2.GetImportStateResponse) -> dict[str, str]:
    return {kv.key: kv.value for kv in resp.infos}


def progress_body(job_id: str, resp: milvus_pb2.GetImportStateResponse) -> dict[str, Any]:
    infos = _infos(resp)
    state = infos.get("state") or common_pb2.ImportState.Name(resp.state)
    progress = int(infos.get("progress_percent", "0") or 0)
    total = int(infos.get("total_rows", "0") or 0)
    batches = json.loads(infos.get("files", "[]") or "[]")
    body: dict[str, Any] = {
        "jobId": job_id,
        "collectionName": infos.get("collection", ""),
        "completeTime": infos.get("complete_time", ""),
        "state": state,
        "progress": progress,
        "importedRows": resp.row_count,
        "totalRows": total,
    }
    if infos.get("failed_reason"):
        body["reason"] = infos["failed_reason"]
    known = json.loads(infos.get("batches", "[]") or "[]")
    details = []
    for i, paths in enumerate(batches):
        stats = known[i] if i < len(known) else {"rows": 0, "size": 0}
        detail: dict[str, Any] = {
            "fileName": ",".join(paths),
            "fileSize": stats["size"],
            "progress": progress,
            "completeTime": body["completeTime"],
            "state": state,
            "importedRows": stats["rows"] if state == "Completed" else 0,
            "totalRows": stats["rows"],
        }
        if body.get("reason"):
            detail["reason"] = body["reason"]
        details.append(detail)
    body["fileSize"] = sum(d["fileSize"] for d in details)
    body["details"] = details
    return body


def register(router: APIRouter, gw: Gateway) -> None:
    @router.post("/jobs/import/create", summary="Start a bulk import")
    def create_import(req: CreateImportReq, ctx: RestContext = Depends(rest_context)) -> Response:
        options = dict(req.options) | {FILE_GROUPS: json.dumps(req.files)}
        request = milvus_pb2.ImportRequest(
            db_name=ctx.db(req.dbName),
            collection_name=req.collectionName,
            partition_name=req.partitionName,
            files=[p for group in req.files for p in group],
            options=[common_pb2.KeyValuePair(key=k, value=v) for k, v in options.items()],
        )
        tasks = gw.call("Import", request).tasks
        return ok({"jobId": str(tasks[0])})

    def progress(req: ImportJobReq, ctx: RestContext) -> Response:
        request = milvus_pb2.GetImportStateRequest(task=_job_id(req.jobId))
        resp = gw.call("GetImportState", request)
        return ok(progress_body(str(req.jobId), resp))

    @router.post("/jobs/import/get_progress", summary="Progress of an import job")
    def import_progress(req: ImportJobReq, ctx: RestContext = Depends(rest_context)) -> Response:
        return progress(req, ctx)

    @router.post("/jobs/import/describe", summary="Progress of an import job")
    def describe_import(req: ImportJobReq, ctx: RestContext = Depends(rest_context)) -> Response:
        return progress(req, ctx)

    @router.post("/jobs/import/list", summary="List import jobs")
    def list_imports(
        req: m.OptionalCollectionNameReq | None = None, ctx: RestContext = Depends(rest_context)
    ) -> Response:
        req = req or m.OptionalCollectionNameReq()
        request = milvus_pb2.ListImportTasksRequest(db_name=ctx.db(req.dbName), collection_name=req.collectionName)
        records = []
        for t in gw.call("ListImportTasks", request).tasks:
            infos = _infos(t)
            record: dict[str, Any] = {
                "jobId": str(t.id),
                "collectionName": infos.get("collection", ""),
                "state": infos.get("state") or common_pb2.ImportState.Name(t.state),
                "progress": int(infos.get("progress_percent", "0") or 0),
            }
            if infos.get("failed_reason"):
                record["reason"] = infos["failed_reason"]
            records.append(record)
        return ok({"records": records})
