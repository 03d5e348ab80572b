"""Connection, version and health handlers: what clients call before anything else."""

from __future__ import annotations

import itertools
from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from common.errors import MilvusError
from services.proxy.context import ProxyContext
from services.proxy.status import guard, ok

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
