"""MemoryStorage: object storage for unit tests, a dict of keys to bytes."""

from __future__ import annotations

import bisect
import threading

from common.storage.base import ObjectNotFound, ObjectStorage


class MemoryStorage(ObjectStorage):
    """A thread-safe in-memory blob store with S3-like string-prefix listing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            self._objects[key] = bytes(data)

    def _fetch(self, key: str) -> bytes:
        with self._lock:
            data = self._objects.get(key)
        if data is None:
            raise ObjectNotFound(key)
        return data

    def get(self, key: str) -> bytes:
        return self._fetch(key)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError(f"bad range offset={offset} length={length}")
        return self._fetch(key)[offset : offset + length]

    def exists(self, key: str) -> bool:
        with self._lock:
            return key in self._objects

    def size(self, key: str) -> int:
        return len(self._fetch(key))

    def list(self, prefix: str) -> list[str]:
        with self._lock:
            keys = sorted(self._objects)
        start = bisect.bisect_left(keys, prefix)
        result = []
        for key in keys[start:]:
            if not key.startswith(prefix):
                break
            result.append(key)
        return result

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(key, None)
