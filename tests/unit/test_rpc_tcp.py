"""The TCP internal transport: calls, errors, concurrency, and fast failure on dead peers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from common.errors import Code, MilvusError
from common.rpc import Router, rpc
from common.rpc.tcp_transport import TcpServer, TcpTransport
from quiver.devcluster.servers import free_ports


class Echo:
    def __init__(self) -> None:
        self.release = threading.Event()

    @rpc
    def echo(self, value: object) -> object:
        return value

    @rpc
    def fail(self) -> None:
        raise MilvusError(Code.COLLECTION_NOT_FOUND, "collection not found[collection=x]")

    @rpc
    def crash(self) -> None:
        raise RuntimeError("boom")

    @rpc
    def block(self, seconds: float) -> str:
        self.release.wait(seconds)
        return "released"


@pytest.fixture
def server() -> Iterator[tuple[TcpServer, Echo]]:
    handler = Echo()
    srv = TcpServer("127.0.0.1", 0)
    srv.add("echo", handler)
    srv.start()
    yield srv, handler
    handler.release.set()
    srv.stop(grace=0.5)


@pytest.fixture
def router() -> Iterator[Router]:
    r = Router()
    yield r
    r.close()


def test_a_call_returns_numpy_arrays_and_scalars(server: tuple[TcpServer, Echo], router: Router) -> None:
    srv, _ = server
    client = router.client(f"tcp://127.0.0.1:{srv.port}/echo")
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = client.call("echo", value={"a": arr, "b": [1, "x"]})
    assert np.array_equal(out["a"], arr) and out["b"] == [1, "x"]


def test_callee_errors_keep_their_code(server: tuple[TcpServer, Echo], router: Router) -> None:
    srv, _ = server
    client = router.client(f"tcp://127.0.0.1:{srv.port}/echo")
    with pytest.raises(MilvusError) as err:
        client.call("fail")
    assert err.value.code == Code.COLLECTION_NOT_FOUND
    with pytest.raises(MilvusError) as err:
        client.call("crash")
    assert err.value.code == Code.UNEXPECTED and "boom" in err.value.message
    with pytest.raises(MilvusError) as err:
        router.client(f"tcp://127.0.0.1:{srv.port}/nothing").call("echo", value=1)
    assert err.value.code == Code.SERVICE_UNAVAILABLE  # a standby coordinator: callers retry elsewhere


def test_a_blocked_call_does_not_hold_up_others(server: tuple[TcpServer, Echo], router: Router) -> None:
    srv, handler = server
    client = router.client(f"tcp://127.0.0.1:{srv.port}/echo")
    box: list[object] = []
    t = threading.Thread(target=lambda: box.append(client.call("block", seconds=10)))
    t.start()
    results = [client.call("echo", value=i) for i in range(50)]  # same endpoint, another thread's socket
    assert results == list(range(50)) and not box
    handler.release.set()
    t.join(5)
    assert box == ["released"]


def test_many_threads_get_their_own_replies(server: tuple[TcpServer, Echo], router: Router) -> None:
    srv, _ = server
    client = router.client(f"tcp://127.0.0.1:{srv.port}/echo")
    errors: list[str] = []

    def worker(n: int) -> None:
        for i in range(100):
            if client.call("echo", value=(n, i)) != [n, i]:
                errors.append(f"{n}/{i}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors


def test_a_timed_out_call_fails_and_its_late_reply_is_ignored(server: tuple[TcpServer, Echo], router: Router) -> None:
    srv, handler = server
    client = router.client(f"tcp://127.0.0.1:{srv.port}/echo")
    with pytest.raises(MilvusError) as err:
        client.call("block", seconds=0.5, timeout=0.1)
    assert err.value.code == Code.SERVICE_UNAVAILABLE and "block" in err.value.message
    time.sleep(0.6)  # the late reply went to the connection the timeout closed
    assert client.call("echo", value="next") == "next"


def test_a_refused_connection_fails_fast(router: Router) -> None:
    client = router.client(f"tcp://127.0.0.1:{free_ports(1)[0]}/echo")
    t0 = time.monotonic()
    with pytest.raises(MilvusError) as err:
        client.call("echo", value=1, timeout=30)
    assert err.value.code == Code.SERVICE_UNAVAILABLE
    assert time.monotonic() - t0 < 1.5  # not the call's 30 s timeout


def test_a_peer_killed_during_a_call_fails_it_fast(router: Router) -> None:
    code = textwrap.dedent(
        """
        import sys, threading
        sys.path.insert(0, {root!r})
        from common.rpc import rpc
        from common.rpc.tcp_transport import TcpServer
        class Slow:
            @rpc
            def hang(self) -> None:
                threading.Event().wait(60)
        srv = TcpServer("127.0.0.1", 0)
        srv.add("slow", Slow())
        srv.start()
        print(srv.port, flush=True)
        threading.Event().wait(120)
        """
    ).format(root=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        client = router.client(f"tcp://127.0.0.1:{port}/slow")
        threading.Timer(0.5, proc.kill).start()
        t0 = time.monotonic()
        with pytest.raises(MilvusError) as err:
            client.call("hang", timeout=30)
        assert err.value.code == Code.SERVICE_UNAVAILABLE
        assert time.monotonic() - t0 < 5  # the dropped connection, not the 30 s timeout
        t0 = time.monotonic()
        with pytest.raises(MilvusError):
            client.call("hang", timeout=30)  # and the next call to the dead peer fails at once too
        assert time.monotonic() - t0 < 3
    finally:
        proc.kill()
        proc.wait()


def test_a_restarted_peer_on_the_same_port_is_reached_again(router: Router) -> None:
    port = free_ports(1)[0]
    first = TcpServer("127.0.0.1", port)
    first.add("echo", Echo())
    first.start()
    client = router.client(f"tcp://127.0.0.1:{port}/echo")
    assert client.call("echo", value=1) == 1
    first.stop(grace=0)
    with pytest.raises(MilvusError):
        client.call("echo", value=2, timeout=5)
    second = TcpServer("127.0.0.1", port)
    second.add("echo", Echo())
    second.start()
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                assert client.call("echo", value=3) == 3
                break
            except MilvusError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        second.stop(grace=0)


def test_a_stopping_server_refuses_new_calls(server: tuple[TcpServer, Echo], router: Router) -> None:
    srv, handler = server
    client = router.client(f"tcp://127.0.0.1:{srv.port}/echo")
    assert client.call("echo", value=0) == 0
    t = threading.Thread(target=client.call, kwargs={"method": "block", "seconds": 5})
    t.start()
    time.sleep(0.2)
    stopper = threading.Thread(target=srv.stop, kwargs={"grace": 2.0})
    stopper.start()
    time.sleep(0.2)
    other = router.client(f"tcp://127.0.0.1:{srv.port}/echo")
    with pytest.raises(MilvusError) as err:
        other.call("echo", value=1)
    assert err.value.code == Code.SERVICE_UNAVAILABLE
    handler.release.set()
    stopper.join(5)
    t.join(5)


def test_a_thread_that_ends_closes_its_sockets(server: tuple[TcpServer, Echo], router: Router) -> None:
    import gc

    srv, _ = server
    client = router.client(f"tcp://127.0.0.1:{srv.port}/echo")
    transport = client._transport
    assert isinstance(transport, TcpTransport)
    before = transport.open_connections()
    threads = [threading.Thread(target=client.call, kwargs={"method": "echo", "value": i}) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    del threads, t
    gc.collect()
    assert transport.open_connections() == before  # short-lived threads (REST workers) leak nothing
