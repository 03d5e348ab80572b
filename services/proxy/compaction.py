"""Compaction handlers: ManualCompaction, GetCompactionState and GetCompactionStateWithPlans.

The coordinator plans and tracks compactions (a manual request is one trigger with any
number of plans, each merging some segments into one); these handlers translate ids and
states to Milvus's messages.
"""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from common.errors import invalid
from services.proxy.context import ProxyContext, db_of
from services.proxy.status import guard, ok

_STATE = {"Executing": common_pb2.CompactionState.Executing, "Completed": common_pb2.CompactionState.Completed}
_PLAN_STATE = {
    "pending": common_pb2.CompactionTaskStatePipelining,
    "executing": common_pb2.CompactionTaskStateExecuting,
    "completed": common_pb2.CompactionTaskStateCompleted,
    "failed": common_pb2.CompactionTaskStateFailed,
}


class CompactionHandlers:
    ctx: ProxyContext

    def _collection_id(self, request: Any, context: Any, id_field: str) -> int:
        name = getattr(request, "collection_name", "")
        if name:
            return int(self.ctx.cache.get(db_of(request, context), name).id)
        return int(getattr(request, id_field, 0))

    @guard("ManualCompaction")
    def ManualCompaction(self, request: Any, context: Any) -> Any:
        if request.majorCompaction:
            raise invalid("clustering compaction is not supported: the collection has no clustering key")
        coll_id = self._collection_id(request, context, "collectionID")
        # an L0 compaction has nothing to do here: deletes live in per-segment delta logs
        out = self.ctx.coord.call("manual_compaction", collection_id=coll_id, l0=bool(request.l0Compaction))
        return milvus_pb2.ManualCompactionResponse(
            status=ok(), compactionID=out["compaction_id"], compactionPlanCount=out["plan_count"]
        )

    @guard("GetCompactionState")
    def GetCompactionState(self, request: Any, context: Any) -> Any:
        st = self.ctx.coord.call("get_compaction_state", compaction_id=request.compactionID)
        return milvus_pb2.GetCompactionStateResponse(
            status=ok(),
            state=_STATE[st["state"]],
            executingPlanNo=st["executing"],
            completedPlanNo=st["completed"],
            failedPlanNo=st["failed"],
            timeoutPlanNo=st["timeout"],
        )

    @guard("GetCompactionStateWithPlans")
    def GetCompactionStateWithPlans(self, request: Any, context: Any) -> Any:
        coll_id = 0 if request.compactionID else self._collection_id(request, context, "collection_id")
        out = self.ctx.coord.call(
            "get_compaction_plans", compaction_id=request.compactionID, collection_id=coll_id
        )
        infos = [
            milvus_pb2.CompactionMergeInfo(
                sources=p["sources"],
                target=p["target"],
                targets=[p["target"]] if p["target"] else [],
                plan_id=p["plan_id"],
                trigger_id=p["trigger_id"],
                collection_id=p["collection_id"],
                partition_id=p["partition_id"],
                channel=p["channel"],
                type=common_pb2.CompactionTypeMix,  # type: ignore[arg-type]
                state=_PLAN_STATE.get(p["state"], common_pb2.CompactionTaskStateUnknown),  # type: ignore[arg-type]
                failure_reason=p["reason"] if p["state"] == "failed" else "",
            )
            for p in out["plans"]
        ]
        return milvus_pb2.GetCompactionPlansResponse(status=ok(), state=_STATE[out["state"]], mergeInfos=infos)
