"""The resource-group RPCs of the query coordinator (what Milvus's querycoord serves for them).

Create/Drop/List/Describe/Update resource groups and TransferNode act on the resource manager
(services/coord/resource_groups.py); TransferReplica moves replicas of a loaded collection to
another group (their nodes follow on the next pass: load on the new nodes first, then switch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from common.errors import MilvusError, invalid
from common.rpc import rpc
from services.coord.replicas import Replica
from services.coord.resource_groups import DEFAULT_CAPACITY, DEFAULT_RG, node_not_enough, not_found

if TYPE_CHECKING:
    from services.coord.query import QueryCoord


class ResourceGroupService:
    def __init__(self, qc: QueryCoord) -> None:
        self.qc = qc

    def _sync_nodes(self) -> None:
        qc = self.qc
        live = [n.endpoint for n in qc.ctx.nodes("querynode") if n.endpoint not in qc.draining]
        qc.rm.assign(live)

    def _replicas_in(self, rg: str) -> list[tuple[int, Replica]]:
        return [
            (coll_id, Replica.from_dict(d))
            for coll_id, info in self.qc.cat.load_infos.items()
            for d in info.replicas
            if Replica.from_dict(d).resource_group == rg
        ]

    @rpc
    def create_resource_group(self, name: str, config: dict[str, Any] | None = None) -> None:
        with self.qc.cat.lock:
            self.qc.rm.create(name, config)
            self._sync_nodes()

    @rpc
    def drop_resource_group(self, name: str) -> None:
        with self.qc.cat.lock:
            self.qc.rm.drop(name, len(self._replicas_in(name)))
            self._sync_nodes()

    @rpc
    def update_resource_groups(self, configs: dict[str, dict[str, Any]]) -> None:
        with self.qc.cat.lock:
            self.qc.rm.update(configs)
            self._sync_nodes()
        self.qc.reconcile()

    @rpc
    def list_resource_groups(self) -> list[str]:
        with self.qc.cat.lock:
            self._sync_nodes()
            return sorted(self.qc.rm.groups)

    @rpc
    def transfer_node(self, source: str, target: str, num_node: int) -> None:
        with self.qc.cat.lock:
            self._sync_nodes()
            self.qc.rm.transfer_node(source, target, num_node)
        self.qc.reconcile()

    @rpc
    def transfer_replica(self, source: str, target: str, collection_id: int, num_replica: int) -> None:
        qc = self.qc
        with qc.cat.lock:
            for rg, what in ((source, "source"), (target, "target")):
                if rg not in qc.rm.groups:
                    err = not_found(rg)
                    raise MilvusError(err.code, f"the {what} resource group[{rg}] doesn't exist: {err.message}")
            if source == target:
                raise invalid(
                    f"source resource group and target resource group should not be the same, resource group: {source}"
                )
            if num_replica <= 0:
                raise invalid(f"invalid NumReplica {num_replica}: invalid parameter[expected=NumReplica > 0]")
            info = qc.cat.load_infos.get(collection_id)
            if info is None:
                raise invalid(f"Collection not loaded: invalid parameter[expected=Collection not loaded]"
                              f"[actual=collectionID {collection_id}]")
            reps = [Replica.from_dict(d) for d in info.replicas]
            movable = [r for r in reps if r.resource_group == source]
            if len(movable) < num_replica:
                raise invalid(
                    f"only found [{len(movable)}] replicas of collection [{collection_id}] in source resource group "
                    f"[{source}], but {num_replica} require: invalid parameter"
                )
            self._sync_nodes()
            target_nodes = len(qc.rm.groups[target].nodes)
            already = sum(1 for r in reps if r.resource_group == target)
            if target_nodes < already + num_replica:
                raise node_not_enough(target, target_nodes, already + num_replica)
            for r in sorted(movable, key=lambda r: r.id)[:num_replica]:
                r.resource_group = target  # its nodes are replaced on the next pass, loaded before switched
            qc.cat.save_load_info(info.model_copy(update={"replicas": [r.to_dict() for r in reps]}))
        qc.reconcile()

    @rpc
    def describe_resource_group(self, name: str) -> dict[str, Any]:
        qc = self.qc
        sessions = {n.endpoint: n for n in qc.ctx.nodes("querynode")}
        with qc.cat.lock:
            self._sync_nodes()
            g = qc.rm.groups.get(name)
            if g is None:
                raise not_found(name)
            loaded: dict[int, int] = {}
            outgoing: dict[int, int] = {}
            incoming: dict[int, int] = {}
            for coll_id, info in qc.cat.load_infos.items():
                for d in info.replicas:
                    r = Replica.from_dict(d)
                    if r.resource_group == name:
                        loaded[coll_id] = loaded.get(coll_id, 0) + 1
                        outgoing[coll_id] = outgoing.get(coll_id, 0) + sum(1 for e in r.nodes if e not in g.nodes)
                    else:
                        incoming[coll_id] = incoming.get(coll_id, 0) + sum(1 for e in r.nodes if e in g.nodes)
            names = {c: qc.cat.collections[c].name for c in qc.cat.load_infos if c in qc.cat.collections}
            nodes = [
                {"node_id": sessions[e].node_id, "address": e, "hostname": e.split("://")[-1].split(":")[0]}
                for e in sorted(g.nodes) if e in sessions
            ]
            capacity = DEFAULT_CAPACITY if name == DEFAULT_RG else g.requests
            return {
                "name": g.name,
                "capacity": capacity,
                "num_available_node": len(nodes),
                "num_loaded_replica": {names[c]: n for c, n in loaded.items() if c in names},
                "num_outgoing_node": {names[c]: n for c, n in outgoing.items() if c in names and n},
                "num_incoming_node": {names[c]: n for c, n in incoming.items() if c in names and n},
                "config": g.config,
                "nodes": nodes,
            }

