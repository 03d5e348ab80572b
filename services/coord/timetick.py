"""Timeticks: the promise, on each DML channel, that no message with a smaller timestamp follows.

Each proxy reports the smallest timestamp it may still write (the oldest in-flight DML task,
or a fresh timestamp when idle). The coordinator ticks every channel in use with the minimum
over live proxies, so a consumer that has seen tick T has every message with ts <= T.
"""

from __future__ import annotations

import logging
import threading
import time

from common import msgs
from common.msgstream.base import MsgStream
from common.rpc import rpc
from services.coord.context import CoordContext

log = logging.getLogger(__name__)


class TimeTicker:
    def __init__(self, ctx: CoordContext, stream: MsgStream) -> None:
        self.ctx = ctx
        self.stream = stream
        self._reports: dict[int, int] = {}  # proxy node id -> ts
        self._live: set[int] = set()
        self._live_checked = 0.0
        self._last_tick = 0
        self._lock = threading.Lock()

    @rpc
    def report_timetick(self, proxy_id: int, ts: int) -> int:
        """A proxy's smallest possible next write; returns the tick now published (or 0)."""
        with self._lock:
            if ts > self._reports.get(proxy_id, 0):
                self._reports[proxy_id] = ts
            return self._tick_locked()

    def _tick_locked(self) -> int:
        now = time.monotonic()
        if now - self._live_checked > 1.0 or not self._live:
            self._live = {n.node_id for n in self.ctx.nodes("proxy")}
            self._live_checked = now
            self._reports = {p: t for p, t in self._reports.items() if p in self._live}
        if not self._live or any(p not in self._reports for p in self._live):
            return 0
        tick = min(self._reports[p] for p in self._live)
        if tick <= self._last_tick:
            return 0
        with self.ctx.catalog.lock:
            pchannels = sorted({p for c in self.ctx.catalog.collections.values() for p in c.pchannels})
        payload = msgs.encode(msgs.TimeTickMsg(timestamp=tick))
        for p in pchannels:
            self.stream.produce(p, payload)
        self._last_tick = tick
        return tick
