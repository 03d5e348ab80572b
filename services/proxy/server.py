"""The proxy role: serves the Milvus gRPC API and the HTTP endpoints, reports timeticks."""

from __future__ import annotations

import logging
import threading
from concurrent import futures

import grpc
import uvicorn
from pymilvus.grpc_gen import milvus_pb2_grpc

from common.config import QuiverConfig
from common.msgstream.base import MsgStream
from common.rpc import Caller, Router
from services.proxy.auth import AuthGate
from services.proxy.cache_control import ProxyControl
from services.proxy.context import ProxyContext
from services.proxy.http_app import create_app
from services.proxy.meta_cache import MetaCache
from services.proxy.quota import grpc_server_options
from services.proxy.servicer import MilvusServicer
from services.proxy.tasks import Scheduler
from services.proxy.ticker import DmlTicker
from services.proxy.tls import grpc_credentials, uvicorn_ssl

log = logging.getLogger(__name__)


class Proxy:
    def __init__(self, cfg: QuiverConfig, node_id: int, router: Router, coord: Caller, stream: MsgStream) -> None:
        self.cfg = cfg
        self.ctx = ProxyContext(
            cfg=cfg,
            node_id=node_id,
            router=router,
            coord=coord,
            stream=stream,
            cache=MetaCache(coord),
            ticker=DmlTicker(coord, node_id, cfg.timetick_interval_ms / 1000),
            scheduler=Scheduler(),
            auth=AuthGate(coord, cfg.security) if cfg.security.authorization_enabled else None,
        )
        self.servicer = MilvusServicer(self.ctx)  # one servicer behind gRPC and REST alike
        self.control = ProxyControl(self.ctx.cache)  # internal RPC: the coordinator's cache invalidations
        self._grpc: grpc.Server | None = None
        self._http: uvicorn.Server | None = None
        self.grpc_port = 0
        self.http_port = 0

    def start(self) -> None:
        self.ctx.ticker.start()
        self._start_http()  # first: once gRPC answers, clients may use HTTP (health, REST) too
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=grpc_server_options(self.cfg.quota))
        milvus_pb2_grpc.add_MilvusServiceServicer_to_server(self.servicer, server)
        address = f"{self.cfg.host}:{self.cfg.grpc_port}"
        credentials = grpc_credentials(self.cfg.security)
        if credentials is None:
            self.grpc_port = server.add_insecure_port(address)
        else:
            self.grpc_port = server.add_secure_port(address, credentials)
        if self.grpc_port == 0:
            raise OSError(f"cannot bind the Milvus gRPC port {self.cfg.host}:{self.cfg.grpc_port}")
        server.start()
        self._grpc = server
        log.info("proxy serving Milvus gRPC on %s:%d, HTTP on %d", self.cfg.host, self.grpc_port, self.http_port)

    def _start_http(self) -> None:
        app = create_app(self._healthy, self.servicer)
        config = uvicorn.Config(
            app,
            host=self.cfg.host,
            port=self.cfg.http_port,
            log_level="warning",
            access_log=False,
            **uvicorn_ssl(self.cfg.security),
        )
        self._http = uvicorn.Server(config)
        thread = threading.Thread(target=self._http.run, name="proxy-http", daemon=True)
        thread.start()
        while not self._http.started and thread.is_alive():
            thread.join(0.02)
        if not self._http.started:
            raise OSError(f"cannot bind the HTTP port {self.cfg.host}:{self.cfg.http_port}")
        self.http_port = self._http.servers[0].sockets[0].getsockname()[1] if self._http.servers else self.cfg.http_port

    def _healthy(self) -> bool:
        try:
            self.ctx.coord.call("ping", timeout=2.0)
            return True
        except Exception:
            return False

    def stop(self, grace: float = 2.0) -> None:
        self.ctx.ticker.stop()
        if self._grpc is not None:
            self._grpc.stop(grace).wait()
        if self._http is not None:
            self._http.should_exit = True
        self.ctx.scheduler.close()
