"""Handlers for indexes, load/release and flush: the steps between writing and searching."""

from __future__ import annotations

import json
import time
from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from common.collection_props import INDEX_CONFIGURABLE
from common.errors import Code, MilvusError, invalid
from services.proxy.context import ProxyContext, db_of
from services.proxy.status import guard, ok

_INDEX_STATE = {"Finished": 3, "InProgress": 2, "Failed": 4}
FLUSH_GRACE_SECONDS = 0.5
MAX_INDEX_NAME_LENGTH = 255  # Milvus's proxy.maxNameLength


def validate_index_name(name: str) -> None:
    """Milvus's validateIndexName: empty means "use the field's name"; else like a collection name.

    Checked byte by byte as Milvus's Go code does, so any non-ASCII letter is refused.
    """
    name = name.strip()
    if not name:
        return
    msg = f"Invalid index name: {name}. "
    raw = name.encode("utf-8")
    if len(raw) > MAX_INDEX_NAME_LENGTH:
        raise invalid(msg + f"The length of a index name must be less than {MAX_INDEX_NAME_LENGTH} characters.")
    if not (raw[:1] == b"_" or raw[:1].isalpha()):
        raise invalid(msg + "The first character of a index name must be an underscore or letter.")
    if any(not (c == 0x5F or bytes([c]).isalnum()) for c in raw[1:]):
        raise invalid(msg + "Index name can only contain numbers, letters, and underscores.")


def index_params(extra: Any) -> dict[str, str]:
    """Flatten CreateIndex's key-value pairs; pymilvus nests build params as JSON in "params"."""
    out: dict[str, str] = {}
    for kv in extra:
        if kv.key == "params":
            try:
                nested = json.loads(kv.value) if kv.value else {}
            except ValueError as exc:
                raise invalid(f"index params is not valid JSON: {kv.value}") from exc
            if not isinstance(nested, dict):
                raise invalid(f"index params must be a JSON object: {kv.value}")
            out.update({k: str(v) if not isinstance(v, str) else v for k, v in nested.items()})
        else:
            out[kv.key] = kv.value
    return out


