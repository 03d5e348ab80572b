"""The querynode gauges computed at scrape time: tsafe lag from a clock, bytes per segment, weak registration."""

from __future__ import annotations

import gc

from common.metrics import QueryNodeCollector, QueryNodeSnapshot
from common.tso import compose
from services.querynode.metrics import collection_of


class Node:
    def __init__(self, snap: QueryNodeSnapshot) -> None:
        self.snap = snap


def _values(collector: QueryNodeCollector) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in collector.collect():
        out[family.name] = [(dict(s.labels), s.value) for s in family.samples]
    return out


def test_lag_memory_and_counts() -> None:
    now = 1_700_000_000.0
    collector = QueryNodeCollector(clock=lambda: now)
    snap = QueryNodeSnapshot(
        tsafe={"dml_0_7v0": (7, compose(int((now - 2.5) * 1000), 3)), "dml_1_7v1": (7, 0)},
        segments=[(7, 11, "growing", 4096), (7, 12, "sealed", 1 << 20)],
        delete_buffer={"dml_0_7v0": (7, 1600)},
    )
    node = Node(snap)
    collector.watch(node, lambda n: n.snap)
    values = _values(collector)
    lags = values["quiver_querynode_tsafe_lag_seconds"]
    assert lags == [({"collection": "7", "vchannel": "dml_0_7v0"}, 2.5)]  # a channel without tsafe is left out
    memory = {labels["segment"]: (labels["state"], v) for labels, v in values["quiver_querynode_segment_memory_bytes"]}
    assert memory == {"11": ("growing", 4096.0), "12": ("sealed", float(1 << 20))}
    counts = {labels["state"]: v for labels, v in values["quiver_querynode_segments"]}
    assert counts == {"growing": 1.0, "sealed": 1.0}
    buffered = values["quiver_querynode_delete_buffer_bytes"]
    assert buffered == [({"collection": "7", "vchannel": "dml_0_7v0"}, 1600.0)]
    del node
    gc.collect()
    values = _values(collector)
    assert values["quiver_querynode_tsafe_lag_seconds"] == []
    assert {labels["state"]: v for labels, v in values["quiver_querynode_segments"]} == {"growing": 0.0, "sealed": 0.0}


def test_a_failing_snapshot_does_not_break_the_scrape() -> None:
    collector = QueryNodeCollector()
    node = Node(QueryNodeSnapshot())

    def broken(_: object) -> QueryNodeSnapshot:
        raise RuntimeError("mid-restructure")

    collector.watch(node, broken)
    assert _values(collector)["quiver_querynode_segments"]


def test_collection_of_vchannel() -> None:
    assert collection_of("by-dev-rootcoord-dml_3_449123v1") == 449123
    assert collection_of("garbage") == 0
