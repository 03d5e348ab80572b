"""What only the in-process KV backends promise: crash durability, process-local leases, locking."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from common.kv.base import LeaseNotFound, WatchEvent
from common.kv.local import LocalKV, StoreLocked
from common.kv.memory import MemoryKV

_CHILD = textwrap.dedent(
    """
    import sys
    from common.kv.local import LocalKV
    kv = LocalKV(sys.argv[1])
    lease = kv.grant_lease(3600)
    kv.put("session/me", b"alive", lease=lease)
    for i in range(200):
        kv.put(f"data/{i:04d}", str(i).encode())
    kv.multi_save({"txn/a": b"1", "txn/b": b"1"})
    print(kv.revision(), flush=True)
    sys.stdin.read()  # wait to be killed
    """
)


def test_put_survives_kill_9_and_leased_keys_die_with_the_process(tmp_path: Path) -> None:
    path = str(tmp_path / "kv.db")
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        revision = int(line)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert child.stdin is not None and child.stdout is not None
        child.stdin.close()
        child.stdout.close()
    assert revision == 202
    kv = LocalKV(path)
    try:
        assert len(kv.scan("data/")) == 200
        assert kv.get("data/0199") == b"199"
        assert kv.get("txn/a") == kv.get("txn/b") == b"1"
        assert kv.get("session/me") is None, "keys of a dead process's lease are deleted on open"
        assert kv.revision() == revision + 1, "the cleanup is one transaction"
    finally:
        kv.close()


def test_directory_path_and_exclusive_open(tmp_path: Path) -> None:
    kv = LocalKV(str(tmp_path))
    try:
        assert kv.path == str(tmp_path / "kv.sqlite")
        kv.put("k", b"v")
        with pytest.raises(StoreLocked):
            LocalKV(str(tmp_path / "kv.sqlite"))
    finally:
        kv.close()
    again = LocalKV(str(tmp_path / "kv.sqlite"))
    try:
        assert again.get("k") == b"v"
    finally:
        again.close()


def test_leased_keys_removed_on_reopen_with_watch_event(tmp_path: Path) -> None:
    path = str(tmp_path / "kv.db")
    kv = LocalKV(path)
    lease = kv.grant_lease(3600)
    kv.put("s/1", b"x", lease=lease)
    kv.put("keep", b"y")
    rev = kv.revision()
    kv.close()  # closing does not revoke: the lease is simply gone with the process
    kv = LocalKV(path)
    try:
        events: list[WatchEvent] = []
        done = threading.Event()

        def record(event: WatchEvent) -> None:
            events.append(event)
            done.set()

        handle = kv.watch_prefix("s/", record, start_revision=rev + 1)
        assert done.wait(5)
        handle.cancel()
        assert [(e.type, e.key, e.revision) for e in events] == [("delete", "s/1", rev + 1)]
        assert kv.get("keep") == b"y"
    finally:
        kv.close()


def test_short_lease_expires_promptly() -> None:
    kv = MemoryKV()
    try:
        lease = kv.grant_lease(0.2)
        kv.put("a", b"1", lease=lease)
        started = time.monotonic()
        while kv.get("a") is not None and time.monotonic() - started < 5:
            time.sleep(0.01)
        elapsed = time.monotonic() - started
        assert kv.get("a") is None
        assert 0.1 < elapsed < 2.0, f"lease of 0.2 s expired after {elapsed:.2f} s"
        with pytest.raises(LeaseNotFound):
            kv.keepalive(lease)
        with pytest.raises(ValueError):
            kv.grant_lease(0)
    finally:
        kv.close()


def test_history_limit_keeps_recent_events() -> None:
    kv = MemoryKV(history_limit=10)
    try:
        revisions = [kv.put(f"k{i}", b"v") for i in range(30)]
        events: list[WatchEvent] = []
        done = threading.Event()

        def record(event: WatchEvent) -> None:
            events.append(event)
            if len(events) == 5:
                done.set()

        handle = kv.watch_prefix("", record, start_revision=revisions[25])
        assert done.wait(5)
        handle.cancel()
        assert [e.revision for e in events] == revisions[25:]
    finally:
        kv.close()


def test_closed_store_rejects_writes(tmp_path: Path) -> None:
    kv = LocalKV(str(tmp_path / "kv.db"))
    kv.close()
    kv.close()  # idempotent
    with pytest.raises(RuntimeError):
        kv.put("a", b"1")
    assert os.path.exists(tmp_path / "kv.db")
