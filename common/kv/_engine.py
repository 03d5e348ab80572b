"""The KV logic shared by the in-process backends: MemoryKV and LocalKV.

Both keep the whole key space in memory (a dict plus a sorted key list for prefix scans),
give every write transaction the next revision, attach keys to process-local leases that a
background thread expires, and publish changes to watches. LocalKV only adds a
:class:`Persister` that makes each transaction durable before it becomes visible.
"""

from __future__ import annotations

import bisect
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from common.kv._watch import DEFAULT_HISTORY_LIMIT, WatchHub
from common.kv.base import KV, KeyValue, LeaseNotFound, WatchEvent, WatchHandle

# One put in a transaction: key, value, lease id (None: no lease).
Put = tuple[str, bytes, "int | None"]

# etcd's default --max-txn-ops: the in-process stores refuse what etcd would refuse.
DEFAULT_MAX_TXN_OPS = 128


class Persister(Protocol):
    """Durable storage under an EngineKV: commit() returns only once the txn is on disk."""

    def commit(self, revision: int, puts: list[Put], deletes: list[str]) -> None: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class _Entry:
    value: bytes
    mod_revision: int
    lease: int | None


@dataclass(slots=True)
class _Lease:
    ttl: float
    deadline: float
    keys: set[str] = field(default_factory=set)


