"""Sealed-segment placement inside a replica, and the balancer that evens its nodes out.

Pure rules (no RPC, no catalog) the query coordinator applies each pass, as Milvus's querycoord
segment checker and score-based balancer do:

* a segment keeps its target node while that node is in the replica; otherwise it goes to a node
  of the replica that already holds it, else to the node with the lowest *score* that has room
  for it in its memory budget (a collection larger than one node spreads over the replica);
* a node's score is the rows it serves: sealed rows placed on it plus the growing rows of the
  shards it leads, weighted (growing rows are searched by brute force and grow in memory);
* a segment prefers the node that leads its shard (its score counts that many rows less there):
  the leader searches it without another hop, like Milvus's channel-level balancer keeps a
  shard's segments next to its delegator; the balancer moves such segments first;
* each balancer step moves one segment, from the replica's busiest node to its idlest, only when
  that shrinks their difference by a real margin (no ping-pong) and the segment fits; the
  coordinator starts a few steps per pass and the next batch only once these completed. The
  coordinator loads it on the new node, switches the shard leader's distribution, and releases
  the old copy after that, so reads never miss it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pymilvus.grpc_gen.schema_pb2 import DataType

from common.schema import Schema

GROWING_ROW_WEIGHT = 2.0  # a growing row costs more than a sealed one (no index, still in the write path)
MIN_GAIN = 0.2  # a move must shrink the busiest-idlest gap by at least this fraction of it
MIN_GAP_ROWS = 1000  # below this gap between two nodes the replica counts as balanced
_FIXED = {
    DataType.Bool: 1, DataType.Int8: 1, DataType.Int16: 2, DataType.Int32: 4, DataType.Int64: 8,
    DataType.Float: 4, DataType.Double: 8, DataType.Timestamptz: 8,
}
_VARIABLE_GUESS = 64  # bytes per row of a VarChar / JSON / Array value, without statistics


def row_bytes(schema: Schema) -> int:
    """Bytes per row in memory: every field, plus the timestamp and delete-timestamp columns."""
    total = 16
    for f in schema.fields:
        if f.is_vector:
            dim = int(f.dim or 0)
            if f.dtype == DataType.BinaryVector:
                total += dim // 8
            elif f.dtype in (DataType.Float16Vector, DataType.BFloat16Vector):
                total += 2 * dim
            elif f.dtype == DataType.SparseFloatVector:
                total += _VARIABLE_GUESS * 2
            else:
                total += 4 * dim
        else:
            total += _FIXED.get(f.dtype, _VARIABLE_GUESS)
        if f.nullable:
            total += 1
    return total


def estimate_bytes(schema: Schema, rows: int, builds: Iterable[dict[str, Any]]) -> int:
    """Memory a sealed segment takes once loaded: its columns plus its vector index files."""
    return rows * row_bytes(schema) + sum(int(b.get("size") or 0) for b in builds if b.get("files"))


@dataclass
class NodeState:
    endpoint: str
    budget: int
    used: int = 0  # bytes held now plus bytes of segments placed here and not loaded yet
    score: float = 0.0

    def room(self) -> int:
        return self.budget - self.used


@dataclass
class SegLoad:
    sid: int
    rows: int
    nbytes: int
    held_by: set[str] = field(default_factory=set)  # nodes that report holding it (any version)
    leader: str | None = None  # the node leading its shard in this replica


class Placer:
    """Segment targets of every replica in one pass, sharing the nodes' memory and scores."""

    def __init__(self, nodes: dict[str, NodeState]) -> None:
        self.nodes = nodes

    def commit(self, endpoint: str, seg: SegLoad) -> None:
        node = self.nodes[endpoint]
        node.score += seg.rows
        if endpoint not in seg.held_by:
            node.used += seg.nbytes

    def keep(self, replica_nodes: list[str], segs: list[SegLoad], targets: dict[int, str]) -> list[SegLoad]:
        """Keep every still valid target (committing it); returns the segments left to place."""
        usable = [e for e in replica_nodes if e in self.nodes]
        left: list[SegLoad] = []
        for seg in segs:
            target = targets.get(seg.sid)
            if target not in usable:
                holders = sorted(e for e in seg.held_by if e in usable)
                target = holders[0] if holders else None
            if target is None:
                targets.pop(seg.sid, None)
                left.append(seg)
                continue
            targets[seg.sid] = target
            self.commit(target, seg)
        return left

    def place(
        self, replica_nodes: list[str], segs: list[SegLoad], targets: dict[int, str], avoid: set[tuple[str, int]]
    ) -> list[SegLoad]:
        """Place segments (largest first) on the lowest-score node with room; returns those that fit nowhere."""
        usable = [e for e in sorted(replica_nodes) if e in self.nodes]
        unplaced: list[SegLoad] = []
        for seg in sorted(segs, key=lambda s: (-s.nbytes, s.sid)):
            fits = [e for e in usable if self.nodes[e].room() >= seg.nbytes and (e, seg.sid) not in avoid]
            if not fits:
                unplaced.append(seg)
                continue
            best = min(fits, key=lambda e: (self.nodes[e].score - (seg.rows if e == seg.leader else 0),
                                            e != seg.leader, -self.nodes[e].room(), e))
            targets[seg.sid] = best
            self.commit(best, seg)
        return unplaced

    def balance_move(
        self, replica_nodes: list[str], segs: list[SegLoad], targets: dict[int, str]
    ) -> tuple[int, str, str] | None:
        """One segment move (id, from, to) that evens the replica's nodes out, or None."""
        usable = sorted(e for e in replica_nodes if e in self.nodes)
        if len(usable) < 2:
            return None
        busiest = max(usable, key=lambda e: (self.nodes[e].score, e))
        idlest = min(usable, key=lambda e: (self.nodes[e].score, e))
        gap = self.nodes[busiest].score - self.nodes[idlest].score
        if gap < MIN_GAP_ROWS:
            return None
        best: tuple[tuple[bool, float], SegLoad] | None = None
        for seg in segs:
            if targets.get(seg.sid) != busiest or seg.rows <= 0 or self.nodes[idlest].room() < seg.nbytes:
                continue
            after = abs(gap - 2 * seg.rows)
            rank = (seg.leader != idlest, after)  # to its own shard leader first, then the best evening
            if after <= gap * (1 - MIN_GAIN) and (best is None or rank < best[0]):
                best = (rank, seg)
        if best is None:
            return None
        seg = best[1]
        targets[seg.sid] = idlest
        self.nodes[busiest].score -= seg.rows
        self.nodes[idlest].score += seg.rows
        if idlest not in seg.held_by:
            self.nodes[idlest].used += seg.nbytes
        return seg.sid, busiest, idlest


def fits_in(sizes: list[int], rooms: list[int]) -> bool:
    """Whether segments of ``sizes`` fit into nodes with ``rooms`` bytes free (first fit, largest first)."""
    free = sorted(rooms, reverse=True)
    for size in sorted(sizes, reverse=True):
        for i, room in enumerate(free):
            if room >= size:
                free[i] -= size
                break
        else:
            return False
    return True
