"""Contract checks for :class:`common.kv.KV` backends (memory, local, etcd).

Each ``check_*`` takes a backend and works under its own unique prefix, so the checks can
run one after another against one shared etcd. ``CHECKS`` lists those that need only a KV;
the durability checks take a factory that opens the same store again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from common.kv.base import KV, LeaseNotFound, WatchEvent
from tests.contracts._util import unique, wait_until


def _root() -> str:
    return unique("kvc") + "/"


class _Collector:
    """A watch callback that records events and lets a check wait for a count."""

    def __init__(self) -> None:
        self.events: list[WatchEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: WatchEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[WatchEvent]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.events) >= count, timeout)
            return list(self.events)


def check_get_put_delete(kv: KV) -> None:
    p = _root()
    assert kv.get(p + "a") is None
    r1 = kv.put(p + "a", b"one")
    assert kv.get(p + "a") == b"one"
    assert kv.revision() == r1
    r2 = kv.put(p + "a", b"two")
    assert r2 == r1 + 1, "each write transaction adds exactly one revision"
    assert kv.get(p + "a") == b"two"
    assert kv.delete(p + "a") is True
    assert kv.get(p + "a") is None
    rev = kv.revision()
    assert rev == r2 + 1
    assert kv.delete(p + "a") is False
    assert kv.revision() == rev, "deleting a missing key is not a write"
    kv.put(p + "bin", bytes(range(256)))
    assert kv.get(p + "bin") == bytes(range(256))
    kv.put(p + "empty", b"")
    assert kv.get(p + "empty") == b""


def check_scan_and_delete_prefix(kv: KV) -> None:
    p = _root()
    revs = {key: kv.put(p + key, key.encode()) for key in ["b", "a/2", "a/1", "ab", "a/10"]}
    kv.put(p[:-1] + "x", b"outside")  # shares the prefix text but not the trailing slash
    scanned = kv.scan(p + "a")
    assert [kv_.key for kv_ in scanned] == [p + "a/1", p + "a/10", p + "a/2", p + "ab"]
    assert all(item.mod_revision == revs[item.key[len(p) :]] for item in scanned)
    assert [item.value for item in kv.scan(p + "a/")] == [b"a/1", b"a/10", b"a/2"]
    assert kv.scan(p + "zzz") == []
    assert kv.delete_prefix(p + "a/") == 3
    assert [item.key for item in kv.scan(p)] == [p + "ab", p + "b"]
    assert kv.delete_prefix(p + "nothing") == 0
    assert kv.delete_prefix(p) == 2
    assert kv.get(p[:-1] + "x") == b"outside"
    kv.delete(p[:-1] + "x")


def check_multi_save(kv: KV) -> None:
    p = _root()
    kv.put(p + "old1", b"x")
    kv.put(p + "old2", b"y")
    rev = kv.multi_save({p + "n1": b"1", p + "n2": b"2"}, [p + "old1", p + "old2", p + "absent"])
    assert rev == kv.revision()
    items = kv.scan(p)
    assert [i.key for i in items] == [p + "n1", p + "n2"]
    assert all(i.mod_revision == rev for i in items), "one transaction, one revision"
    with pytest.raises(ValueError):
        kv.multi_save({p + "n1": b"again"}, [p + "n1"])
    assert kv.get(p + "n1") == b"1", "a rejected transaction changes nothing"
    assert kv.multi_save({}, []) == kv.revision()
    kv.delete_prefix(p)


def check_multi_save_op_limit(kv: KV) -> None:
    """etcd's default limit of 128 operations per transaction holds on every backend."""
    p = _root()
    rev = kv.multi_save({p + f"k{i:03d}": b"v" for i in range(100)}, [p + f"d{i}" for i in range(28)])
    assert len(kv.scan(p)) == 100 and kv.revision() == rev
    with pytest.raises(ValueError):
        kv.multi_save({p + f"x{i:03d}": b"v" for i in range(129)})
    assert kv.scan(p + "x") == [], "a rejected transaction writes nothing"
    kv.delete_prefix(p)


def check_multi_save_is_atomic_to_readers(kv: KV) -> None:
    p = _root()
    kv.multi_save({p + "a": b"0", p + "b": b"0"})
    stop = threading.Event()
    torn: list[tuple[bytes, bytes]] = []

    def reader() -> None:
        while not stop.is_set():
            values = [item.value for item in kv.scan(p)]
            if len(values) != 2 or values[0] != values[1]:
                torn.append((values[0], values[-1]) if values else (b"", b""))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 150):
            kv.multi_save({p + "a": str(i).encode(), p + "b": str(i).encode()})
    finally:
        stop.set()
        thread.join()
    assert torn == []
    kv.delete_prefix(p)


