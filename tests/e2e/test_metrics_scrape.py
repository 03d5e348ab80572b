"""Prometheus /metrics of running roles: querynode tsafe lag and segment memory, coordinator gauges.

Standalone serves every role's metrics on the proxy's HTTP port; in the local cluster each
querynode and the coordinator serve their own (``metrics_port``). After inserting, loading and
flushing a collection, its channels must report a tsafe lag (>= 0 and far from "never"), its
growing and then sealed segments their bytes, and the coordinator its segments by state.
"""

from __future__ import annotations

import random
import time
import urllib.request
from collections import defaultdict
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pymilvus import MilvusClient

pytestmark = pytest.mark.e2e

Samples = dict[str, list[tuple[dict[str, str], float]]]


def _scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name].append((dict(sample.labels), float(sample.value)))
    return out


def _ports(server: Any, role: str) -> list[int]:
    if not hasattr(server, "cluster"):
        return [server.http_port]  # standalone: one registry for every role
    return [r.metrics_port for r in server.cluster.roles if r.role == role and r.alive()]


def _merged(server: Any, role: str) -> Samples:
    merged: Samples = defaultdict(list)
    for port in _ports(server, role):
        for name, samples in _scrape(port).items():
            merged[name].extend(samples)
    return merged


def _poll(check: Any, timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_querynode_and_coordinator_metrics(server: Any) -> None:
    client = MilvusClient(uri=server.uri)
    name = "metrics_scrape"
    client.create_collection(name, dimension=8)
    collection = str(client.describe_collection(name)["collection_id"])
    client.insert(name, [{"id": i, "vector": [random.random() for _ in range(8)]} for i in range(500)])
    client.load_collection(name)
    assert client.query(name, filter="id >= 0", output_fields=["count(*)"], consistency_level="Strong")

    def growing() -> Samples | None:
        samples = _merged(server, "querynode")
        mine = [v for labels, v in samples["quiver_querynode_segment_memory_bytes"]
                if labels["collection"] == collection and labels["state"] == "growing"]
        lags = [v for labels, v in samples["quiver_querynode_tsafe_lag_seconds"] if labels["collection"] == collection]
        return samples if mine and lags else None

    samples = _poll(growing)
    assert samples, "no growing segment or tsafe lag of the collection was exported"
    lags = [v for labels, v in samples["quiver_querynode_tsafe_lag_seconds"] if labels["collection"] == collection]
    assert all(0 <= lag < 600 for lag in lags), lags  # a served channel: its tsafe follows the timeticks
    assert all(v > 500 * 8 * 4 * 0.5 for labels, v in samples["quiver_querynode_segment_memory_bytes"]
               if labels["collection"] == collection)  # at least the vectors' bytes (shared over segments)
    assert sum(v for labels, v in samples["quiver_querynode_segments"] if labels["state"] == "growing") >= 1

    client.flush(name)

    def sealed() -> Samples | None:
        samples = _merged(server, "querynode")
        mine = [v for labels, v in samples["quiver_querynode_segment_memory_bytes"]
                if labels["collection"] == collection and labels["state"] == "sealed"]
        return samples if mine and all(v > 0 for v in mine) else None

    samples = _poll(sealed)
    assert samples, "the flushed segment never showed up sealed on a query node"
    assert sum(v for labels, v in samples["quiver_querynode_segments"] if labels["state"] == "sealed") >= 1

    coord = _merged(server, "coord")
    flushed = [v for labels, v in coord["quiver_segments"] if labels["state"] == "Flushed"]
    assert flushed and flushed[0] >= 1, coord["quiver_segments"]
    queue = [v for _, v in coord["quiver_index_build_queue_length"]]
    assert queue and all(v >= 0 for v in queue)
    client.drop_collection(name)
    client.close()