class IndexLoadHandlers:
    ctx: ProxyContext

    # --- indexes ------------------------------------------------------------------------
    @guard("CreateIndex")
    def CreateIndex(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        validate_index_name(request.index_name)
        params = index_params(request.extra_params)
        self.ctx.scheduler.run_ddl(
            lambda: self.ctx.coord.call(
                "create_index",
                collection_id=meta.id,
                field_name=request.field_name,
                index_name=request.index_name,
                params=params,
                user_params={kv.key: kv.value for kv in request.extra_params},
            )
        )
        self.ctx.cache.invalidate(collection_id=meta.id)
        return ok()

    def _describe(self, request: Any, context: Any) -> tuple[Any, list[dict[str, Any]]]:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        found = self.ctx.coord.call(
            "describe_index",
            collection_id=meta.id,
            index_name=getattr(request, "index_name", ""),
            field_name=getattr(request, "field_name", ""),
        )
        return meta, found

    def _descriptions(self, request: Any, context: Any) -> list[Any]:
        _, found = self._describe(request, context)
        descs = []
        for d in found:
            params = dict(d["params"])
            # Milvus answers with the pairs the user sent ("params" stays the client's JSON, so
            # numbers stay numbers); AlterIndex properties (mmap.enabled, ...) follow as their own pairs
            own = [k for k in INDEX_CONFIGURABLE if k in params]
            first = [k for k in ("index_type", "metric_type") if k in params]
            rest = [k for k in params if k not in first and k not in own]
            kvs = [common_pb2.KeyValuePair(key=k, value=str(params[k])) for k in (*first, *rest, *own)]
            descs.append(
                milvus_pb2.IndexDescription(
                    index_name=d["index_name"],
                    indexID=d["index_id"],
                    params=kvs,
                    field_name=d["field_name"],
                    indexed_rows=d["indexed_rows"],
                    total_rows=d["total_rows"],
                    pending_index_rows=d["pending_index_rows"],
                    state=_INDEX_STATE.get(d["state"], 0),  # type: ignore[arg-type]
                    index_state_fail_reason=d["fail_reason"],
                )
            )
        return descs

    @guard("DescribeIndex")
    def DescribeIndex(self, request: Any, context: Any) -> Any:
        return milvus_pb2.DescribeIndexResponse(status=ok(), index_descriptions=self._descriptions(request, context))

    @guard("GetIndexStatistics")
    def GetIndexStatistics(self, request: Any, context: Any) -> Any:
        """Milvus's per-index row statistics: the same descriptions DescribeIndex gives."""
        return milvus_pb2.GetIndexStatisticsResponse(
            status=ok(), index_descriptions=self._descriptions(request, context)
        )

    @guard("GetIndexState")
    def GetIndexState(self, request: Any, context: Any) -> Any:
        _, found = self._describe(request, context)
        d = found[0]
        return milvus_pb2.GetIndexStateResponse(
            status=ok(),
            state=_INDEX_STATE.get(d["state"], 0),
            fail_reason=d["fail_reason"],  # type: ignore[arg-type]
        )

    @guard("GetIndexBuildProgress")
    def GetIndexBuildProgress(self, request: Any, context: Any) -> Any:
        _, found = self._describe(request, context)
        d = found[0]
        return milvus_pb2.GetIndexBuildProgressResponse(
            status=ok(), indexed_rows=d["indexed_rows"], total_rows=d["total_rows"]
        )

    @guard("DropIndex")
    def DropIndex(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        self.ctx.scheduler.run_ddl(
            lambda: self.ctx.coord.call(
                "drop_index", collection_id=meta.id, index_name=request.index_name, field_name=request.field_name
            )
        )
        self.ctx.cache.invalidate(collection_id=meta.id)
        return ok()

    # --- load / release -----------------------------------------------------------------
    @guard("LoadCollection")
    def LoadCollection(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        self.ctx.scheduler.run_ddl(
            lambda: self.ctx.coord.call(
                "load_collection",
                collection_id=meta.id,
                replica_number=request.replica_number or 1,
                resource_groups=list(request.resource_groups),
            )
        )
        return ok()

    @guard("LoadPartitions")
    def LoadPartitions(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        if not request.partition_names:
            raise invalid("partition names should not be empty")
        ids = [meta.partition_id(n) for n in request.partition_names]
        self.ctx.scheduler.run_ddl(
            lambda: self.ctx.coord.call(
                "load_collection",
                collection_id=meta.id,
                replica_number=request.replica_number or 1,
                partition_ids=ids,
                resource_groups=list(request.resource_groups),
            )
        )
        return ok()

    @guard("ReleaseCollection")
    def ReleaseCollection(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        self.ctx.scheduler.run_ddl(lambda: self.ctx.coord.call("release_collection", collection_id=meta.id))
        self.ctx.cache.drop_leaders(meta.id)
        return ok()

    @guard("ReleasePartitions")
    def ReleasePartitions(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        ids = [meta.partition_id(n) for n in request.partition_names]
        self.ctx.scheduler.run_ddl(
            lambda: self.ctx.coord.call("release_partitions", collection_id=meta.id, partition_ids=ids)
        )
        self.ctx.cache.drop_leaders(meta.id)
        return ok()

    def _load_progress(self, request: Any, context: Any) -> tuple[Any, dict[str, Any] | None]:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        info = self.ctx.coord.call("get_load_info", collection_id=meta.id)
        if info is not None and request.partition_names:
            loaded = set(info["partition_ids"])
            for name in request.partition_names:
                if meta.partition_id(name) not in loaded:
                    return meta, None
        return meta, info

    @guard("GetLoadState")
    def GetLoadState(self, request: Any, context: Any) -> Any:
        _, info = self._load_progress(request, context)
        if info is None:
            state = common_pb2.LoadStateNotLoad
        elif info["progress"] < 100:
            state = common_pb2.LoadStateLoading
        else:
            state = common_pb2.LoadStateLoaded
        return milvus_pb2.GetLoadStateResponse(status=ok(), state=state)

    @guard("GetLoadingProgress")
    def GetLoadingProgress(self, request: Any, context: Any) -> Any:
        meta, info = self._load_progress(request, context)
        if info is None:
            raise MilvusError(Code.COLLECTION_NOT_LOADED, f"collection not loaded[collection={meta.name}]")
        return milvus_pb2.GetLoadingProgressResponse(
            status=ok(), progress=info["progress"], refresh_progress=info["progress"]
        )

    # --- flush --------------------------------------------------------------------------
    @guard("Flush")
    def Flush(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        resp = milvus_pb2.FlushResponse(status=ok(), db_name=db)
        pending: list[list[int]] = []
        for name in request.collection_names:
            meta = self.ctx.cache.get(db, name)
            out = self.ctx.coord.call("flush", collection_id=meta.id)
            resp.coll_segIDs[name].CopyFrom(schema_pb2.LongArray(data=out["segment_ids"]))
            resp.flush_coll_segIDs[name].CopyFrom(schema_pb2.LongArray(data=out["flushed_segment_ids"]))
            resp.coll_seal_times[name] = out["flush_ts"] >> 18
            resp.coll_flush_ts[name] = out["flush_ts"]
            pending.append(out["segment_ids"])
        # Tick now so datanodes see the seal time at once, and give them a moment: clients poll
        # GetFlushState right after this returns, then only every 500 ms.
        self.ctx.ticker.report()
        deadline = time.monotonic() + FLUSH_GRACE_SECONDS
        for segment_ids in pending:
            while time.monotonic() < deadline and not self.ctx.coord.call("get_flush_state", segment_ids=segment_ids):
                time.sleep(0.01)
        return resp

    @guard("GetFlushState")
    def GetFlushState(self, request: Any, context: Any) -> Any:
        flushed = self.ctx.coord.call(
            "get_flush_state", segment_ids=list(request.segmentIDs), flush_ts=request.flush_ts
        )
        return milvus_pb2.GetFlushStateResponse(status=ok(), flushed=flushed)
