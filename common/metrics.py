"""The Prometheus metrics every Quiver role exports, in one place.

Defining them here (rather than in each role) keeps metric names unique and lets the Grafana
dashboard (deploy/grafana/quiver-dashboard.json) and its test check against one list. The proxy
serves them on its HTTP port at /metrics; other roles call :func:`start_metrics_server` with
their ``metrics_port`` config (0: off).
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Iterable
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Gauge, Histogram, start_http_server

REQUESTS = Counter("quiver_proxy_requests_total", "Milvus API requests by method and status code", ["method", "code"])
LATENCY = Histogram(
    "quiver_proxy_request_seconds",
    "Milvus API request latency by method",
    ["method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
ROWS_INSERTED = Counter("quiver_rows_inserted_total", "Rows accepted by Insert and Upsert")
SEGMENTS = Gauge("quiver_segments", "Segments known to the coordinator, by state", ["state"])
INDEX_BUILD_QUEUE = Gauge("quiver_index_build_queue_length", "Segment index builds not finished or failed yet")

# Every metric family this module defines (the dashboard test checks its queries against these).
METRIC_NAMES = frozenset({
    "quiver_proxy_requests_total",
    "quiver_proxy_request_seconds",
    "quiver_rows_inserted_total",
    "quiver_segments",
    "quiver_index_build_queue_length",
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


def start_metrics_server(port: int, host: str = "127.0.0.1") -> tuple[WSGIServer, threading.Thread] | None:
    """Serve /metrics for a role without an HTTP app of its own; port 0 leaves it off."""
    if port <= 0:
        return None
    return start_http_server(port, addr=host)
