"""Transports for role-to-role calls: in-process and gRPC, behind one tiny interface.

Like httpx's transports: the client encodes a call, a transport moves bytes. The gRPC one
uses a single generic unary method per service name, so no .proto file is needed for
Quiver's internal API; the Milvus-facing API uses pymilvus's generated protobufs instead.
"""

from __future__ import annotations

import abc
import threading
from concurrent import futures

import grpc

from common.errors import Code, MilvusError
from common.rpc.server import RpcServer

_MAX_MESSAGE = 512 * 1024 * 1024
GRPC_OPTIONS = [
    ("grpc.max_send_message_length", _MAX_MESSAGE),
    ("grpc.max_receive_message_length", _MAX_MESSAGE),
]


def _identity(data: bytes) -> bytes:
    return data


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


class GrpcTransport(Transport):
    """Calls ``/quiver.<name>/<method>`` on ``host:port``; one channel per address."""

    def __init__(self) -> None:
        self._channels: dict[str, grpc.Channel] = {}
        self._stubs: dict[tuple[str, str], grpc.UnaryUnaryMultiCallable] = {}
        self._lock = threading.Lock()

    def _channel(self, address: str) -> grpc.Channel:
        with self._lock:
            ch = self._channels.get(address)
            if ch is None:
                ch = grpc.insecure_channel(address, options=GRPC_OPTIONS)
                self._channels[address] = ch
            return ch

    def call(self, target: str, method: str, payload: bytes, timeout: float | None) -> bytes:
        stub = self._stubs.get((target, method))
        if stub is None:
            address, _, name = target.partition("/")
            stub = self._channel(address).unary_unary(
                f"/quiver.{name}/{method}", request_serializer=_identity, response_deserializer=_identity
            )
            with self._lock:
                self._stubs[(target, method)] = stub
        result: bytes = stub(payload, timeout=timeout)
        return result

    def close(self) -> None:
        with self._lock:
            for ch in self._channels.values():
                ch.close()
            self._channels.clear()
            self._stubs.clear()


class _GenericHandler(grpc.GenericRpcHandler):
    def __init__(self, services: dict[str, RpcServer]) -> None:
        self._services = services

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        path: str = handler_call_details.method  # "/quiver.<name>/<method>"
        if not path.startswith("/quiver."):
            return None
        name, _, method = path[len("/quiver.") :].partition("/")
        server = self._services.get(name)
        if server is None:
            return None

        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            return server.dispatch(method, request)

        return grpc.unary_unary_rpc_method_handler(
            handle, request_deserializer=_identity, response_serializer=_identity
        )


class InternalServices:
    """The table of services one gRPC server exposes under ``/quiver.<name>/...``.

    It is looked up on every call, so a service can be added after the server started (a
    standby coordinator serves its health at once and the coordinator API once it is active).
    """

    def __init__(self, server: grpc.Server) -> None:
        self._table: dict[str, RpcServer] = {}
        server.add_generic_rpc_handlers((_GenericHandler(self._table),))

    def add(self, name: str, *handlers: object) -> None:
        self._table[name] = RpcServer(*handlers)


def new_grpc_server(workers: int = 32) -> grpc.Server:
    return grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=GRPC_OPTIONS)
