"""The backend contracts (tests/contracts) on real etcd, SeaweedFS S3 and pulsar-lite servers.

Besides the shared checks, each backend must recover when its server restarts: the same
client keeps working, nothing acknowledged is lost, and watches/readers resume without gaps
or repeats.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common.kv.base import KV, WatchEvent
from common.kv.etcd import EtcdKV
from common.msgstream.base import MsgStream
from common.msgstream.pulsar import MAX_PAYLOAD, MessageTooLarge, PulsarStream
from common.storage.base import ObjectStorage
from common.storage.s3 import S3Storage
from quiver.devcluster.servers import EtcdServer, PulsarLiteServer, SeaweedS3Server
from tests.contracts import kv as kv_contract
from tests.contracts import msgstream as stream_contract
from tests.contracts import storage as storage_contract
from tests.contracts._util import unique, wait_until

pytestmark = pytest.mark.integration


# -------------------------------------------------------------------------------- etcd


@pytest.fixture
def etcd_kv(etcd_server: EtcdServer) -> Iterator[EtcdKV]:
    kv = EtcdKV([etcd_server.endpoint], root=unique("quiver-test"))
    yield kv
    kv.close()


@pytest.mark.parametrize("check", kv_contract.CHECKS, ids=lambda c: c.__name__)
def test_etcd_contract(etcd_kv: EtcdKV, check: Callable[[KV], None]) -> None:
    check(etcd_kv)


def test_etcd_durable_across_reopen(etcd_server: EtcdServer) -> None:
    root = unique("quiver-test")
    kv_contract.check_durable_across_reopen(lambda: EtcdKV([etcd_server.endpoint], root=root))


def test_etcd_root_isolates_keys(etcd_server: EtcdServer) -> None:
    a = EtcdKV([etcd_server.endpoint], root=unique("root-a"))
    b = EtcdKV([etcd_server.endpoint], root=unique("root-b") + "/")
    try:
        a.put("k", b"a")
        b.put("k", b"b")
        assert a.get("k") == b"a" and b.get("k") == b"b"
        assert [kv.key for kv in a.scan("")] == ["k"]
        assert a.delete_prefix("") == 1
        assert b.get("k") == b"b"
    finally:
        b.delete_prefix("")
        a.close()
        b.close()


@pytest.mark.parametrize("hard", [False, True], ids=["restart", "kill-9"])
def test_etcd_recovers_after_server_restart(etcd_server: EtcdServer, hard: bool) -> None:
    kv = EtcdKV([etcd_server.endpoint], root=unique("quiver-test"))
    events: list[WatchEvent] = []
    lock = threading.Lock()

    def record(event: WatchEvent) -> None:
        with lock:
            events.append(event)

    handle = kv.watch_prefix("w/", record)
    try:
        before = [kv.put(f"w/{i}", b"before") for i in range(5)]
        if hard:
            etcd_server.kill()
            etcd_server.start()
        else:
            etcd_server.restart()
        started = time.monotonic()
        after = [kv.put(f"w/{i}", b"after") for i in range(5)]
        recovery = time.monotonic() - started
        assert recovery < 15, f"first write after restart took {recovery:.1f}s"
        assert kv.get("w/4") == b"after"
        expected = before + after
        assert wait_until(lambda: len(events) >= len(expected), timeout=20)
        time.sleep(0.3)
        with lock:
            assert [e.revision for e in events] == expected, "no event lost or repeated"
    finally:
        handle.cancel()
        kv.delete_prefix("")
        kv.close()


# ---------------------------------------------------------------------------- S3


def _s3(server: SeaweedS3Server, bucket: str = "quiver-test", root: str = "files") -> S3Storage:
    return S3Storage(server.endpoint, bucket, server.access_key, server.secret_key, root=root)


@pytest.fixture
def s3_storage(s3_server: SeaweedS3Server) -> Iterator[S3Storage]:
    storage = _s3(s3_server)
    yield storage
    storage.close()


@pytest.mark.parametrize("check", storage_contract.CHECKS, ids=lambda c: c.__name__)
def test_s3_contract(s3_storage: S3Storage, check: Callable[[ObjectStorage], None]) -> None:
    check(s3_storage)


def test_s3_durable_across_reopen(s3_server: SeaweedS3Server) -> None:
    storage_contract.check_durable_across_reopen(lambda: _s3(s3_server))


def test_s3_creates_bucket_and_keeps_roots_apart(s3_server: SeaweedS3Server) -> None:
    bucket = unique("bucket").lower()
    a, b = _s3(s3_server, bucket, root="a"), _s3(s3_server, bucket, root="b/")
    try:
        a.put("k/1", b"a")
        b.put("k/1", b"b")
        assert a.get("k/1") == b"a" and b.get("k/1") == b"b"
        assert a.list("") == ["k/1"]
        assert a.delete_prefix("") == 1
        assert b.list("") == ["k/1"]
    finally:
        b.delete_prefix("")
        a.close()
        b.close()


def test_s3_many_objects_paginate(s3_storage: S3Storage) -> None:
    prefix = unique("many") + "/"
    keys = [f"{prefix}{i:05d}" for i in range(1205)]
    for key in keys:
        s3_storage.put(key, b"x")
    assert s3_storage.list(prefix) == keys
    assert s3_storage.delete_prefix(prefix) == len(keys)
    assert s3_storage.list(prefix) == []


def test_s3_recovers_after_server_restart(s3_server: SeaweedS3Server) -> None:
    storage = _s3(s3_server)
    prefix = unique("restart") + "/"
    try:
        storage.put(prefix + "before", b"kept")
        s3_server.restart()
        started = time.monotonic()
        storage.put(prefix + "after", b"new")
        recovery = time.monotonic() - started
        assert recovery < 30, f"first write after restart took {recovery:.1f}s"
        assert storage.get(prefix + "before") == b"kept"
        assert storage.list(prefix) == [prefix + "after", prefix + "before"]
        # A write issued while the server is down completes once it is back.
        s3_server.stop()
        errors: list[BaseException] = []

        def put_while_down() -> None:
            try:
                storage.put(prefix + "during", b"late")
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        writer = threading.Thread(target=put_while_down)
        writer.start()
        time.sleep(0.5)
        s3_server.start()
        writer.join(60)
        assert not writer.is_alive() and errors == []
        assert storage.get(prefix + "during") == b"late"
    finally:
        storage.delete_prefix(prefix)
        storage.close()


# ---------------------------------------------------------------------------- Pulsar

# pulsar-lite has no admin API, so a topic cannot be deleted there (see PulsarStream).
PULSAR_CHECKS = [c for c in stream_contract.CHECKS if c is not stream_contract.check_delete_channel]


@pytest.fixture
def pulsar_stream(pulsar_server: PulsarLiteServer) -> Iterator[PulsarStream]:
    stream = PulsarStream(pulsar_server.service_url, topic_prefix="quiver-test-")
    yield stream
    stream.close()


@pytest.mark.parametrize("check", PULSAR_CHECKS, ids=lambda c: c.__name__)
def test_pulsar_contract(pulsar_stream: PulsarStream, check: Callable[[MsgStream], None]) -> None:
    check(pulsar_stream)


def test_pulsar_throughput(pulsar_stream: PulsarStream) -> None:
    rate = stream_contract.check_throughput(pulsar_stream, count=2000, size=1024)
    assert rate > 200, f"only {rate:.0f} messages/s"


def test_pulsar_durable_across_reopen(pulsar_server: PulsarLiteServer) -> None:
    stream_contract.check_durable_across_reopen(lambda: PulsarStream(pulsar_server.service_url))


def test_pulsar_message_size_limit(pulsar_stream: PulsarStream) -> None:
    channel = unique("ms-limit")
    largest = b"\x01" * MAX_PAYLOAD
    pulsar_stream.produce(channel, largest)
    with pytest.raises(MessageTooLarge):
        pulsar_stream.produce(channel, largest + b"\x01")
    reader = pulsar_stream.reader(channel)
    try:
        message = reader.read(30)
        assert message is not None and message.payload == largest
    finally:
        reader.close()


def test_pulsar_recovers_after_broker_restart(pulsar_server: PulsarLiteServer) -> None:
    stream = PulsarStream(pulsar_server.service_url)
    channel = unique("ms-restart")
    try:
        before = [stream.produce(channel, f"b{i}".encode()) for i in range(5)]
        reader = stream.reader(channel, start=before[1])
        got = stream_contract.read_n(reader, 3)
        assert [m.payload for m in got] == [b"b2", b"b3", b"b4"]
        pulsar_server.restart()
        started = time.monotonic()
        after = [stream.produce(channel, f"a{i}".encode()) for i in range(5)]
        recovery = time.monotonic() - started
        assert recovery < 30, f"first produce after restart took {recovery:.1f}s"
        assert stream.compare(after[0], before[-1]) == 1
        got = stream_contract.read_n(reader, 5, timeout=60)
        assert [m.payload for m in got] == [f"a{i}".encode() for i in range(5)], "no gap, no repeat"
        assert reader.read(0.5) is None
        reader.close()
        fresh = stream.reader(channel, start=before[-1])
        assert [m.payload for m in stream_contract.read_n(fresh, 5)] == [f"a{i}".encode() for i in range(5)]
        fresh.close()
    finally:
        stream.close()


def test_etcd_with_authentication_and_expiring_tokens(tmp_path: Path) -> None:
    # Tokens that expire after 1 s: the client must authenticate again by itself.
    server = EtcdServer(str(tmp_path), extra_args=("--auth-token-ttl=1",))
    server.start()
    try:
        server.enable_auth("s3cret")
        with pytest.raises(Exception):  # noqa: B017 - any refusal will do
            EtcdKV([server.endpoint], retry_seconds=1).put("k", b"v")
        kv = EtcdKV([server.endpoint], root="auth", user="root", password="s3cret")
        try:
            kv.put("k", b"v")
            time.sleep(2.5)  # the token is gone by now
            assert kv.get("k") == b"v"
            assert kv.put("k", b"w") > 0
        finally:
            kv.close()
    finally:
        server.stop()
