"""Watch delivery for the in-process KV backends (memory and local).

The store publishes the events of each write transaction here, in revision order, while it
holds its write lock. Each watch gets its own queue and delivery thread, so a slow callback
delays only its own watch, and a callback may call back into the store without deadlock.
A bounded history of recent events lets a watch start from an earlier revision.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from common.kv.base import WatchEvent, WatchHandle

log = logging.getLogger(__name__)

DEFAULT_HISTORY_LIMIT = 100_000

T = TypeVar("T")


class DeliveryThread(Generic[T]):
    """Hands queued items, in order, to ``handle`` on one daemon thread until stopped."""

    def __init__(self, name: str, handle: Callable[[T], None]) -> None:
        self._handle = handle
        self._queue: queue.SimpleQueue[tuple[T] | None] = queue.SimpleQueue()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: T) -> None:
        self._queue.put((item,))

    def _run(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None or self._stopped.is_set():
                return
            try:
                self._handle(entry[0])
            except Exception:  # a failing callback must not end the delivery
                log.exception("%s: callback failed", self._thread.name)

    def stop(self) -> None:
        """Deliver nothing more; waits for a callback in progress unless called from one."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._queue.put(None)
        if threading.current_thread() is not self._thread and self._thread.is_alive():
            self._thread.join(timeout=5)


class _Watch(WatchHandle):
    """One watch of a WatchHub: matching events go through a DeliveryThread to the callback."""

    def __init__(
        self,
        hub: WatchHub,
        prefix: str,
        callback: Callable[[WatchEvent], None],
        min_revision: int,
    ) -> None:
        self.prefix = prefix
        self.min_revision = min_revision
        self._hub = hub
        self._delivery: DeliveryThread[WatchEvent] = DeliveryThread(f"kv-watch:{prefix}", callback)

    def start(self) -> None:
        self._delivery.start()

    def offer(self, event: WatchEvent) -> None:
        if event.revision >= self.min_revision and event.key.startswith(self.prefix):
            self._delivery.submit(event)

    def cancel(self) -> None:
        self._hub.remove(self)
        self._delivery.stop()


class WatchHub:
    """Fans published events out to watches and keeps a bounded history for late starters."""

    def __init__(self, revision: int, history_limit: int = DEFAULT_HISTORY_LIMIT) -> None:
        self._lock = threading.Lock()
        self._history: deque[WatchEvent] = deque()
        self._history_limit = history_limit
        # Every event with a revision above the floor is in the history.
        self._floor = revision
        self._watches: list[_Watch] = []

    def publish(self, events: list[WatchEvent]) -> None:
        """Record and deliver the events of one transaction (callers serialise publishes)."""
        with self._lock:
            for event in events:
                self._history.append(event)
                for watch in self._watches:
                    watch.offer(event)
            while len(self._history) > self._history_limit:
                self._floor = self._history.popleft().revision

    def watch(
        self,
        prefix: str,
        callback: Callable[[WatchEvent], None],
        start_revision: int | None,
        current_revision: int,
    ) -> WatchHandle:
        """A watch from ``start_revision`` (None: after ``current_revision``)."""
        min_revision = current_revision + 1 if start_revision is None else start_revision
        watch = _Watch(self, prefix, callback, min_revision)
        with self._lock:
            if min_revision <= self._floor:
                log.warning(
                    "watch on %r from revision %d: history starts after revision %d; earlier events are not replayed",
                    prefix,
                    min_revision,
                    self._floor,
                )
            for event in self._history:
                watch.offer(event)
            self._watches.append(watch)
        watch.start()
        return watch

    def remove(self, watch: _Watch) -> None:
        with self._lock:
            if watch in self._watches:
                self._watches.remove(watch)

    def close(self) -> None:
        with self._lock:
            watches = list(self._watches)
        for watch in watches:
            watch.cancel()
