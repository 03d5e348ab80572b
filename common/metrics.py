"""The Prometheus metrics every Quiver role exports, in one place.

Defining them here (rather than in each role) keeps metric names unique and lets the Grafana
dashboard (deploy/grafana/quiver-dashboard.json) and its test check against one list. The proxy
serves them on its HTTP port at /metrics; other roles call :func:`start_metrics_server` with
their ``metrics_port`` config (0: off).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from common.tso import physical_ms

log = logging.getLogger(__name__)

REQUESTS = Counter("quiver_proxy_requests_total", "Milvus API requests by method and status code", ["method", "code"])
LATENCY = Histogram(
    "quiver_proxy_request_seconds",
    "Milvus API request latency by method",
    ["method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
ROWS_INSERTED = Counter("quiver_rows_inserted_total", "Rows accepted by Insert and Upsert")
SEGMENTS = Gauge("quiver_segments", "Segments known to the coordinator, by state", ["state"])
RATE_LIMITED = Counter(
    "quiver_proxy_rate_limited_total", "Requests refused by the proxy's quotas and rate limits", ["rate_type"]
)
INDEX_BUILD_QUEUE = Gauge("quiver_index_build_queue_length", "Segment index builds not finished or failed yet")

# Every metric family this module defines (the dashboard test checks its queries against these).
METRIC_NAMES = frozenset({
    "quiver_proxy_requests_total",
    "quiver_proxy_request_seconds",
    "quiver_rows_inserted_total",
    "quiver_segments",
    "quiver_index_build_queue_length",
    "quiver_proxy_rate_limited_total",
    "quiver_querynode_tsafe_lag_seconds",
    "quiver_querynode_segment_memory_bytes",
    "quiver_querynode_segments",
    "quiver_querynode_delete_buffer_bytes",
})

_PENDING_INDEX_STATES = {"InProgress"}  # services/coord/catalog SegmentIndexInfo.state


def observe_coord(segment_states: Iterable[str], index_task_states: Iterable[str]) -> None:
    """Refresh the coordinator gauges from its catalog (called from the coordinator's loop)."""
    counts = Tally(segment_states)
    for state in set(counts) | {labels[0] for labels in _known_segment_states()}:
        SEGMENTS.labels(state).set(counts.get(state, 0))
    INDEX_BUILD_QUEUE.set(sum(1 for s in index_task_states if s in _PENDING_INDEX_STATES))


def _known_segment_states() -> list[tuple[str, ...]]:
    """Label sets already exported, so a state whose last segment left drops to 0 instead of sticking."""
    return [tuple(sample.labels.values()) for metric in SEGMENTS.collect() for sample in metric.samples]


@dataclass
class QueryNodeSnapshot:
    """What a querynode holds right now: tsafe per channel and bytes per segment."""

    tsafe: dict[str, tuple[int, int]] = field(default_factory=dict)  # vchannel -> (collection id, tsafe ts)
    segments: list[tuple[int, int, str, int]] = field(default_factory=list)  # (collection, segment, state, bytes)
    # vchannel -> (collection id, bytes of the deletes its leader keeps for catch-ups)
    delete_buffer: dict[str, tuple[int, int]] = field(default_factory=dict)


class QueryNodeCollector(Collector):
    """Querynode gauges computed at scrape time from every live querynode of this process.

    ``quiver_querynode_tsafe_lag_seconds`` is now minus the physical time of the channel's tsafe
    (channels that have not seen a timetick yet are left out), so it grows while a channel stalls.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._sources: list[tuple[weakref.ref[Any], Callable[[Any], QueryNodeSnapshot]]] = []
        self._lock = threading.Lock()
        self._clock = clock

    def watch(self, node: object, snapshot: Callable[[Any], QueryNodeSnapshot]) -> None:
        with self._lock:
            self._sources = [(ref, fn) for ref, fn in self._sources if ref() is not None]
            self._sources.append((weakref.ref(node), snapshot))

    def snapshots(self) -> list[QueryNodeSnapshot]:
        with self._lock:
            sources = list(self._sources)
        out = []
        for ref, fn in sources:
            node = ref()
            if node is None:
                continue
            try:
                out.append(fn(node))
            except Exception:  # a scrape must not fail because one node is mid-change
                log.warning("querynode metrics snapshot failed", exc_info=True)
        return out

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "quiver_querynode_tsafe_lag_seconds",
            "Seconds the served time (tsafe) of a query node's channel is behind now",
            labels=["collection", "vchannel"],
        )
        memory = GaugeMetricFamily(
            "quiver_querynode_segment_memory_bytes",
            "Memory a query node holds for one segment",
            labels=["collection", "segment", "state"],
        )
        counts = GaugeMetricFamily(
            "quiver_querynode_segments", "Segments a query node serves, by state", labels=["state"]
        )
        buffered = GaugeMetricFamily(
            "quiver_querynode_delete_buffer_bytes",
            "Bytes of the deletes a shard leader keeps for sealed copies that catch up (never trimmed yet)",
            labels=["collection", "vchannel"],
        )
        now_ms = self._clock() * 1000
        states: Tally[str] = Tally({"growing": 0, "sealed": 0})
        for snap in self.snapshots():
            for vchannel, (collection, ts) in sorted(snap.tsafe.items()):
                if ts > 0:
                    lag.add_metric([str(collection), vchannel], max(0.0, (now_ms - physical_ms(ts)) / 1000))
            for collection, segment, state, nbytes in snap.segments:
                memory.add_metric([str(collection), str(segment), state], float(nbytes))
                states[state] += 1
            for vchannel, (collection, nbytes) in sorted(snap.delete_buffer.items()):
                buffered.add_metric([str(collection), vchannel], float(nbytes))
        for state, count in sorted(states.items()):
            counts.add_metric([state], count)
        yield lag
        yield memory
        yield counts
        yield buffered

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # computed per scrape; nothing to check at registration


QUERYNODES = QueryNodeCollector()
REGISTRY.register(QUERYNODES)


def watch_querynode(node: object, snapshot: Callable[[Any], QueryNodeSnapshot]) -> None:
    """Export ``snapshot(node)`` while ``node`` lives (held weakly: a stopped querynode drops out)."""
    QUERYNODES.watch(node, snapshot)


def start_metrics_server(port: int, host: str = "127.0.0.1") -> tuple[WSGIServer, threading.Thread] | None:
    """Serve /metrics for a role without an HTTP app of its own; port 0 leaves it off."""
    if port <= 0:
        return None
    return start_http_server(port, addr=host)
