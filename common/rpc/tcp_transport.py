"""Role-to-role calls over plain TCP connections: the cluster's internal transport.

Issue #3 allows a cluster search at most 1 ms more than standalone, and a search crosses two
internal hops (proxy -> shard leader -> workers). What a hop costs is thread wake-ups, not
bytes: Python gRPC hands each call between a C-core poller thread and a handler pool on both
sides (~0.3-0.6 ms), and ZeroMQ (this transport's predecessor) between libzmq's I/O threads,
a Python poll loop and a pool (measured 0.36 ms back to back, 0.9 ms after 5 ms idle). Here a
call is one blocking write and one blocking read on a connection owned by the calling thread,
and the server runs it on the thread that owns the other end: two wake-ups per round trip
(measured 0.03-0.09 ms). The framing is the standard library's
``multiprocessing.connection.Connection`` (length-prefixed messages), on sockets this module
tunes (``TCP_NODELAY``: no Nagle delay on small replies; keepalive: a peer that vanishes
without closing is noticed in ~4 s).

Wire format: a request is ``<len(service)><len(method)><service><method><payload>`` (two
unsigned shorts, little endian), a reply is the codec's bytes, as with every transport.

Each client thread has its own connection per peer, so a call that blocks (a read waiting for
tsafe) holds up only its caller, and the server gets one thread per connection. A refused
connection fails at once; a peer that dies mid-call fails the call when its connection drops;
a call that times out closes its connection (a late reply can never be read as another
call's). A connection the peer closed while idle (it restarted) is replaced before use. A
stopping server answers new calls "shutting down" (callers fail over) and lets running ones
finish for a grace period.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
import threading
import time
import weakref
from multiprocessing.connection import Connection

from common.codec import pack
from common.errors import Code
from common.rpc.server import RpcServer
from common.rpc.transport import Transport

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 2.0
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 1, 1, 3
_HEADER = struct.Struct("<HH")


class Unreachable(ConnectionError):
    """The peer cannot be reached or the connection dropped: the caller may try another node."""


def _tune(sock: socket.socket) -> None:
    sock.setblocking(True)  # reads wait in the kernel, without the GIL
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL), ("TCP_KEEPCNT", KEEPALIVE_COUNT)
    ):
        if hasattr(socket, name):  # Linux; other systems keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def _request(service: str, method: str, payload: bytes) -> bytes:
    s, m = service.encode(), method.encode()
    return b"".join((_HEADER.pack(len(s), len(m)), s, m, payload))


def _parse(raw: bytes) -> tuple[str, str, bytes]:
    ls, lm = _HEADER.unpack_from(raw)
    start = _HEADER.size
    return (
        raw[start : start + ls].decode(),
        raw[start + ls : start + ls + lm].decode(),
        raw[start + ls + lm :],
    )


def _wake(conn: Connection) -> None:
    """Unblock a thread reading ``conn`` (shutdown reaches every descriptor of the socket)."""
    with contextlib.suppress(OSError, ValueError):
        dup = socket.socket(fileno=os.dup(conn.fileno()))
        with contextlib.suppress(OSError):
            dup.shutdown(socket.SHUT_RDWR)
        dup.close()


class _Conn:
    """One client connection; closed when its owning thread's table goes away (no fd leak)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()

    def __del__(self) -> None:
        self.close()


