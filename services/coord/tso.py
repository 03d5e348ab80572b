"""The timestamp oracle and the ID allocator, both persisted ahead in the KV store.

Like Milvus, the TSO saves a physical time a few seconds ahead of what it hands out, so a
restarted coordinator (or a standby taking over) starts past every timestamp already issued.
IDs (collections, segments, rows, builds) come from one counter saved in blocks.
"""

from __future__ import annotations

import threading

from common import tso
from common.kv.base import KV

_SAVE_AHEAD_MS = 3000
_ID_BLOCK = 100_000


class TimestampOracle:
    def __init__(self, kv: KV, key: str) -> None:
        self._kv = kv
        self._key = key
        self._lock = threading.Lock()
        saved = kv.get(key)
        self._physical = max(tso.now_ms(), int(saved) + 1 if saved else 0)
        self._logical = 0
        self._saved_until = 0
        self._save(self._physical + _SAVE_AHEAD_MS)

    def _save(self, until_ms: int) -> None:
        self._kv.put(self._key, str(until_ms).encode())
        self._saved_until = until_ms

    def alloc(self, count: int = 1) -> int:
        """Return the last of ``count`` consecutive hybrid timestamps, all never issued before."""
        with self._lock:
            now = tso.now_ms()
            if now > self._physical:
                self._physical, self._logical = now, 0
            if self._logical + count > tso.LOGICAL_MASK:
                self._physical += 1
                self._logical = 0
            self._logical += count
            if self._physical >= self._saved_until:
                self._save(self._physical + _SAVE_AHEAD_MS)
            return tso.compose(self._physical, self._logical)


class IdAllocator:
    def __init__(self, kv: KV, key: str) -> None:
        self._kv = kv
        self._key = key
        self._lock = threading.Lock()
        saved = kv.get(key)
        # Fresh stores start at a timestamp-derived id, so ids look like Milvus's (and never collide
        # with ids handed out by an older store that was wiped).
        self._next = int(saved) if saved else tso.compose(tso.now_ms())
        self._end = self._next

    def alloc(self, count: int = 1) -> int:
        """The first of ``count`` fresh consecutive ids."""
        with self._lock:
            if self._next + count > self._end:
                self._end = self._next + max(count, _ID_BLOCK)
                self._kv.put(self._key, str(self._end).encode())
            start = self._next
            self._next += count
            return start