class EngineKV(KV):
    """A complete in-memory KV with an optional persister; see the module docstring."""

    def __init__(
        self,
        entries: Iterable[tuple[str, bytes, int, int | None]] = (),
        revision: int = 0,
        persister: Persister | None = None,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
        max_txn_ops: int = DEFAULT_MAX_TXN_OPS,
    ) -> None:
        self._max_txn_ops = max_txn_ops
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._data: dict[str, _Entry] = {}
        for key, value, mod_revision, lease in entries:
            self._data[key] = _Entry(value, mod_revision, lease)
        self._keys = sorted(self._data)
        self._revision = revision
        self._persister = persister
        self._leases: dict[int, _Lease] = {}
        self._hub = WatchHub(revision, history_limit)
        self._expirer: threading.Thread | None = None
        self._closed = False
        # Leases belong to the process that granted them; keys left attached to one by an
        # earlier process (LocalKV reopened after a crash) die with that process.
        orphans = [key for key, entry in self._data.items() if entry.lease is not None]
        if orphans:
            self._commit([], orphans)

    # ---------------------------------------------------------------- reads

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._data.get(key)
            return None if entry is None else entry.value

    def scan(self, prefix: str) -> list[KeyValue]:
        with self._lock:
            return [
                KeyValue(key, self._data[key].value, self._data[key].mod_revision) for key in self._keys_under(prefix)
            ]

    def revision(self) -> int:
        with self._lock:
            return self._revision

    def _keys_under(self, prefix: str) -> list[str]:
        start = bisect.bisect_left(self._keys, prefix)
        end = start
        while end < len(self._keys) and self._keys[end].startswith(prefix):
            end += 1
        return self._keys[start:end]

    # ---------------------------------------------------------------- writes

    def put(self, key: str, value: bytes, lease: int | None = None) -> int:
        with self._lock:
            self._require_lease(lease)
            return self._commit([(key, bytes(value), lease)], [])

    def delete(self, key: str) -> bool:
        with self._lock:
            if key not in self._data:
                return False
            self._commit([], [key])
            return True

    def delete_prefix(self, prefix: str) -> int:
        with self._lock:
            keys = self._keys_under(prefix)
            if keys:
                self._commit([], keys)
            return len(keys)

    def multi_save(self, puts: dict[str, bytes], deletes: list[str] | None = None) -> int:
        deletes = list(dict.fromkeys(deletes or []))
        both = set(puts) & set(deletes)
        if both:
            raise ValueError(f"keys both saved and deleted in one transaction: {sorted(both)}")
        if len(puts) + len(deletes) > self._max_txn_ops:
            raise ValueError(f"too many operations in txn request: {len(puts) + len(deletes)} > {self._max_txn_ops}")
        with self._lock:
            existing = [key for key in deletes if key in self._data]
            if not puts and not existing:
                return self._revision
            return self._commit([(k, bytes(v), None) for k, v in puts.items()], existing)

    def compare_and_swap(self, key: str, expected: bytes | None, value: bytes, lease: int | None = None) -> bool:
        with self._lock:
            current = self._data.get(key)
            if expected is None:  # noqa: SIM108 - two cases read better than one long ternary
                matches = current is None
            else:
                matches = current is not None and current.value == bytes(expected)
            if not matches:
                return False
            self._require_lease(lease)
            self._commit([(key, bytes(value), lease)], [])
            return True

    def _commit(self, puts: list[Put], deletes: list[str]) -> int:
        """Apply one transaction (caller holds the lock; every delete names a live key)."""
        if self._closed:
            raise RuntimeError("KV store is closed")
        revision = self._revision + 1
        if self._persister is not None:
            self._persister.commit(revision, puts, deletes)
        self._revision = revision
        events: list[WatchEvent] = []
        for key, value, lease in puts:
            old = self._data.get(key)
            if old is None:
                bisect.insort(self._keys, key)
            elif old.lease is not None and old.lease != lease:
                self._detach(old.lease, key)
            self._data[key] = _Entry(value, revision, lease)
            if lease is not None:
                self._leases[lease].keys.add(key)
            events.append(WatchEvent("put", key, value, revision))
        for key in deletes:
            gone = self._data.pop(key)
            del self._keys[bisect.bisect_left(self._keys, key)]
            if gone.lease is not None:
                self._detach(gone.lease, key)
            events.append(WatchEvent("delete", key, b"", revision))
        self._hub.publish(events)
        return revision

    def _detach(self, lease: int, key: str) -> None:
        record = self._leases.get(lease)
        if record is not None:
            record.keys.discard(key)

    # ---------------------------------------------------------------- leases

    def grant_lease(self, ttl_seconds: float) -> int:
        if ttl_seconds <= 0:
            raise ValueError(f"lease TTL must be positive, got {ttl_seconds}")
        with self._lock:
            lease = secrets.randbits(62) + 1
            while lease in self._leases:
                lease = secrets.randbits(62) + 1
            self._leases[lease] = _Lease(ttl_seconds, time.monotonic() + ttl_seconds)
            if self._expirer is None:
                self._expirer = threading.Thread(target=self._expire_loop, name="kv-lease-expiry", daemon=True)
                self._expirer.start()
            self._cond.notify_all()
            return lease

    def keepalive(self, lease: int) -> None:
        with self._lock:
            record = self._require_lease(lease)
            assert record is not None
            record.deadline = time.monotonic() + record.ttl

    def revoke(self, lease: int) -> None:
        with self._lock:
            self._end_lease(lease)

    def _require_lease(self, lease: int | None) -> _Lease | None:
        """The live lease record (None for no lease); raises LeaseNotFound if it is gone."""
        if lease is None:
            return None
        record = self._leases.get(lease)
        if record is not None and record.deadline <= time.monotonic():
            self._end_lease(lease)
            record = None
        if record is None:
            raise LeaseNotFound(f"lease {lease} not found (expired or revoked)")
        return record

    def _end_lease(self, lease: int) -> None:
        record = self._leases.pop(lease, None)
        if record is not None and record.keys and not self._closed:
            self._commit([], sorted(record.keys))

    def _expire_loop(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                expired = [lid for lid, rec in self._leases.items() if rec.deadline <= now]
                for lease in expired:
                    self._end_lease(lease)
                if self._leases:
                    next_deadline = min(rec.deadline for rec in self._leases.values())
                    self._cond.wait(max(0.0, next_deadline - time.monotonic()) + 0.001)
                else:
                    self._cond.wait()

    # ---------------------------------------------------------------- watches

    def watch_prefix(
        self,
        prefix: str,
        callback: Callable[[WatchEvent], None],
        start_revision: int | None = None,
    ) -> WatchHandle:
        with self._lock:
            return self._hub.watch(prefix, callback, start_revision, self._revision)

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        if self._expirer is not None and self._expirer is not threading.current_thread():
            self._expirer.join(timeout=5)
        self._hub.close()
        if self._persister is not None:
            self._persister.close()
