"""Replica placement: which querynodes make up each replica of a loaded collection, and where
each replica's copy of every vchannel should live.

Milvus loads a collection as N replicas on disjoint querynode sets; every replica serves every
shard, so a proxy can send a read to any replica and fail over to another. This module holds the
pure placement rules (no RPC, no catalog), so they can be tested on their own and the query
coordinator only applies the result:

* a replica loses nodes that are gone or draining; free live nodes (in no replica of the
  collection) first refill empty replicas, then join the replica with the fewest nodes;
* a channel whose target node left its replica moves to the replica's least loaded node;
* balance: when a replica's busiest node leads two channels more than its idlest, one channel
  moves (the coordinator loads it on the new node before it switches and releases the old one).

Each replica belongs to one resource group (services/coord/resource_groups.py); the coordinator
calls :func:`place` per group with that group's nodes as the live ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from common.errors import Code, MilvusError

DEFAULT_RG = "__default_resource_group"
RG_NODE_NOT_ENOUGH = 304  # merr.ErrResourceGroupNodeNotEnough


@dataclass
class Replica:
    id: int
    nodes: list[str] = field(default_factory=list)  # querynode endpoints of this replica
    channels: dict[str, str] = field(default_factory=dict)  # vchannel -> target endpoint
    resource_group: str = DEFAULT_RG  # its nodes come from this resource group only

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "nodes": list(self.nodes), "channels": dict(self.channels),
                "resource_group": self.resource_group}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Replica:
        return cls(int(d["id"]), list(d.get("nodes", [])), dict(d.get("channels", {})),
                   str(d.get("resource_group") or DEFAULT_RG))


def check_enough(replica_number: int, nodes: int, rg: str = DEFAULT_RG) -> None:
    """Milvus's error when a load asks a resource group for more replicas than it has querynodes."""
    if replica_number > nodes:
        raise MilvusError(
            RG_NODE_NOT_ENOUGH,
            f"failed to spawn replica for collection: resource group node not enough"
            f"[rg={rg}][currentNodeNum={nodes}][expectedNodeNum={replica_number}]",
        )


def assign_replicas(resource_groups: list[str], replica_number: int) -> dict[str, int]:
    """Replicas per resource group, as Milvus's AssignReplica: none -> default, one -> all there,
    else one replica per group (then their count must equal the replica number)."""
    if len(resource_groups) not in (0, 1, replica_number):
        raise MilvusError(
            Code.PARAMETER_INVALID,
            f"replica=[{replica_number}] resource group=[{','.join(resource_groups)}], resource group num can "
            "only be 0, 1 or same as replica number",
        )
    if not resource_groups:
        return {DEFAULT_RG: replica_number}
    if len(resource_groups) == 1:
        return {resource_groups[0]: replica_number}
    out: dict[str, int] = {}
    for rg in resource_groups:
        out[rg] = out.get(rg, 0) + 1
    return out


def split_nodes(nodes: Iterable[str], count: int) -> list[list[str]]:
    """Disjoint node sets, round robin over the sorted nodes (sizes differ by at most one)."""
    sets: list[list[str]] = [[] for _ in range(count)]
    for i, node in enumerate(sorted(nodes)):
        sets[i % count].append(node)
    return sets


def _least_loaded(candidates: Iterable[str], load: dict[str, int]) -> str:
    return min(sorted(candidates), key=lambda e: load.get(e, 0))


def place(
    replicas: list[Replica], vchannels: list[str], live: list[str], load: dict[str, int], taken: set[str]
) -> bool:
    """Update node sets and channel targets in place; ``load`` counts channel targets per node
    over every collection (kept current here); ``taken`` are live nodes excluded from placement
    (draining). Returns whether anything changed (the caller persists it)."""
    usable = [e for e in live if e not in taken]
    changed = False
    for r in replicas:
        kept = [e for e in r.nodes if e in usable]
        if kept != r.nodes:
            r.nodes, changed = kept, True
    used = {e for r in replicas for e in r.nodes}
    free = sorted(e for e in usable if e not in used)
    for r in sorted(replicas, key=lambda r: (len(r.nodes), r.id)):
        if not r.nodes and free:
            r.nodes.append(free.pop(0))
            changed = True
    while free and replicas:
        smallest = min(replicas, key=lambda r: (len(r.nodes), r.id))
        smallest.nodes.append(free.pop(0))
        changed = True
    for r in replicas:
        for v in vchannels:
            target = r.channels.get(v)
            if target is not None and target in r.nodes:
                continue
            if target is not None:
                load[target] = load.get(target, 0) - 1
            if not r.nodes:
                if r.channels.pop(v, None) is not None:
                    changed = True
                continue
            new = _least_loaded(r.nodes, load)
            r.channels[v] = new
            load[new] = load.get(new, 0) + 1
            changed = True
        for v in [v for v in r.channels if v not in vchannels]:
            del r.channels[v]
            changed = True
    return changed


def balance_move(replica: Replica, load: dict[str, int]) -> tuple[str, str, str] | None:
    """One channel move (vchannel, from, to) that evens the replica's nodes out, or None."""
    if len(replica.nodes) < 2 or not replica.channels:
        return None
    busiest = max(sorted(replica.nodes), key=lambda e: load.get(e, 0))
    idlest = _least_loaded(replica.nodes, load)
    if load.get(busiest, 0) - load.get(idlest, 0) < 2:
        return None
    movable = sorted(v for v, e in replica.channels.items() if e == busiest)
    if not movable:
        return None
    v = movable[0]
    replica.channels[v] = idlest
    load[busiest] = load.get(busiest, 0) - 1
    load[idlest] = load.get(idlest, 0) + 1
    return v, busiest, idlest
