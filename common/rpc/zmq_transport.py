"""Role-to-role calls over ZeroMQ: the cluster's internal transport, tuned for latency.

Issue #3 allows a cluster search at most 1 ms more than standalone, and the proxy-to-querynode
hop is the whole difference. A unary call through Python gRPC costs ~0.3-0.6 ms on a loopback
here (a C-core poller thread hands every call to a thread pool on both sides); the same round
trip over ZeroMQ costs ~0.07 ms. So the internal API (``zmq://host:port/name``) uses pyzmq, a
well-kept binding of libzmq; the Milvus-facing API stays gRPC.

Wire format: a DEALER client sends ``[service, method, call id, payload]``; the server's ROUTER
adds the client's identity, a thread pool runs the call (handlers may block, e.g. waiting for
tsafe), and the reply ``[call id, result]`` goes back through one I/O thread (ZeroMQ sockets are
not thread safe). ``payload`` and ``result`` are the codec's bytes, as with every transport.

Failure detection must be as fast as gRPC's, or failover across replicas stalls: the client
sockets use ``IMMEDIATE`` (nothing is queued for a peer that is not connected) and a socket
monitor, so a refused connection fails the call at once and a peer that dies mid-call (the
connection drops, or heartbeats stop for a half-open one) fails it as soon as libzmq notices.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from common.codec import pack
from common.errors import Code
from common.rpc.server import RpcServer
from common.rpc.transport import Transport

log = logging.getLogger(__name__)

CONNECT_WAIT_SECONDS = 2.0  # a peer that neither connects nor refuses within this is unreachable
HEARTBEAT_MS = 1000  # ZMTP heartbeats find half-open connections (a peer host that vanished)
HEARTBEAT_TIMEOUT_MS = 3000
_UP = zmq.EVENT_HANDSHAKE_SUCCEEDED
_DOWN = zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED | zmq.EVENT_CLOSED | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
_MONITORED = _UP | _DOWN


class Unreachable(ConnectionError):
    """The peer is not connected, refused the connection, or dropped it during the call."""


@dataclass(eq=False)  # identity semantics: kept in a WeakSet
class _Conn:
    """One thread's connection to one address: the socket, its monitor, and whether it is up."""

    sock: zmq.Socket[bytes]
    monitor: zmq.Socket[bytes]
    poller: zmq.Poller = field(default_factory=zmq.Poller)
    up: bool = False
    failures: int = 0  # connect attempts refused since the last success

    def drain_events(self) -> int:
        """Apply pending monitor events to ``up``; returns the last event seen (0: none)."""
        last = 0
        while self.monitor.poll(0):
            event = int(recv_monitor_message(self.monitor)["event"])
            if event & _UP:
                self.up, self.failures = True, 0
            elif event & _DOWN:
                self.up = False
                self.failures += event == zmq.EVENT_CONNECT_RETRIED
            last = event
        return last

    def close(self) -> None:
        if self.sock.closed:
            return
        with contextlib.suppress(zmq.ZMQError):
            self.sock.disable_monitor()
        self.monitor.close(linger=0)
        self.sock.close(linger=0)

    def __del__(self) -> None:  # the owning thread ended: its sockets go with it (no fd leak)
        with contextlib.suppress(Exception):
            self.close()


class ZmqTransport(Transport):
    """The client side: one DEALER socket per (thread, address), calls matched by id."""

    def __init__(self, context: zmq.Context[Any] | None = None) -> None:
        self._ctx = context or zmq.Context.instance()
        self._local = threading.local()
        self._ids = itertools.count(1)
        self._all: weakref.WeakSet[_Conn] = weakref.WeakSet()  # for close(); threads own them
        self._lock = threading.Lock()
        self._closed = False

    def _conn(self, address: str) -> _Conn:
        conns: dict[str, _Conn] | None = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        conn = conns.get(address)
        if conn is None:
            sock = self._ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.IMMEDIATE, 1)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RECONNECT_IVL, 100)
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
            sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_MS)
            sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
            monitor = sock.get_monitor_socket(_MONITORED)
            sock.connect(f"tcp://{address}")
            conn = _Conn(sock, monitor)
            conn.poller.register(sock, zmq.POLLIN)
            conn.poller.register(monitor, zmq.POLLIN)
            conns[address] = conn
            with self._lock:
                self._all.add(conn)
        return conn

    def open_connections(self) -> int:
        """Sockets alive across all threads (a thread's sockets close when it ends)."""
        with self._lock:
            return len(self._all)

    def _wait_up(self, conn: _Conn, address: str, deadline: float) -> None:
        """Block until the connection is up; fail at once on a refusal, or at the deadline."""
        conn.drain_events()
        if conn.up:
            return
        if conn.failures:  # refused before: try once more, briefly, then give up
            limit = min(deadline, time.monotonic() + 0.25)
        else:
            limit = min(deadline, time.monotonic() + CONNECT_WAIT_SECONDS)
        while not conn.up:
            left = limit - time.monotonic()
            if left <= 0 or not conn.monitor.poll(int(left * 1000) + 1):
                raise Unreachable(f"{address} is not reachable")
            before = conn.failures
            conn.drain_events()
            if conn.failures > before and not conn.up:
                raise Unreachable(f"connection to {address} refused")

    def call(self, target: str, method: str, payload: bytes, timeout: float | None) -> bytes:
        if self._closed:
            raise Unreachable("transport closed")
        address, _, name = target.partition("/")
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        conn = self._conn(address)
        self._wait_up(conn, address, deadline)
        call_id = next(self._ids).to_bytes(8, "little")
        try:
            conn.sock.send_multipart([name.encode(), method.encode(), call_id, payload], flags=zmq.NOBLOCK, copy=False)
        except zmq.Again as exc:
            conn.up = False
            raise Unreachable(f"{address} is not connected") from exc
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply from {address} to {method} within {timeout:.1f}s")
            ready = dict(conn.poller.poll(int(left * 1000) + 1))
            if conn.sock in ready:
                frames = conn.sock.recv_multipart()
                if len(frames) == 2 and frames[0] == call_id:
                    return bytes(frames[1])
                continue  # the late reply of a call that timed out earlier on this socket
            if conn.monitor in ready:
                conn.drain_events()
                if not conn.up:
                    raise Unreachable(f"connection to {address} lost during {method}")

    def close(self) -> None:
        self._closed = True
        with self._lock:
            conns = list(self._all)
            self._all.clear()
        for conn in conns:
            with contextlib.suppress(zmq.ZMQError):  # a socket already gone has nothing left to free
                conn.close()


