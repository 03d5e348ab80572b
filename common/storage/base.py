"""The narrow interface for binlogs and index files: whole-object put/get, ranges, prefixes.

Keys are "/"-separated paths under the configured root (``insert_log/{coll}/...``); the
backend maps them to S3 keys in a bucket, files in a directory, or dict entries.
"""

from __future__ import annotations

import abc


class ObjectNotFound(KeyError):
    """No object at that key."""


class ObjectStorage(abc.ABC):
    """Thread-safe blob store."""

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """The whole object; raises :class:`ObjectNotFound`."""

    @abc.abstractmethod
    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` (fewer at the end); raises :class:`ObjectNotFound`."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes; raises :class:`ObjectNotFound`."""

    @abc.abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, recursively, sorted."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove one object (no error if absent)."""

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix``; returns how many."""
        keys = self.list(prefix)
        for key in keys:
            self.delete(key)
        return len(keys)

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections."""
