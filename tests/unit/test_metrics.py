"""The shared Prometheus metrics: coordinator gauges, the per-role /metrics server and the Grafana dashboard."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

from prometheus_client import REGISTRY

from common import metrics
from quiver.devcluster.servers import free_ports

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "quiver-dashboard.json"
_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")


def _family(name: str) -> str:
    """The metric family a sample name belongs to (histograms and counters add suffixes)."""
    for family in metrics.METRIC_NAMES:
        if name == family or (name.startswith(family) and name[len(family):] in _SUFFIXES):
            return family
    return name


def test_metric_names_match_registered_families() -> None:
    registered = {m.name for m in REGISTRY.collect()}
    for name in metrics.METRIC_NAMES:
        base = name.removesuffix("_total")
        assert name in registered or base in registered, name


def test_observe_coord_counts_states_and_zeroes_vanished_ones() -> None:
    metrics.observe_coord(["Growing", "Growing", "Flushed"], ["InProgress", "Finished", "InProgress", "Failed"])
    assert REGISTRY.get_sample_value("quiver_segments", {"state": "Growing"}) == 2
    assert REGISTRY.get_sample_value("quiver_segments", {"state": "Flushed"}) == 1
    assert REGISTRY.get_sample_value("quiver_index_build_queue_length") == 2
    metrics.observe_coord(["Flushed"], [])
    assert REGISTRY.get_sample_value("quiver_segments", {"state": "Growing"}) == 0
    assert REGISTRY.get_sample_value("quiver_index_build_queue_length") == 0


def test_start_metrics_server_serves_metrics_and_zero_is_off() -> None:
    assert metrics.start_metrics_server(0) is None
    (port,) = free_ports(1)
    started = metrics.start_metrics_server(port, host="127.0.0.1")
    assert started is not None
    server, _thread = started
    try:
        metrics.ROWS_INSERTED.inc(3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
        assert "quiver_rows_inserted_total" in body
        assert "# TYPE quiver_proxy_request_seconds histogram" in body
    finally:
        server.shutdown()
        server.server_close()


def test_dashboard_is_valid_and_queries_only_known_metrics() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["title"] and dash["panels"]
    queried: set[str] = set()
    for panel in dash["panels"]:
        assert panel["title"] and panel["targets"], panel
        for target in panel["targets"]:
            queried |= {_family(n) for n in re.findall(r"\bquiver_[a-z0-9_]+", target["expr"])}
    assert queried, "the dashboard queries no Quiver metric"
    assert queried <= metrics.METRIC_NAMES, queried - metrics.METRIC_NAMES
    assert queried == metrics.METRIC_NAMES  # every metric has a panel
