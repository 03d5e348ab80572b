"""Standalone mode: every role in one process, on the local KV, log and storage backends.

The roles are the same objects a cluster runs; they are wired through the in-process RPC
transport and register sessions in the (local) KV store exactly as they would in etcd.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from common.backends import open_kv, open_storage, open_stream
from common.config import QuiverConfig
from common.kv.base import KV
from common.msgstream.base import MsgStream
from common.rpc import ResolvingClient, Router
from common.session import Session, SessionInfo, active_coord_endpoint
from common.storage.base import ObjectStorage
from services.coord.server import Coordinator, CoordSession
from services.datanode.server import DataNode
from services.indexnode.server import IndexNode
from services.proxy.server import Proxy
from services.querynode.server import QueryNode

log = logging.getLogger(__name__)


@dataclass
class Standalone:
    cfg: QuiverConfig
    kv: KV
    stream: MsgStream
    storage: ObjectStorage
    router: Router
    coord: Coordinator
    coord_session: CoordSession
    proxy: Proxy
    workers: list[object] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)

    def stop(self) -> None:
        self.proxy.stop()
        for s in self.sessions:
            s.stop()
        for w in self.workers:
            w.stop()  # type: ignore[attr-defined]
        self.coord.stop()
        self.coord_session.stop()
        self.stream.close()
        self.storage.close()
        self.kv.close()


def start_standalone(cfg: QuiverConfig) -> Standalone:
    kv = open_kv(cfg)
    stream = open_stream(cfg)
    storage = open_storage(cfg)
    router = Router()
    coord = Coordinator(cfg, kv, stream, router)
    coord_session = CoordSession(kv, coord.meta_root, "local://coord", cfg.session_ttl_seconds)
    coord_session.campaign(coord.activate)
    router.register_local("coord", *coord.handlers())
    coord_client = ResolvingClient(router, lambda: active_coord_endpoint(kv, coord.meta_root))

    def register(role: str, handler: object) -> Session:
        node_id = int(coord_client.call("alloc_ids", count=1))
        endpoint = router.register_local(f"{role}-{node_id}", handler)
        return Session(kv, coord.meta_root, SessionInfo(role, node_id, endpoint), cfg.session_ttl_seconds)

    datanode = DataNode(cfg, stream, storage, coord_client)
    indexnode = IndexNode(storage)
    querynode = QueryNode(stream, storage, cfg.query.memory_budget_mb, router)
    sessions = [register("datanode", datanode), register("indexnode", indexnode), register("querynode", querynode)]
    proxy_id = int(coord_client.call("alloc_ids", count=1))
    proxy = Proxy(cfg, proxy_id, router, coord_client, stream)
    proxy.start()
    sessions.append(
        Session(
            kv,
            coord.meta_root,
            SessionInfo(
                "proxy",
                proxy_id,
                router.register_local(f"proxy-{proxy_id}", proxy.control),
                f"{cfg.host}:{proxy.grpc_port}",
            ),
            cfg.session_ttl_seconds,
        )
    )
    return Standalone(
        cfg, kv, stream, storage, router, coord, coord_session, proxy, [querynode, datanode, indexnode], sessions
    )
