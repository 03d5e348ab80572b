"""Query coordination: load state, replicas, and the RPCs proxies and querynodes ask about them.

Like Milvus's querycoord, it compares a *target* (the channels and flushed segments a loaded
collection needs, at their current index version) with the *distribution* each querynode
reports, and closes the gap (services/coord/dispatch.py): every replica gets a leader per shard
(vchannel) that consumes the channel, and its sealed segments are spread over the replica's nodes
(services/coord/balance.py); the leader learns where each one is and fans reads out to them.

Compaction replaces segments by their merged successor: leaders keep routing to the inputs until
the successor is indexed and loaded, then switch in one step, so a search never sees a row twice
or misses one during the swap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from common.errors import Code, MilvusError
from common.rpc import rpc
from services.coord.balance import estimate_bytes, fits_in
from services.coord.context import CoordContext
from services.coord.delta_watermark import ChannelSync, channel_sync, watermark
from services.coord.dispatch import Dispatcher, Want, segment_version
from services.coord.index import IndexCoord
from services.coord.meta import FLUSHED, LoadInfo, SegmentInfo
from services.coord.replicas import Replica, assign_replicas, check_enough, split_nodes
from services.coord.resource_groups import DEFAULT_RG, ResourceManager
from services.coord.rg_service import ResourceGroupService

log = logging.getLogger(__name__)
MB = 1 << 20


class QueryCoord:
    def __init__(self, ctx: CoordContext, index: IndexCoord) -> None:
        self.ctx = ctx
        self.cat = ctx.catalog
        self.index = index
        self.rm = ResourceManager(ctx.kv, ctx.catalog.keys)
        self.rg_service = ResourceGroupService(self)
        self.dispatch = Dispatcher(self)
        self.draining: set[str] = set()  # querynodes leaving: their channels and segments move elsewhere
        self._reconciled = threading.Event()  # one pass since start: leaders are known (after a failover too)
        self.distribution: dict[str, dict[str, Any]] = {}  # endpoint -> its last report
        self.live_nodes: list[str] = []  # querynodes with a live session (some may not have reported)
        # the oldest row timestamp of the imports into a vchannel not committed yet (0: none); the
        # server wires in ImportManager.delete_floor (imports are built on this class, not under it)
        self.import_floor: Callable[[str], int] = lambda vchannel: 0
        self._reconcile_lock = threading.Lock()

    @property
    def serving(self) -> dict[tuple[int, str], str]:
        return self.dispatch.serving

    # --- user-facing --------------------------------------------------------------------
    @rpc
    def load_collection(
        self,
        collection_id: int,
        replica_number: int = 1,
        partition_ids: list[int] | None = None,
        resource_groups: list[str] | None = None,
    ) -> None:
        replica_number = max(1, replica_number)
        per_group = assign_replicas(list(resource_groups or []), replica_number)
        with self._reconcile_lock:  # a pass in flight keeps its own view of the distribution
            self.refresh_distribution()
        with self.cat.lock:
            coll = self.cat.collections.get(collection_id)
            if coll is None:
                raise MilvusError(Code.COLLECTION_NOT_FOUND, f"collection not found[collection={collection_id}]")
            indexed = {i.field_id for i in self.index.indexes_of(collection_id)}
            missing = [f.name for f in coll.parsed_schema.vector_fields if f.field_id not in indexed]
            if missing:
                raise MilvusError(
                    Code.INDEX_NOT_FOUND,
                    f"there is no vector index on field: [{', '.join(missing)}], please create index firstly: "
                    f"index not found[collection={coll.name}]",
                )
            self.rm.assign([e for e in self.live_nodes if e not in self.draining])
            for rg, count in per_group.items():
                nodes = len(self.rm.get(rg).nodes)
                if rg == DEFAULT_RG and not self.live_nodes and count == 1:
                    continue  # no querynode registered yet (a cluster starting): placed when one joins
                check_enough(count, nodes, rg)
            existing = self.cat.load_infos.get(collection_id)
            same = existing is not None and existing.replicas and existing.replica_number == replica_number and (
                resource_groups is None or _groups_of(existing.replicas) == per_group
            )
            if same and existing is not None:
                replicas = existing.replicas
            else:
                reps = [
                    Replica(int(self.ctx.ids.alloc()), nodes, resource_group=rg)
                    for rg, count in sorted(per_group.items())
                    for nodes in split_nodes(self.rm.get(rg).nodes, count)
                ]
                parts = set(partition_ids or []) | set(existing.partition_ids if existing else [])
                self._check_memory(coll, reps, None if not partition_ids else parts)
                replicas = [r.to_dict() for r in reps]
            if partition_ids:
                if existing is not None and existing.load_all:
                    return
                parts_list = sorted(set(partition_ids) | set(existing.partition_ids if existing else []))
                info = LoadInfo(collection_id=collection_id, partition_ids=parts_list, replica_number=replica_number,
                                load_all=False, replicas=replicas)
            else:
                info = LoadInfo(collection_id=collection_id, partition_ids=[], replica_number=replica_number,
                                load_all=True, replicas=replicas)
            self.cat.save_load_info(info)
        # watch the channels, load the sealed segments, sync the leaders: small collections are
        # loaded when this returns; large ones keep loading in the background loop
        for _ in range(3):
            self.reconcile()

    def _check_memory(self, coll: Any, reps: list[Replica], parts: set[int] | None) -> None:
        """Refuse a load that cannot fit a replica's nodes (Milvus: memory limit exceeded)."""
        schema = coll.parsed_schema
        sizes = []
        for s in self.cat.segments.values():
            if s.collection_id != coll.id or s.state != FLUSHED or s.num_rows <= 0:
                continue
            if parts is not None and s.partition_id not in parts:
                continue
            builds = self.index.segment_index_state(s.id, coll.id)[1]
            sizes.append(estimate_bytes(schema, s.num_rows, builds))
        for i, r in enumerate(reps):
            reports = [self.distribution.get(e, {}) for e in r.nodes]
            rooms = [int(rep.get("budget", 1 << 62)) - int(rep.get("memory", 0)) for rep in reports]
            if not reports or fits_in(sizes, rooms):
                continue
            budget = sum(int(rep.get("budget", 0)) for rep in reports)
            raise MilvusError(
                Code.MEMORY_LIMIT_EXCEEDED,
                f"memory limit exceeded[collection={coll.name}]: loading needs {sum(sizes) / MB:.1f} MB "
                f"(largest segment {max(sizes) / MB:.1f} MB) but the {len(reports)} query nodes of replica {i + 1} "
                f"(resource group {r.resource_group}) have {sum(max(0, x) for x in rooms) / MB:.1f} MB of their "
                f"{budget / MB:.1f} MB memory budget left",
            )

    @rpc
    def release_collection(self, collection_id: int) -> None:
        with self.cat.lock:
            self.cat.drop_load_info(collection_id)
        self.reconcile()

    @rpc
    def release_partitions(self, collection_id: int, partition_ids: list[int]) -> None:
        with self.cat.lock:
            info = self.cat.load_infos.get(collection_id)
            if info is None:
                return
            if info.load_all:
                all_parts = list(self.cat.partitions.get(collection_id, {}))
                info = info.model_copy(update={"partition_ids": all_parts, "load_all": False})
            left = [p for p in info.partition_ids if p not in partition_ids]
            if not left:
                self.cat.drop_load_info(collection_id)
            else:
                self.cat.save_load_info(info.model_copy(update={"partition_ids": left}))
        self.reconcile()

    def loaded_partitions(self, collection_id: int) -> list[int] | None:
        """Loaded partition ids, or None when the collection is not loaded."""
        info = self.cat.load_infos.get(collection_id)
        if info is None:
            return None
        if info.load_all:
            return sorted(self.cat.partitions.get(collection_id, {}))
        return list(info.partition_ids)

    @rpc
    def get_load_info(self, collection_id: int) -> dict[str, Any] | None:
        with self.cat.lock:
            parts = self.loaded_partitions(collection_id)
            if parts is None:
                return None
            progress = self._progress(collection_id)
            info = self.cat.load_infos[collection_id]
            return {"partition_ids": parts, "progress": progress, "replica_number": info.replica_number,
                    "resource_groups": sorted(_groups_of(info.replicas))}

    def target_segments(self, collection_id: int) -> list[SegmentInfo]:
        parts = set(self.loaded_partitions(collection_id) or [])
        return [
            s
            for s in self.cat.segments.values()
            if s.collection_id == collection_id and s.state == FLUSHED and s.partition_id in parts and s.num_rows > 0
        ]

    def _progress(self, collection_id: int) -> int:
        """Percent loaded: of its least loaded replica, shards watched plus sealed segments held on its
        nodes (a compaction result counts as held while the inputs it replaces are)."""
        coll = self.cat.collections[collection_id]
        info = self.cat.load_infos[collection_id]
        segs = self.target_segments(collection_id)
        total = len(coll.vchannels) + len(segs)
        if total == 0:
            return 100
        worst = 100
        for d in info.replicas or [{"id": 0, "nodes": list(self.distribution)}]:
            nodes = [e for e in d.get("nodes", []) if e in self.distribution] or list(self.distribution)
            reps = [self.distribution[e] for e in nodes]
            channels = {v for rep in reps for v in rep.get("channels", {})}
            held = {int(s) for rep in reps for s in rep.get("segments", {})}
            done = sum(1 for v in coll.vchannels if v in channels)
            done += sum(1 for s in segs if s.id in held or self.cat.ancestors(s) & held)
            worst = min(worst, int(100 * done / total))
        return worst

    def loaded_segment_ids(self) -> set[int]:
        """Segments some querynode reported holding in its last distribution report."""
        return {int(s) for rep in self.distribution.values() for s in rep.get("segments", {})}

    @rpc
    def get_shard_leaders(self, collection_id: int) -> dict[str, list[str]]:
        """Per vchannel, the leader of every replica that serves it (at least one, else an error)."""
        if not self._reconciled.is_set():
            self.reconcile()  # a coordinator that just took over learns the distribution first
        with self.cat.lock:
            coll = self.cat.collections.get(collection_id)
            if coll is None:
                raise MilvusError(Code.COLLECTION_NOT_FOUND, f"collection not found[collection={collection_id}]")
            info = self.cat.load_infos.get(collection_id)
            if info is None:
                raise MilvusError(Code.COLLECTION_NOT_LOADED, f"collection not loaded[collection={coll.name}]")
            out: dict[str, list[str]] = {}
            for v in coll.vchannels:
                leaders = [e for d in info.replicas if (e := self.dispatch.leader_of(int(d["id"]), v)) is not None]
                if not leaders:
                    raise MilvusError(
                        Code.CHANNEL_NOT_AVAILABLE,
                        f"channel not available[channel={v}]: no available shard leaders, no query node serves it",
                    )
                out[v] = leaders
            return out

    @rpc
    def get_replicas(self, collection_id: int) -> list[dict[str, Any]]:
        """Replica placement as Milvus's GetReplicas reports it (node ids from the querynode sessions)."""
        ids = {n.endpoint: n.node_id for n in self.ctx.nodes("querynode")}
        with self.cat.lock:
            info = self.cat.load_infos.get(collection_id)
            if info is None:
                coll = self.cat.collections.get(collection_id)
                name = coll.name if coll else collection_id
                raise MilvusError(Code.COLLECTION_NOT_LOADED, f"collection not loaded[collection={name}]")
            parts = self.loaded_partitions(collection_id) or []
            out = []
            for d in info.replicas:
                r = Replica.from_dict(d)
                shards = []
                for v in sorted(r.channels):
                    leader = self.serving.get((r.id, v)) or r.channels[v]
                    dist = self.distribution.get(leader, {}).get("channels", {}).get(v, {}).get("dist", {})
                    serving_nodes = sorted({leader, *dist.values()} & set(ids), key=lambda e: ids[e])
                    shards.append(
                        {"leader_id": ids.get(leader, -1), "leader_addr": leader, "dm_channel_name": v,
                         "node_ids": [ids[e] for e in serving_nodes], "node_addrs": serving_nodes}
                    )
                out.append(
                    {"id": r.id, "collection_id": collection_id, "partition_ids": parts,
                     "node_ids": sorted(ids[e] for e in r.nodes if e in ids), "shard_replicas": shards,
                     "resource_group": r.resource_group}
                )
            return out

    @rpc
    def drain_querynode(self, endpoint: str, wait_seconds: float = 60.0) -> bool:
        """A querynode is leaving: move its channels and segments (loaded elsewhere first); True once
        no shard leads or routes to it."""
        self.draining.add(endpoint)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if not self.dispatch.uses(endpoint):
                return True
            if not [e for e in self.distribution if e not in self.draining]:
                return False  # nowhere to move to: serve until the process exits
            time.sleep(0.2)
        return False

    # --- reconciliation -----------------------------------------------------------------
    def refresh_distribution(self) -> list[str]:
        nodes = [n.endpoint for n in self.ctx.nodes("querynode")]
        self.live_nodes = nodes
        dist: dict[str, dict[str, Any]] = {}
        for endpoint in nodes:
            try:
                dist[endpoint] = self.ctx.router.client(endpoint).call("get_distribution", timeout=5.0)
            except MilvusError as exc:
                log.warning("querynode %s did not report: %s", endpoint, exc)
        self.distribution = dist
        return list(dist)

    def reconcile(self) -> None:
        """One pass of the checkers; passes never overlap (the loop and load calls share it)."""
        with self._reconcile_lock:
            nodes = self.refresh_distribution()
            self.draining &= set(self.live_nodes)
            with self.cat.lock:
                if self.rm.assign([e for e in self.live_nodes if e not in self.draining]):
                    log.info("resource groups: %s", {g.name: g.nodes for g in self.rm.groups.values()})
            self.dispatch.run(nodes)
            self._reconciled.set()

    def wanted(self, coll_id: int, failed: set[int]) -> list[Want]:
        """The collection's target segments (under the catalog lock: each with its delta-log watermark)."""
        out = []
        syncs: dict[str, ChannelSync] = {}
        for s in self.target_segments(coll_id):
            done, builds = self.index.segment_index_state(s.id, coll_id)
            sync = syncs.get(s.vchannel)
            if sync is None:
                sync = syncs[s.vchannel] = channel_sync(self.cat.checkpoints.get(s.vchannel))
            out.append(Want(s, segment_version(builds), builds, self.cat.ancestors(s), done or s.id in failed,
                            watermark(s, sync)))
        return out


def _groups_of(replicas: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in replicas:
        rg = Replica.from_dict(d).resource_group
        out[rg] = out.get(rg, 0) + 1
    return out
