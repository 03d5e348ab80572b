"""The caller's side of role-to-role RPC, and the router that picks a transport by endpoint."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from common.codec import pack, unpack
from common.errors import Code, MilvusError
from common.logs import current_request_id
from common.rpc.server import REQUEST_ID_KEY, RpcServer
from common.rpc.tcp_transport import TcpTransport
from common.rpc.transport import LocalTransport, Transport


class Router:
    """Resolves endpoints (``local://name`` or ``tcp://host:port/name``) to transports."""

    def __init__(self) -> None:
        self.local = LocalTransport()
        self._tcp: TcpTransport | None = None
        self._lock = threading.Lock()

    def register_local(self, name: str, *handlers: object) -> str:
        """Serve ``handlers`` in this process under one name; returns its endpoint."""
        self.local.register(name, RpcServer(*handlers))
        return f"local://{name}"

    def transport(self, endpoint: str) -> tuple[Transport, str]:
        if endpoint.startswith("local://"):
            return self.local, endpoint[len("local://") :]
        if endpoint.startswith("tcp://"):
            with self._lock:
                if self._tcp is None:
                    self._tcp = TcpTransport()
            return self._tcp, endpoint[len("tcp://") :]
        raise ValueError(f"unknown endpoint {endpoint!r}")

    def client(self, endpoint: str) -> RpcClient:
        return RpcClient(self, endpoint)

    def close(self) -> None:
        if self._tcp is not None:
            self._tcp.close()


class RpcClient:
    """Calls ``method(**kwargs)`` on the role at ``endpoint``; raises the callee's MilvusError."""

    def __init__(self, router: Router, endpoint: str) -> None:
        self.endpoint = endpoint
        self._transport, self._target = router.transport(endpoint)

    def call(self, method: str, timeout: float | None = 60.0, **kwargs: Any) -> Any:
        try:
            rid = current_request_id()
            raw = self._transport.call(self._target, method, pack({REQUEST_ID_KEY: rid, **kwargs} if rid else kwargs),
                                       timeout)
        except MilvusError:
            raise
        except Exception as exc:
            raise MilvusError(Code.SERVICE_UNAVAILABLE, f"call {method} to {self.endpoint} failed: {exc}") from exc
        reply = unpack(raw)
        if "e" in reply:
            code, message = reply["e"]
            raise MilvusError(code, message)
        return reply["r"]


class Caller(Protocol):
    """Anything that calls a role: a fixed :class:`RpcClient` or a :class:`ResolvingClient`."""

    def call(self, method: str, timeout: float | None = 60.0, **kwargs: Any) -> Any: ...


_RETRY_CODES = {Code.SERVICE_UNAVAILABLE, Code.NODE_NOT_AVAILABLE, Code.SERVICE_NOT_READY}


class ResolvingClient:
    """Calls whichever node ``resolve()`` names now (the active coordinator), following failover.

    When the node cannot be reached, the endpoint is resolved again and the call retried until
    ``failover_seconds`` have passed, so a standby taking over is invisible to callers.
    """

    def __init__(self, router: Router, resolve: Callable[[], str | None], failover_seconds: float = 30.0) -> None:
        self._router = router
        self._resolve = resolve
        self._failover = failover_seconds
        self._client: RpcClient | None = None
        self._lock = threading.Lock()

    def _current(self) -> RpcClient:
        with self._lock:
            if self._client is None:
                endpoint = self._resolve()
                if not endpoint:
                    raise MilvusError(Code.SERVICE_NOT_READY, "no active coordinator registered yet")
                self._client = self._router.client(endpoint)
            return self._client

    def call(self, method: str, timeout: float | None = 60.0, **kwargs: Any) -> Any:
        deadline = time.monotonic() + self._failover
        while True:
            try:
                return self._current().call(method, timeout=timeout, **kwargs)
            except MilvusError as exc:
                if exc.code not in _RETRY_CODES or time.monotonic() > deadline:
                    raise
                with self._lock:
                    self._client = None
                time.sleep(0.2)
