"""The MilvusService servicer: every RPC of pymilvus's generated service, implemented or not.

Handlers live in topic modules (DDL, index/load, DML, DQL, misc) and are combined here; any
RPC none of them implements answers a clear "not supported" status instead of gRPC's
UNIMPLEMENTED error, so a client sees a Milvus error it can show. With authorization enabled
every RPC, implemented or not, first passes the auth guard (services/proxy/auth.py).
"""

from __future__ import annotations

from pymilvus.grpc_gen import milvus_pb2_grpc

from services.proxy.analyzer_api import AnalyzerHandlers
from services.proxy.auth import install as install_auth
from services.proxy.compaction import CompactionHandlers
from services.proxy.context import ProxyContext
from services.proxy.ddl import DdlHandlers
from services.proxy.ddl_alter import AlterHandlers
from services.proxy.dml import DmlHandlers
from services.proxy.dql import DqlHandlers
from services.proxy.imports import ImportHandlers
from services.proxy.index_load import IndexLoadHandlers
from services.proxy.misc import MiscHandlers
from services.proxy.quota import install as install_quota
from services.proxy.rbac_api import RbacHandlers
from services.proxy.reader import ShardReader
from services.proxy.replicas import ReplicaHandlers
from services.proxy.resource_groups import ResourceGroupHandlers
from services.proxy.status import all_methods, unimplemented


class MilvusServicer(
    AnalyzerHandlers,
    ImportHandlers,
    CompactionHandlers,
    RbacHandlers,
    ReplicaHandlers,
    ResourceGroupHandlers,
    AlterHandlers,
    DdlHandlers, IndexLoadHandlers, DmlHandlers, DqlHandlers, MiscHandlers, milvus_pb2_grpc.MilvusServiceServicer
):
    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx
        self.reader = ShardReader(ctx)


def _fill_unimplemented() -> None:
    for name in all_methods():
        if name not in _IMPLEMENTED:
            setattr(MilvusServicer, name, unimplemented(name))


_HANDLERS = (AnalyzerHandlers, ImportHandlers, AlterHandlers,
             DdlHandlers, IndexLoadHandlers, DmlHandlers, DqlHandlers, MiscHandlers, CompactionHandlers, RbacHandlers,
             ReplicaHandlers, ResourceGroupHandlers)
_IMPLEMENTED = {
    name
    for cls in _HANDLERS
    for name in vars(cls)
    if name[:1].isupper()
}
_fill_unimplemented()
install_quota(MilvusServicer)  # quotas and rate limits (quota.py), inside the auth guard
install_auth(MilvusServicer, all_methods())  # authentication and RBAC in front of every RPC (when enabled)
