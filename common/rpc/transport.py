"""The transport interface for role-to-role calls, and the in-process transport.

Like httpx's transports: the client encodes a call, a transport moves bytes. Standalone and
unit tests use :class:`LocalTransport` (same process, still encoded, so behaviour is identical);
a cluster uses plain TCP connections (common/rpc/tcp_transport.py). The Milvus-facing API is gRPC with
pymilvus's generated protobufs; Quiver's internal API needs no .proto file.
"""

from __future__ import annotations

import abc

from common.errors import Code, MilvusError
from common.rpc.server import RpcServer


class Transport(abc.ABC):
    @abc.abstractmethod
    def call(self, target: str, method: str, payload: bytes, timeout: float | None) -> bytes: ...

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        pass


class LocalTransport(Transport):
    """Calls a handler registered in this process (standalone mode and unit tests)."""

    def __init__(self) -> None:
        self._servers: dict[str, RpcServer] = {}

    def register(self, name: str, server: RpcServer) -> None:
        self._servers[name] = server

    def unregister(self, name: str) -> None:
        self._servers.pop(name, None)

    def call(self, target: str, method: str, payload: bytes, timeout: float | None) -> bytes:
        server = self._servers.get(target)
        if server is None:
            raise MilvusError(Code.NODE_NOT_AVAILABLE, f"node {target} is not running")
        return server.dispatch(method, payload)