class TcpTransport(Transport):
    """The client side: ``host:port/service`` targets, a connection per calling thread and peer."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: weakref.WeakSet[_Conn] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False

    def _table(self) -> dict[str, _Conn]:
        table: dict[str, _Conn] | None = getattr(self._local, "conns", None)
        if table is None:
            table = self._local.conns = {}
        return table

    def _connect(self, address: str, deadline: float) -> _Conn:
        host, _, port = address.rpartition(":")
        wait = max(0.05, min(CONNECT_TIMEOUT_SECONDS, deadline - time.monotonic()))
        try:
            sock = socket.create_connection((host, int(port)), timeout=wait)
        except OSError as exc:
            raise Unreachable(f"{address} is not reachable: {exc}") from exc
        _tune(sock)
        conn = _Conn(Connection(sock.detach()))
        with self._lock:
            self._all.add(conn)
        return conn

    def open_connections(self) -> int:
        """Connections alive across all threads (a thread's connections close when it ends)."""
        with self._lock:
            return len(self._all)

    def call(self, target: str, method: str, payload: bytes, timeout: float | None) -> bytes:
        if self._closed:
            raise Unreachable("transport closed")
        address, _, service = target.partition("/")
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        table = self._table()
        conn = table.get(address)
        if conn is not None and conn.conn.poll(0):  # readable while idle: the peer closed it
            table.pop(address).close()
            conn = None
        if conn is None:
            conn = table[address] = self._connect(address, deadline)
        try:
            conn.conn.send_bytes(_request(service, method, payload))
            if not conn.conn.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"no reply from {address} to {method} within {timeout:.1f}s")
            return conn.conn.recv_bytes()
        except TimeoutError:
            table.pop(address, None)
            conn.close()  # its late reply must not be read as the next call's
            raise
        except (EOFError, OSError) as exc:
            table.pop(address, None)
            conn.close()
            raise Unreachable(f"connection to {address} lost during {method}") from exc

    def close(self) -> None:
        self._closed = True
        with self._lock:
            conns = list(self._all)
            self._all.clear()
        for conn in conns:
            conn.close()


class TcpServer:
    """Serves a table of RpcServers on one TCP port; the table may grow after start."""

    def __init__(self, host: str, port: int, backlog: int = 128) -> None:
        self._sock = socket.create_server((host, port), backlog=backlog)
        self._sock.settimeout(0.2)  # the accept loop notices stop() within this
        self.port = int(self._sock.getsockname()[1])
        self.services: dict[str, RpcServer] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0  # calls being handled
        self._closing = False
        self._stop = threading.Event()
        self._conns: set[Connection] = set()
        self._thread = threading.Thread(target=self._accept, name=f"rpc-accept-{self.port}", daemon=True)

    def add(self, name: str, *handlers: object) -> None:
        self.services[name] = RpcServer(*handlers)

    def start(self) -> None:
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    break
                log.exception("accepting an internal RPC connection failed")
                time.sleep(0.1)
                continue
            _tune(sock)
            conn = Connection(sock.detach())
            with self._lock:
                if self._stop.is_set():
                    conn.close()
                    break
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name=f"rpc-{self.port}", daemon=True).start()
        with contextlib.suppress(OSError):
            self._sock.close()

    def _serve(self, conn: Connection) -> None:
        try:
            while not self._stop.is_set():
                try:
                    raw = conn.recv_bytes()
                except (EOFError, OSError):
                    return
                conn.send_bytes(self._handle(raw))
        except OSError:
            return  # the caller went away mid-reply
        finally:
            with self._lock:
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _handle(self, raw: bytes) -> bytes:
        with self._lock:
            if self._closing:  # stopping: refuse at once, so the caller fails over
                return pack({"e": [int(Code.SERVICE_UNAVAILABLE), "the node is shutting down"]})
            self._busy += 1
        try:
            service, method, payload = _parse(raw)
            server = self.services.get(service)
            if server is None:
                return pack({"e": [int(Code.SERVICE_UNAVAILABLE), f"service {service} is not served here"]})
            return server.dispatch(method, payload)
        except (struct.error, UnicodeDecodeError):
            return pack({"e": [int(Code.PARAMETER_INVALID), "malformed internal RPC request"]})
        finally:
            with self._lock:
                self._busy -= 1
                self._idle.notify_all()

    def stop(self, grace: float = 2.0) -> None:
        """Stop taking calls; let running ones finish for ``grace`` seconds (their replies still go out)."""
        with self._lock:
            self._closing = True
            deadline = time.monotonic() + grace
            while self._busy and time.monotonic() < deadline:
                self._idle.wait(deadline - time.monotonic())
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        with contextlib.suppress(OSError):
            self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            _wake(conn)  # each connection's thread sees EOF, closes it and ends
