"""What a querynode exports to Prometheus: tsafe and delete-buffer bytes per channel, memory per segment.

Kept apart from the server so the RPC code carries one registration line; the gauges
themselves are defined and computed at scrape time in common/metrics.py.
"""

from __future__ import annotations

import re
from typing import Any

from common.metrics import QueryNodeSnapshot, watch_querynode

_VCHANNEL = re.compile(r"_(\d+)v\d+$")  # {pchannel}_{collectionID}v{shard}


def collection_of(vchannel: str) -> int:
    match = _VCHANNEL.search(vchannel)
    return int(match.group(1)) if match else 0


def snapshot(node: Any) -> QueryNodeSnapshot:
    """Channels (led here) with their tsafe and delete buffer; growing segments of those channels and
    sealed ones held here."""
    snap = QueryNodeSnapshot()
    with node._lock:
        channels = list(node.channels.items())
    for vchannel, ch in channels:
        snap.tsafe[vchannel] = (int(ch.collection_id), int(ch.tsafe))
        with ch._lock:
            growing = list(ch.growing.values())
            snap.delete_buffer[vchannel] = (int(ch.collection_id), ch.deletes.nbytes())
        for seg in growing:
            snap.segments.append((int(ch.collection_id), seg.segment_id, "growing", seg.memory_bytes()))
    for seg in node.store.all():
        snap.segments.append((collection_of(seg.vchannel), seg.segment_id, "sealed", seg.memory_bytes()))
    return snap


def watch(node: Any) -> None:
    """Export ``node``'s gauges while it lives."""
    watch_querynode(node, snapshot)
