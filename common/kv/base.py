"""The narrow interface every role uses for metadata: the part of etcd's API Milvus relies on.

Keys and values are plain strings/bytes; ordering, prefixes, compare-and-swap, leases (for
sessions) and watches (for discovery) are all a coordinator needs. Backends:
``memory`` (unit tests), ``local`` (standalone; durable in the data directory) and ``etcd``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass


class LeaseNotFound(Exception):
    """The lease expired or was revoked; whatever was attached to it is gone."""


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int


@dataclass(frozen=True)
class WatchEvent:
    """A change seen by a watch: ``type`` is "put" or "delete" (value is b"" on delete)."""

    type: str
    key: str
    value: bytes
    revision: int


class WatchHandle(abc.ABC):
    @abc.abstractmethod
    def cancel(self) -> None: ...


class KV(abc.ABC):
    """Metadata store. All methods are thread-safe and block until the store answered."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes | None: ...

    @abc.abstractmethod
    def put(self, key: str, value: bytes, lease: int | None = None) -> int:
        """Store ``value``; returns the new revision. With ``lease`` the key dies with it."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it existed."""

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Remove every key under ``prefix``; returns how many."""

    @abc.abstractmethod
    def scan(self, prefix: str) -> list[KeyValue]:
        """Every key under ``prefix``, sorted by key."""

    @abc.abstractmethod
    def multi_save(self, puts: dict[str, bytes], deletes: list[str] | None = None) -> int:
        """Apply all puts and deletes atomically; returns the new revision."""

    @abc.abstractmethod
    def compare_and_swap(
        self, key: str, expected: bytes | None, value: bytes, lease: int | None = None
    ) -> bool:
        """Put ``value`` only if the current value equals ``expected`` (None: key absent)."""

    @abc.abstractmethod
    def revision(self) -> int:
        """The store's current revision."""

    @abc.abstractmethod
    def grant_lease(self, ttl_seconds: float) -> int:
        """A new lease id that expires ``ttl_seconds`` after its last keepalive."""

    @abc.abstractmethod
    def keepalive(self, lease: int) -> None:
        """Refresh ``lease``; raises :class:`LeaseNotFound` if it already expired."""

    @abc.abstractmethod
    def revoke(self, lease: int) -> None:
        """End ``lease`` now, deleting its keys (no error if it is already gone)."""

    @abc.abstractmethod
    def watch_prefix(
        self,
        prefix: str,
        callback: Callable[[WatchEvent], None],
        start_revision: int | None = None,
    ) -> WatchHandle:
        """Call ``callback`` for each change under ``prefix`` from ``start_revision`` (or now).

        Callbacks run on a background thread, in revision order. A backend whose watch breaks
        re-watches from the last delivered revision + 1, so no event is lost or repeated.
        """

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections and threads."""
