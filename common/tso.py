"""Hybrid timestamps, as Milvus's TSO issues them: 46 bits of physical ms, 18 logical bits.

Every write and every read carries one. Comparing two hybrid timestamps orders events across
the whole cluster, and the physical part converts them to wall-clock time (for Bounded
consistency, TTL and the guarantee timestamps pymilvus sends).
"""

from __future__ import annotations

import time

LOGICAL_BITS = 18
LOGICAL_MASK = (1 << LOGICAL_BITS) - 1
MAX_TIMESTAMP = (1 << 64) - 1


def compose(physical_ms: int, logical: int = 0) -> int:
    """Build a hybrid timestamp from a millisecond wall clock and a logical counter."""
    if not 0 <= logical <= LOGICAL_MASK:
        raise ValueError(f"logical part {logical} out of range")
    return (physical_ms << LOGICAL_BITS) | logical


def physical_ms(ts: int) -> int:
    """The millisecond wall-clock part of a hybrid timestamp."""
    return ts >> LOGICAL_BITS


def logical(ts: int) -> int:
    return ts & LOGICAL_MASK


def now_ms() -> int:
    return int(time.time() * 1000)


def from_seconds_ago(ts: int, seconds: float) -> int:
    """The hybrid timestamp ``seconds`` before ``ts`` (Bounded consistency's staleness)."""
    return compose(max(0, physical_ms(ts) - int(seconds * 1000)))
