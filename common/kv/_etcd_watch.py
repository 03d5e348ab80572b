"""One watch on etcd that survives broken streams, for EtcdKV.

pyetcd calls back on its own stream thread with a response, or with an error (or None)
when the stream ends. Everything is handed to a DeliveryThread, which calls the user's
callback in revision order and, when the stream broke, re-watches from the last delivered
revision + 1 (events at or below it are dropped, so none is delivered twice).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from pyetcd import events as etcd_events
from pyetcd import exceptions as etcd_errors
from pyetcd.watch import WatchResponse

from common.kv._watch import DeliveryThread
from common.kv.base import WatchEvent, WatchHandle

log = logging.getLogger(__name__)

# create(start_revision, on_response) -> (client, watch_id)
CreateWatch = Callable[[int, Callable[[object], None]], tuple[Any, int]]


class EtcdWatch(WatchHandle):
    def __init__(
        self,
        prefix: str,
        callback: Callable[[WatchEvent], None],
        start_revision: int,
        create: CreateWatch,
        unkey: Callable[[bytes], str],
        forget: Callable[[EtcdWatch], None],
    ) -> None:
        self._prefix = prefix
        self._callback = callback
        self._next_revision = start_revision
        self._create = create
        self._unkey = unkey
        self._forget = forget
        self._lock = threading.Lock()
        self._generation = 0
        self._current: tuple[Any, int] | None = None
        self._cancelled = threading.Event()
        self._delivery: DeliveryThread[tuple[int, object]] = DeliveryThread(f"etcd-watch:{prefix}", self._handle)

    def start(self) -> None:
        """Create the watch now (raising if etcd stays unreachable), then deliver in background."""
        self._delivery.start()
        try:
            self._watch_from_next()
        except BaseException:
            self.cancel()
            raise

    def _watch_from_next(self) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation

        def on_response(response: object) -> None:
            self._delivery.submit((generation, response))

        current = self._create(self._next_revision, on_response)
        with self._lock:
            self._current = current
        if self._cancelled.is_set():
            self._cancel_current()

    def _handle(self, item: tuple[int, object]) -> None:
        generation, response = item
        if generation != self._generation or self._cancelled.is_set():
            return  # left over from a stream we already replaced
        if isinstance(response, WatchResponse):
            self._deliver(response)
            return
        if isinstance(response, etcd_errors.RevisionCompactedError):
            log.error(
                "watch on %r: etcd compacted revisions before %d; events before it are lost",
                self._prefix,
                response.compacted_revision,
            )
            self._next_revision = max(self._next_revision, response.compacted_revision)
        else:
            log.info("watch on %r broke (%r); re-watching", self._prefix, response)
        self._rewatch()

    def _deliver(self, response: WatchResponse) -> None:
        last = None
        for event in response.events:
            revision = int(event.mod_revision)
            if revision < self._next_revision:
                continue  # already delivered before a re-watch
            put = isinstance(event, etcd_events.PutEvent)
            converted = WatchEvent(
                "put" if put else "delete",
                self._unkey(bytes(event.key)),
                bytes(event.value) if put else b"",
                revision,
            )
            try:
                self._callback(converted)
            except Exception:
                log.exception("watch callback on prefix %r failed", self._prefix)
            last = revision
        if last is not None:
            self._next_revision = last + 1

    def _rewatch(self) -> None:
        delay = 0.05
        while not self._cancelled.is_set():
            try:
                self._watch_from_next()
                return
            except etcd_errors.RevisionCompactedError as exc:
                log.error(
                    "watch on %r: etcd compacted revisions before %d; events before it are lost",
                    self._prefix,
                    exc.compacted_revision,
                )
                self._next_revision = max(self._next_revision, exc.compacted_revision)
            except Exception as exc:
                log.warning("watch on %r: re-watch failed (%s); retrying", self._prefix, exc)
                self._cancelled.wait(delay)
                delay = min(delay * 2, 2.0)

    def _cancel_current(self) -> None:
        with self._lock:
            current, self._current = self._current, None
        if current is not None:
            client, watch_id = current
            try:
                client.cancel_watch(watch_id)
            except Exception:  # the stream is gone already: nothing to cancel
                log.debug("cancel of watch %d failed", watch_id, exc_info=True)

    def cancel(self) -> None:
        if self._cancelled.is_set():
            return
        self._cancelled.set()
        self._delivery.stop()
        self._cancel_current()
        self._forget(self)
