"""The MilvusService servicer: every RPC of pymilvus's generated service, implemented or not.

Handlers live in topic modules (DDL, index/load, DML, DQL, misc) and are combined here; any
RPC none of them implements answers a clear "not supported" status instead of gRPC's
UNIMPLEMENTED error, so a client sees a Milvus error it can show.
"""

from __future__ import annotations

from pymilvus.grpc_gen import milvus_pb2_grpc

from services.proxy.compaction import CompactionHandlers
from services.proxy.context import ProxyContext
from services.proxy.ddl import DdlHandlers
from services.proxy.dml import DmlHandlers
from services.proxy.dql import DqlHandlers
from services.proxy.index_load import IndexLoadHandlers
from services.proxy.misc import MiscHandlers
from services.proxy.reader import ShardReader
from services.proxy.status import all_methods, unimplemented


class MilvusServicer(
    CompactionHandlers,
    DdlHandlers, IndexLoadHandlers, DmlHandlers, DqlHandlers, MiscHandlers, milvus_pb2_grpc.MilvusServiceServicer
):
    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx
        self.reader = ShardReader(ctx)


def _fill_unimplemented() -> None:
    for name in all_methods():
        if name not in _IMPLEMENTED:
            setattr(MilvusServicer, name, unimplemented(name))


_IMPLEMENTED = {
    name
    for cls in (DdlHandlers, IndexLoadHandlers, DmlHandlers, DqlHandlers, MiscHandlers, CompactionHandlers)
    for name in vars(cls)
    if name[:1].isupper()
}
_fill_unimplemented()