def check_compare_and_swap(kv: KV) -> None:
    p = _root()
    key = p + "cas"
    assert kv.compare_and_swap(key, None, b"1") is True
    assert kv.compare_and_swap(key, None, b"x") is False, "expected absent, but it exists"
    assert kv.compare_and_swap(key, b"wrong", b"x") is False
    assert kv.get(key) == b"1"
    assert kv.compare_and_swap(key, b"1", b"2") is True
    assert kv.get(key) == b"2"

    counter = p + "counter"
    kv.put(counter, b"0")

    def increment(times: int) -> None:
        done = 0
        while done < times:
            current = kv.get(counter)
            assert current is not None
            if kv.compare_and_swap(counter, current, str(int(current) + 1).encode()):
                done += 1

    threads = [threading.Thread(target=increment, args=(25,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert kv.get(counter) == b"100", "concurrent CAS increments must not be lost"
    kv.delete_prefix(p)


def check_lease_revoke(kv: KV) -> None:
    p = _root()
    lease = kv.grant_lease(30)
    kv.put(p + "s1", b"a", lease=lease)
    assert kv.compare_and_swap(p + "s2", None, b"b", lease=lease)
    kv.put(p + "s3", b"c", lease=lease)
    kv.put(p + "s3", b"detached")  # a put without the lease detaches the key from it
    kv.keepalive(lease)
    kv.revoke(lease)
    assert kv.get(p + "s1") is None
    assert kv.get(p + "s2") is None
    assert kv.get(p + "s3") == b"detached"
    kv.revoke(lease)  # revoking twice is not an error
    with pytest.raises(LeaseNotFound):
        kv.keepalive(lease)
    with pytest.raises(LeaseNotFound):
        kv.put(p + "s4", b"x", lease=lease)
    assert kv.get(p + "s4") is None
    kv.delete_prefix(p)


def check_lease_expiry_deletes_keys(kv: KV) -> None:
    p = _root()
    lease = kv.grant_lease(1)
    kv.put(p + "session", b"alive", lease=lease)
    kept = kv.grant_lease(1)
    kv.put(p + "kept", b"alive", lease=kept)
    start = time.monotonic()
    while time.monotonic() - start < 2.5:  # keep one lease alive well past its TTL
        kv.keepalive(kept)
        time.sleep(0.2)
    assert wait_until(lambda: kv.get(p + "session") is None, timeout=10), "expired lease keeps its key"
    assert kv.get(p + "kept") == b"alive", "a lease kept alive must not expire"
    with pytest.raises(LeaseNotFound):
        kv.keepalive(lease)
    kv.revoke(kept)
    assert kv.get(p + "kept") is None


def check_watch_order_and_types(kv: KV) -> None:
    p = _root()
    seen = _Collector()
    handle = kv.watch_prefix(p, seen)
    try:
        kv.put(p[:-1] + "-outside", b"not mine")
        r1 = kv.put(p + "a", b"1")
        r2 = kv.put(p + "b", b"2")
        r3 = kv.multi_save({p + "c": b"3"}, [p + "a"])
        r4 = kv.delete(p + "b") and kv.revision()
        events = seen.wait_for(5)
        assert [(e.type, e.key, e.value, e.revision) for e in events] == [
            ("put", p + "a", b"1", r1),
            ("put", p + "b", b"2", r2),
            ("put", p + "c", b"3", r3),
            ("delete", p + "a", b"", r3),
            ("delete", p + "b", b"", r4),
        ]
    finally:
        handle.cancel()
    kv.put(p + "after-cancel", b"x")
    time.sleep(0.3)
    assert len(seen.events) == 5, "a cancelled watch delivers nothing more"
    kv.delete(p[:-1] + "-outside")
    kv.delete_prefix(p)


def check_watch_from_revision(kv: KV) -> None:
    p = _root()
    first = kv.put(p + "k1", b"1")
    kv.put(p + "k2", b"2")
    kv.delete(p + "k1")
    seen = _Collector()
    handle = kv.watch_prefix(p, seen, start_revision=first + 1)
    try:
        kv.put(p + "k3", b"3")
        events = seen.wait_for(3)
        assert [(e.type, e.key) for e in events] == [
            ("put", p + "k2"),
            ("delete", p + "k1"),
            ("put", p + "k3"),
        ]
        revisions = [e.revision for e in events]
        assert revisions == sorted(revisions) and revisions[0] == first + 1
    finally:
        handle.cancel()
    kv.delete_prefix(p)


def check_watch_many_in_order(kv: KV) -> None:
    p = _root()
    seen = _Collector()
    handle = kv.watch_prefix(p, seen)
    try:
        revisions = [kv.put(p + f"k{i % 7}", str(i).encode()) for i in range(300)]
        events = seen.wait_for(300, timeout=30)
        assert [e.revision for e in events] == revisions
        assert [e.value for e in events] == [str(i).encode() for i in range(300)]
    finally:
        handle.cancel()
    kv.delete_prefix(p)


def check_watch_callback_may_use_kv(kv: KV) -> None:
    p = _root()
    done = threading.Event()

    def echo(event: WatchEvent) -> None:
        if event.key == p + "ping":
            kv.put(p + "pong", event.value)
            done.set()

    handle = kv.watch_prefix(p + "ping", echo)
    try:
        kv.put(p + "ping", b"hello")
        assert done.wait(10)
        assert wait_until(lambda: kv.get(p + "pong") == b"hello", timeout=5)
    finally:
        handle.cancel()
    kv.delete_prefix(p)


CHECKS: list[Callable[[KV], None]] = [
    check_get_put_delete,
    check_scan_and_delete_prefix,
    check_multi_save,
    check_multi_save_op_limit,
    check_multi_save_is_atomic_to_readers,
    check_compare_and_swap,
    check_lease_revoke,
    check_lease_expiry_deletes_keys,
    check_watch_order_and_types,
    check_watch_from_revision,
    check_watch_many_in_order,
    check_watch_callback_may_use_kv,
]


def check_durable_across_reopen(open_kv: Callable[[], KV]) -> None:
    """What a store wrote is there after it is closed and opened again; revisions go on."""
    p = _root()
    kv = open_kv()
    try:
        kv.multi_save({p + "a": b"1", p + "b": b"2"})
        kv.delete(p + "b")
        rev = kv.put(p + "c", b"3")
    finally:
        kv.close()
    kv = open_kv()
    try:
        assert {i.key: i.value for i in kv.scan(p)} == {p + "a": b"1", p + "c": b"3"}
        assert kv.revision() >= rev
        assert kv.put(p + "d", b"4") > rev
        kv.delete_prefix(p)
    finally:
        kv.close()
