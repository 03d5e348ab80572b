"""Connection, version and health handlers, and the segment-info diagnostics clients call.

GetPersistentSegmentInfo reports the coordinator's sealed and flushed segments of a collection;
GetQuerySegmentInfo reports the sealed segments the querynodes serve, read from the shard leaders'
distributions, as Milvus's proxy reports them from its coordinators.
"""

from __future__ import annotations

import itertools
from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from common.errors import MilvusError
from services.proxy.context import ProxyContext, db_of
from services.proxy.status import guard, ok

# Segment states GetPersistentSegmentInfo reports when the request names none (as Milvus's proxy).
_PERSISTENT_STATES = (common_pb2.Flushing, common_pb2.Flushed, common_pb2.Sealed)
# The Milvus release whose API Quiver follows; clients gate features on it.
MILVUS_VERSION = "v2.5.4"
_identifiers = itertools.count(1)


class MiscHandlers:
    ctx: ProxyContext

    @guard("Connect")
    def Connect(self, request: Any, context: Any) -> Any:
        info = common_pb2.ServerInfo(
            build_tags=MILVUS_VERSION,
            build_time="",
            git_commit="quiver",
            go_version="python",
            deploy_mode="STANDALONE" if self.ctx.cfg.kv.backend != "etcd" else "CLUSTER",
            reserved={"quiver": "0.1.0"},
        )
        return milvus_pb2.ConnectResponse(status=ok(), server_info=info, identifier=next(_identifiers))

    @guard("GetVersion")
    def GetVersion(self, request: Any, context: Any) -> Any:
        return milvus_pb2.GetVersionResponse(status=ok(), version=MILVUS_VERSION)

    @guard("CheckHealth")
    def CheckHealth(self, request: Any, context: Any) -> Any:
        reasons = []
        try:
            self.ctx.coord.call("ping", timeout=3.0)
        except MilvusError as exc:
            reasons.append(f"coordinator: {exc.message}")
        return milvus_pb2.CheckHealthResponse(status=ok(), isHealthy=not reasons, reasons=reasons)

    @guard("GetComponentStates")
    def GetComponentStates(self, request: Any, context: Any) -> Any:
        healthy = True
        try:
            self.ctx.coord.call("ping", timeout=3.0)
        except MilvusError:
            healthy = False
        state = common_pb2.Healthy if healthy else common_pb2.Abnormal
        return milvus_pb2.ComponentStates(
            state=milvus_pb2.ComponentInfo(nodeID=self.ctx.node_id, role="proxy", state_code=state),
            status=ok(),
        )

    @guard("AllocTimestamp")
    def AllocTimestamp(self, request: Any, context: Any) -> Any:
        return milvus_pb2.AllocTimestampResponse(status=ok(), timestamp=int(self.ctx.coord.call("alloc_timestamp")))

    @guard("GetPersistentSegmentInfo")
    def GetPersistentSegmentInfo(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collectionName)
        wanted = set(request.states) or set(_PERSISTENT_STATES)
        infos = []
        for seg in sorted(self.ctx.coord.call("list_segments", collection_id=meta.id), key=lambda s: int(s["id"])):
            state = common_pb2.SegmentState.Value(seg["state"])
            if state not in wanted:
                continue
            infos.append(
                milvus_pb2.PersistentSegmentInfo(
                    segmentID=int(seg["id"]), collectionID=meta.id, partitionID=int(seg["partition_id"]),
                    num_rows=int(seg["num_rows"]), state=state, level=common_pb2.L1,
                    insert_channel=seg["vchannel"], compaction_from=[int(x) for x in seg.get("compacted_from", [])],
                )
            )
        return milvus_pb2.GetPersistentSegmentInfoResponse(status=ok(), infos=infos)

    @guard("GetQuerySegmentInfo")
    def GetQuerySegmentInfo(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collectionName)
        replicas = self.ctx.coord.call("get_replicas", collection_id=meta.id)  # COLLECTION_NOT_LOADED if not
        node_ids: dict[str, int] = {}  # endpoint -> node id of every querynode serving a shard
        for shard in (s for r in replicas for s in r["shard_replicas"]):
            node_ids[shard["leader_addr"]] = int(shard["leader_id"])
            node_ids.update(zip(shard.get("node_addrs", []), (int(i) for i in shard["node_ids"]), strict=False))
        leaders = sorted({s["leader_addr"] for r in replicas for s in r["shard_replicas"]})
        holders: dict[int, set[str]] = {}  # segment id -> endpoints serving it
        for endpoint in leaders:
            dist = self.ctx.router.client(endpoint).call("get_distribution")
            for vchannel, ch in dist["channels"].items():
                if vchannel in meta.vchannels:
                    for seg_id, holder in ch["dist"].items():
                        holders.setdefault(int(seg_id), set()).add(holder)
        if not holders:
            return milvus_pb2.GetQuerySegmentInfoResponse(status=ok(), infos=[])
        segments = {int(s["id"]): s for s in self.ctx.coord.call("segment_infos", segment_ids=sorted(holders))}
        indexes = self.ctx.coord.call("describe_index", collection_id=meta.id)
        index = next((i for i in indexes if meta.schema.field_by_id(i["field_id"]).is_vector), None)
        sizes: dict[tuple[str, int], int] = {}
        for endpoint in sorted({e for es in holders.values() for e in es}):
            dist = self.ctx.router.client(endpoint).call("get_distribution")
            for seg_id, seg in dist["segments"].items():
                sizes[(endpoint, int(seg_id))] = int(seg.get("memory", 0))
        infos = []
        for seg_id in sorted(holders):
            seg = segments.get(seg_id)
            if seg is None:
                continue
            ends = sorted(holders[seg_id])
            ids = [node_ids[e] for e in ends if e in node_ids]
            infos.append(
                milvus_pb2.QuerySegmentInfo(
                    segmentID=seg_id, collectionID=meta.id, partitionID=int(seg["partition_id"]),
                    mem_size=sum(sizes.get((e, seg_id), 0) for e in ends), num_rows=int(seg["num_rows"]),
                    index_name=index["index_name"] if index else "", indexID=int(index["index_id"]) if index else 0,
                    nodeID=ids[0] if ids else 0, nodeIds=ids,
                    state=common_pb2.SegmentState.Value(seg["state"]), level=common_pb2.L1,
                )
            )
        return milvus_pb2.GetQuerySegmentInfoResponse(status=ok(), infos=infos)