class ZmqServer:
    """Serves a table of RpcServers on one TCP port; the table may grow after start."""

    def __init__(self, host: str, port: int, workers: int = 32, context: zmq.Context[Any] | None = None) -> None:
        self._ctx = context or zmq.Context.instance()
        self._router = self._ctx.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)
        self._router.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_MS)
        self._router.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        if port:
            self._router.bind(f"tcp://{host}:{port}")
            self.port = port
        else:
            self.port = self._router.bind_to_random_port(f"tcp://{host}")
        self._replies_addr = f"inproc://quiver-replies-{id(self)}"
        self._replies = self._ctx.socket(zmq.PULL)
        self._replies.bind(self._replies_addr)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc")
        self._local = threading.local()
        self._pushers: list[zmq.Socket[bytes]] = []
        self._lock = threading.Lock()
        self.services: dict[str, RpcServer] = {}
        self._stop = threading.Event()
        self._closing = False
        self._busy = 0  # calls being handled
        self._idle = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._run, name=f"rpc-io-{self.port}", daemon=True)

    def add(self, name: str, *handlers: object) -> None:
        self.services[name] = RpcServer(*handlers)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._replies, zmq.POLLIN)
        while not self._stop.is_set():
            for sock, _ in poller.poll(100):
                if sock is self._router:
                    frames = self._router.recv_multipart(copy=False)
                    if len(frames) != 5:
                        continue
                    if self._closing:  # stopping: refuse at once, so the caller fails over
                        refusal = pack({"e": [int(Code.SERVICE_UNAVAILABLE), "the node is shutting down"]})
                        self._router.send_multipart([frames[0].bytes, frames[3].bytes, refusal])
                    else:
                        self._pool.submit(self._handle, *(f.bytes for f in frames))
                else:
                    self._router.send_multipart(self._replies.recv_multipart(copy=False), copy=False)
        self._router.close(linger=0)
        self._replies.close(linger=0)

    def _pusher(self) -> zmq.Socket[bytes]:
        sock: zmq.Socket[bytes] | None = getattr(self._local, "push", None)
        if sock is None:
            sock = self._ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self._replies_addr)
            self._local.push = sock
            with self._lock:
                self._pushers.append(sock)
        return sock

    def _handle(self, identity: bytes, service: bytes, method: bytes, call_id: bytes, payload: bytes) -> None:
        with self._lock:
            self._busy += 1
        try:
            server = self.services.get(service.decode())
            if server is None:
                reply = pack({"e": [int(Code.SERVICE_UNAVAILABLE), f"service {service.decode()} is not served here"]})
            else:
                reply = server.dispatch(method.decode(), payload)
            if not self._stop.is_set():
                self._pusher().send_multipart([identity, call_id, reply], copy=False)
        finally:
            with self._lock:
                self._busy -= 1
                self._idle.notify_all()

    def stop(self, grace: float = 2.0) -> None:
        """Stop taking calls; let running ones finish for ``grace`` seconds (their replies still go out)."""
        self._closing = True
        deadline = time.monotonic() + grace
        with self._lock:
            while self._busy and time.monotonic() < deadline:
                self._idle.wait(deadline - time.monotonic())
            drained = not self._busy
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        if drained:  # a handler still running would use its socket: leave those to the process exit
            with self._lock:
                pushers, self._pushers = self._pushers, []
            for sock in pushers:
                sock.close(linger=0)
