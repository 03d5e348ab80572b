"""Cluster mode: one role per process, on etcd, Pulsar and S3 (or whatever the config names).

Each role serves Quiver's internal RPC on its own port (TCP), registers a session in the KV
store, and finds the active coordinator through the KV store, following it across failover.
The coordinator campaigns for leadership first; a second one waits as a hot standby.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from common.backends import open_kv, open_storage, open_stream
from common.config import QuiverConfig
from common.metrics import start_metrics_server
from common.rpc import ResolvingClient, Router, rpc
from common.rpc.tcp_transport import TcpServer
from common.session import Session, SessionInfo, active_coord_endpoint

log = logging.getLogger(__name__)
DRAIN_SECONDS = 60.0  # how long a querynode that got SIGTERM waits for its channels to move


@dataclass
class RoleProcess:
    role: str
    closers: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception:
                log.exception("stopping %s failed", self.role)


class Health:
    """Answers whether this process is up and what it is doing (``health.status``)."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.state = "starting"

    @rpc
    def status(self) -> dict[str, str]:
        return {"role": self.role, "state": self.state}


class _InternalServer:
    """The role's internal RPC server (TCP, common/rpc/tcp_transport.py); services can be added later."""

    def __init__(self, cfg: QuiverConfig, role: str) -> None:
        self.server = TcpServer(cfg.host, cfg.internal_port)
        self.port = self.server.port
        self.host = cfg.reachable_host
        self.health = Health(role)
        self.server.add("health", self.health)

    def serve(self, name: str, *handlers: object) -> str:
        self.server.add(name, *handlers)
        return f"tcp://{self.host}:{self.port}/{name}"

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop(2.0)


def start_role(role: str, cfg: QuiverConfig) -> RoleProcess:
    kv = open_kv(cfg)
    router = Router()
    meta_root = f"{cfg.kv.etcd.root_path}/meta"
    proc = RoleProcess(role, [kv.close, router.close])
    if role != "proxy":  # the proxy serves /metrics on its HTTP port
        start_metrics_server(cfg.metrics_port, cfg.host)
    internal = _InternalServer(cfg, role)
    internal.start()  # open the port at once: probes see a live process, even a standby
    proc.closers.append(internal.stop)

    if role == "coord":
        from services.coord.server import Coordinator, CoordSession

        stream = open_stream(cfg)
        proc.closers.append(stream.close)
        coord = Coordinator(cfg, kv, stream, router)
        endpoint = f"tcp://{internal.host}:{internal.port}/coord"
        election = CoordSession(kv, meta_root, endpoint, cfg.session_ttl_seconds)
        proc.closers.extend([election.stop, coord.stop])
        internal.health.state = "standby"

        def activate() -> None:
            coord.activate()
            internal.serve("coord", *coord.handlers())
            internal.health.state = "active"
            log.info("coordinator active at %s", endpoint)

        threading.Thread(target=election.campaign, args=(activate,), name="coord-campaign", daemon=True).start()
        return proc

    coord_client = ResolvingClient(router, lambda: active_coord_endpoint(kv, meta_root), failover_seconds=60.0)
    node_id = int(coord_client.call("alloc_ids", count=1))
    name = f"{role}-{node_id}"
    if role == "proxy":
        from services.proxy.server import Proxy

        stream = open_stream(cfg)
        proxy = Proxy(cfg, node_id, router, coord_client, stream)
        proxy.start()
        control = internal.serve(name, proxy.control)
        internal.health.state = "serving"
        session = Session(
            kv,
            meta_root,
            SessionInfo("proxy", node_id, control, f"{cfg.reachable_host}:{proxy.grpc_port}"),
            cfg.session_ttl_seconds,
        )
        proc.closers.extend([stream.close, proxy.stop, session.stop])
        return proc
    storage = open_storage(cfg)
    proc.closers.append(storage.close)
    handler: Any
    if role == "datanode":
        from services.datanode.server import DataNode

        stream = open_stream(cfg)
        proc.closers.append(stream.close)
        handler = DataNode(cfg, stream, storage, coord_client)
    elif role == "querynode":
        from services.querynode.server import QueryNode

        stream = open_stream(cfg)
        proc.closers.append(stream.close)
        handler = QueryNode(stream, storage, cfg.query.memory_budget_mb, router)
    elif role == "indexnode":
        from services.indexnode.server import IndexNode

        handler = IndexNode(storage)
    else:
        raise ValueError(f"unknown role {role}")
    endpoint = internal.serve(name, handler)
    internal.health.state = "serving"
    session = Session(kv, meta_root, SessionInfo(role, node_id, endpoint), cfg.session_ttl_seconds)
    proc.closers.extend([handler.stop, session.stop])
    if role == "querynode":  # closers run last-first: hand the channels over before anything stops
        proc.closers.append(lambda: _drain_querynode(router, active_coord_endpoint(kv, meta_root), endpoint))
    return proc


def _drain_querynode(router: Router, coord: str | None, endpoint: str) -> None:
    """On SIGTERM: the coordinator moves this node's channels (loaded elsewhere first), bounded in time.

    The active coordinator is asked once, without waiting for a failover: when the whole cluster
    stops at once there is no one to hand over to, and the process must still exit promptly."""
    if coord is None:
        return
    started = time.monotonic()
    try:
        done = router.client(coord).call(
            "drain_querynode", endpoint=endpoint, wait_seconds=DRAIN_SECONDS, timeout=DRAIN_SECONDS + 5
        )
    except Exception as exc:  # the coordinator may be gone too: stop anyway
        log.warning("drain of %s failed: %s", endpoint, exc)
        return
    log.info("drain of %s %s after %.1f s", endpoint, "done" if done else "incomplete", time.monotonic() - started)
