"""The proxy's side of timeticks: track in-flight DML timestamps and report the safe minimum.

A DML task registers before it asks for its timestamp and unregisters after its messages are
produced. The report is the smallest registered timestamp, or a fresh one when nothing is in
flight, so the coordinator never ticks past a message that is still on its way.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from common.rpc import Caller

log = logging.getLogger(__name__)


class DmlTicker:
    def __init__(self, coord: Caller, node_id: int, interval: float) -> None:
        self.coord = coord
        self.node_id = node_id
        self.interval = interval
        self._pending: dict[int, int | None] = {}  # token -> ts (None while being allocated)
        self._tokens = itertools.count(1)
        self._lock = threading.Lock()
        self._report_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="proxy-timetick", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    @contextmanager
    def dml(self) -> Iterator[int]:
        """Yield a fresh timestamp for one DML task; the task produces inside the block."""
        token = next(self._tokens)
        with self._lock:
            self._pending[token] = None
        try:
            ts = int(self.coord.call("alloc_timestamp"))
            with self._lock:
                self._pending[token] = ts
            yield ts
        finally:
            with self._lock:
                self._pending.pop(token, None)

    def report(self) -> int:
        """Report now (also used before a Strong read, so it need not wait a full interval)."""
        with self._report_lock:
            fresh = int(self.coord.call("alloc_timestamp"))
            with self._lock:
                if any(ts is None for ts in self._pending.values()):
                    return 0
                floor = min((ts for ts in self._pending.values() if ts is not None), default=fresh + 1) - 1
            return int(self.coord.call("report_timetick", proxy_id=self.node_id, ts=min(fresh, floor)))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.report()
            except Exception as exc:
                log.debug("timetick report failed: %s", exc)
