"""Query coordination: load state, and which querynode serves each channel and segment.

Like Milvus's querycoord, it compares a *target* (the channels and flushed segments a loaded
collection needs, at their current index version) with the *distribution* each querynode
reports, and issues tasks to close the gap: watch a channel, load a segment (after its new
index version is built: the handoff), release what is no longer wanted.

Compaction replaces segments by their merged successor. A querynode keeps serving the
dropped inputs it holds until the successor is indexed, then loads the successor and drops
the inputs in one step on the node (``replaces``), so a search never sees a row twice or
misses one during the swap.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from common.errors import Code, MilvusError
from common.rpc import rpc
from services.coord.context import CoordContext
from services.coord.index import IndexCoord
from services.coord.meta import DROPPED, FLUSHED, LoadInfo, SegmentInfo
from services.coord.replicas import Replica, balance_move, check_enough, place, split_nodes

log = logging.getLogger(__name__)
RETIRE_GRACE_SECONDS = 3.0  # an old leader keeps a moved channel this long, for proxies with cached leaders


@dataclass
class Want:
    """A target segment: at which index version, and what compactions it replaces."""

    seg: SegmentInfo
    version: str
    builds: list[dict[str, Any]]
    ancestors: set[int]  # dropped segments merged into it (a node may still serve some)
    ready: bool  # its indexes are built (or failed): worth swapping the ancestors for it


def segment_version(builds: list[dict[str, Any]]) -> str:
    """The version a querynode serves: the builds with files (vector) or built at load (scalar)."""
    ids = sorted(b["build_id"] for b in builds if b["files"] or b.get("scalar"))
    return ",".join(str(b) for b in ids) or "raw"


class QueryCoord:
    def __init__(self, ctx: CoordContext, index: IndexCoord) -> None:
        self.ctx = ctx
        self.cat = ctx.catalog
        self.index = index
        self.serving: dict[tuple[int, str], str] = {}  # (replica id, vchannel) -> leading querynode endpoint
        self._retiring: dict[tuple[int, str], tuple[str, float]] = {}  # a switched-away leader, until a deadline
        self._wanted_by_channel: dict[str, list[Want]] = {}
        self.draining: set[str] = set()  # querynodes leaving: their channels move elsewhere
        self._reconciled = threading.Event()  # one pass since start: leaders are known (after a failover too)
        self.distribution: dict[str, dict[str, Any]] = {}  # endpoint -> its last report
        self._reconcile_lock = threading.Lock()

    # --- user-facing --------------------------------------------------------------------
    @rpc
    def load_collection(
        self, collection_id: int, replica_number: int = 1, partition_ids: list[int] | None = None
    ) -> None:
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
            if replica_number < 1:
                replica_number = 1
            live = [n.endpoint for n in self.ctx.nodes("querynode") if n.endpoint not in self.draining]
            check_enough(replica_number, max(1, len(live)))
            existing = self.cat.load_infos.get(collection_id)
            if existing is not None and existing.replica_number == replica_number and existing.replicas:
                replicas = existing.replicas
            else:
                replicas = [
                    Replica(int(self.ctx.ids.alloc()), nodes).to_dict() for nodes in split_nodes(live, replica_number)
                ]
            if partition_ids:
                if existing is not None and existing.load_all:
                    return
                parts = sorted(set(partition_ids) | set(existing.partition_ids if existing else []))
                info = LoadInfo(
                    collection_id=collection_id,
                    partition_ids=parts,
                    replica_number=replica_number,
                    load_all=False,
                    replicas=replicas,
                )
            else:
                info = LoadInfo(
                    collection_id=collection_id,
                    partition_ids=[],
                    replica_number=replica_number,
                    load_all=True,
                    replicas=replicas,
                )
            self.cat.save_load_info(info)
        # watch the channels, then load the sealed segments next to them: small collections are
        # loaded when this returns; large ones keep loading in the background loop
        for _ in range(3):  # watch, load sealed segments, switch leaders to the loaded nodes
            self.reconcile()

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
                info = LoadInfo(
                    collection_id=collection_id,
                    partition_ids=all_parts,
                    replica_number=info.replica_number,
                    load_all=False,
                    replicas=info.replicas,
                )
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
            return {"partition_ids": parts, "progress": progress, "replica_number": info.replica_number}

    def _target_segments(self, collection_id: int) -> list[SegmentInfo]:
        parts = set(self.loaded_partitions(collection_id) or [])
        return [
            s
            for s in self.cat.segments.values()
            if s.collection_id == collection_id and s.state == FLUSHED and s.partition_id in parts and s.num_rows > 0
        ]

    def _progress(self, collection_id: int) -> int:
        coll = self.cat.collections[collection_id]
        served_channels = {v for v in coll.vchannels if v in self._reported_channels()}
        loaded = self.loaded_segment_ids()
        segs = self._target_segments(collection_id)
        total = len(coll.vchannels) + len(segs)
        # a compaction result counts as served while the inputs it replaces are
        done = len(served_channels) + sum(1 for s in segs if s.id in loaded or self.cat.ancestors(s) & loaded)
        return 100 if total == 0 else int(100 * done / total)

    def loaded_segment_ids(self) -> set[int]:
        """Segments some querynode reported holding in its last distribution report."""
        return set(self._reported_segments())

    def _reported_channels(self) -> set[str]:
        return {v for rep in self.distribution.values() for v in rep.get("channels", {})}

    def _reported_segments(self) -> dict[int, str]:
        return {int(s): d["version"] for rep in self.distribution.values() for s, d in rep.get("segments", {}).items()}

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
                leaders = []
                for d in info.replicas:
                    key, target = (int(d["id"]), v), d.get("channels", {}).get(v)
                    e = self.serving.get(key)
                    if (e is None or not self._reports(e, v)) and target is not None and self._ready(target, v):
                        e = self.serving[key] = target  # loaded since the last pass: lead now
                    if e is not None and self._reports(e, v):
                        leaders.append(e)
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
                    shards.append(
                        {"leader_id": ids.get(leader, -1), "leader_addr": leader, "dm_channel_name": v,
                         "node_ids": [ids[leader]] if leader in ids else []}
                    )
                out.append(
                    {"id": r.id, "collection_id": collection_id, "partition_ids": parts,
                     "node_ids": sorted(ids[e] for e in r.nodes if e in ids), "shard_replicas": shards}
                )
            return out

    @rpc
    def drain_querynode(self, endpoint: str, wait_seconds: float = 60.0) -> bool:
        """A querynode is leaving: move its channels (loaded elsewhere first); True once it leads none."""
        self.draining.add(endpoint)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            busy = [k for k, e in self.serving.items() if e == endpoint]
            busy += [k for k, (e, _) in self._retiring.items() if e == endpoint]
            if not busy:
                return True
            if not [e for e in self.distribution if e not in self.draining]:
                return False  # nowhere to move to: serve until the process exits
            time.sleep(0.2)
        return False

    # --- reconciliation -----------------------------------------------------------------
    def refresh_distribution(self) -> list[str]:
        nodes = [n.endpoint for n in self.ctx.nodes("querynode")]
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
            self._reconcile()

    def _reconcile(self) -> None:
        nodes = self.refresh_distribution()
        self.draining &= set(nodes)
        wanted_channels: dict[str, tuple[Any, list[int], list[Replica]]] = {}
        wanted_segments: dict[int, Want] = {}
        with self.cat.lock:
            failed = self.index.failed_segments()
            plans = self._plan_replicas(nodes)
            for coll_id, reps in plans.items():
                coll = self.cat.collections[coll_id]
                parts = self.loaded_partitions(coll_id) or []
                for v in coll.vchannels:
                    wanted_channels[v] = (coll, parts, reps)
                for s in self._target_segments(coll_id):
                    done, builds = self.index.segment_index_state(s.id, coll_id)
                    ready = done or s.id in failed
                    wanted_segments[s.id] = Want(s, segment_version(builds), builds, self.cat.ancestors(s), ready)
        by_channel: dict[str, list[Want]] = {}
        for want in wanted_segments.values():
            by_channel.setdefault(want.seg.vchannel, []).append(want)
        self._wanted_by_channel = by_channel
        holders = self._place_channels(wanted_channels)
        self._place_segments(wanted_segments, holders)
        self._reconciled.set()

    def _plan_replicas(self, nodes: list[str]) -> dict[int, list[Replica]]:
        """Replica node sets and channel targets of every loaded collection, persisted when changed."""
        load: dict[str, int] = {}
        for info in self.cat.load_infos.values():
            for d in info.replicas:
                for e in d.get("channels", {}).values():
                    load[e] = load.get(e, 0) + 1
        plans: dict[int, list[Replica]] = {}
        for coll_id, info in list(self.cat.load_infos.items()):
            coll = self.cat.collections.get(coll_id)
            if coll is None:
                continue
            reps = [Replica.from_dict(d) for d in info.replicas]
            while len(reps) < info.replica_number:
                reps.append(Replica(int(self.ctx.ids.alloc())))
            del reps[max(1, info.replica_number):]
            changed = place(reps, list(coll.vchannels), nodes, load, self.draining)
            settled = all(self.serving.get((r.id, v)) == e for r in reps for v, e in r.channels.items())
            if settled:  # one move at a time per collection: the last one is loaded and leading
                for r in reps:
                    move = balance_move(r, load)
                    if move is not None:
                        log.info("balance: replica %d moves %s from %s to %s", r.id, *move)
                        changed = True
                        break
            if changed or len(info.replicas) != len(reps):
                self.cat.save_load_info(info.model_copy(update={"replicas": [r.to_dict() for r in reps]}))
            plans[coll_id] = reps
        return plans

    def _reports(self, endpoint: str | None, vchannel: str) -> bool:
        return endpoint is not None and vchannel in self.distribution.get(endpoint, {}).get("channels", {})

    def _ready(self, endpoint: str, vchannel: str) -> bool:
        """The node serves the channel and every sealed segment of it (or the inputs a successor replaces)."""
        if not self._reports(endpoint, vchannel):
            return False
        held = {int(s) for s in self.distribution[endpoint].get("segments", {})}
        return all(w.seg.id in held or w.ancestors & held for w in self._wanted_by_channel.get(vchannel, []))

    def _update_serving(self, key: tuple[int, str], target: str | None, nodes: list[str]) -> None:
        """Switch a replica's leader of a channel to its target once the target is fully loaded."""
        rid, v = key
        current = self.serving.get(key)
        if current is not None and not self._reports(current, v):
            self.serving.pop(key, None)
            current = None
        if current is None:  # after a coordinator restart: adopt a node of the replica that still serves it
            for e in ([target] if target else []) + sorted(nodes):
                if self._ready(e, v):
                    current = self.serving[key] = e
                    break
        if target is not None and current != target and self._ready(target, v):
            if current is not None:
                self._retiring[key] = (current, time.monotonic() + RETIRE_GRACE_SECONDS)
            self.serving[key] = target
            log.info("replica %d: channel %s now led by %s (was %s)", rid, v, target, current)

    def _place_channels(self, wanted: dict[str, tuple[Any, list[int], list[Replica]]]) -> dict[str, set[str]]:
        """Watch each replica's channels on their targets; returns vchannel -> endpoints that keep it."""
        now = time.monotonic()
        self._retiring = {k: (e, t) for k, (e, t) in self._retiring.items() if t > now and e in self.distribution}
        holders: dict[str, set[str]] = {}
        live_keys: set[tuple[int, str]] = set()
        for v, (coll, parts, reps) in wanted.items():
            for r in reps:
                key = (r.id, v)
                live_keys.add(key)
                target = r.channels.get(v)
                self._update_serving(key, target, r.nodes)
                keep = {e for e in (target, self.serving.get(key)) if e is not None}
                if key in self._retiring:
                    keep.add(self._retiring[key][0])
                holders.setdefault(v, set()).update(keep)
                if target is None or target not in self.distribution:
                    continue
                rep = self.distribution[target]
                if v not in rep.get("channels", {}):
                    self._watch(target, coll, v, parts)
                elif sorted(rep["channels"][v].get("partitions", [])) != sorted(parts):
                    self._call(target, "set_partitions", vchannel=v, partition_ids=parts)
        self.serving = {k: e for k, e in self.serving.items() if k in live_keys}
        for endpoint, rep in self.distribution.items():
            for v in list(rep.get("channels", {})):
                if endpoint not in holders.get(v, set()):
                    self._call(endpoint, "release_channel", vchannel=v)
        return holders

    def _place_segments(self, wanted_segments: dict[int, Want], holders: dict[str, set[str]]) -> None:
        """Per node that keeps a channel: segments to load (with the compaction inputs each replaces)."""
        keep: dict[str, set[int]] = {}
        loads: list[tuple[str, Want, list[int]]] = []
        for want in wanted_segments.values():
            for holder in sorted(holders.get(want.seg.vchannel, set())):
                if not self._reports(holder, want.seg.vchannel):
                    continue  # load sealed data once the channel is watched there
                held = {int(k): v for k, v in self.distribution[holder].get("segments", {}).items()}
                held_inputs = sorted(a for a in want.ancestors if a in held)
                have = held.get(want.seg.id)
                if have is not None and have["version"] == want.version and not held_inputs:
                    continue
                keep.setdefault(holder, set()).update(held_inputs)  # replaced by the load (or kept until indexed)
                if have is None and held_inputs and not want.ready:
                    continue
                loads.append((holder, want, held_inputs))
        for endpoint, rep in self.distribution.items():
            for sid in (int(x) for x in rep.get("segments", {})):
                target = wanted_segments.get(sid)
                if sid in keep.get(endpoint, set()):
                    continue
                if target is None or endpoint not in holders.get(target.seg.vchannel, set()):
                    self._call(endpoint, "release_segments", segment_ids=[sid])
        for endpoint, want, replaces in loads:
            self._call(
                endpoint,
                "load_segment",
                segment=want.seg.model_dump(),
                version=want.version,
                indexes=want.builds,
                replaces=replaces,
            )

    def _watch(self, endpoint: str, coll: Any, vchannel: str, parts: list[int]) -> None:
        with self.cat.lock:
            cp = self.cat.checkpoints.get(vchannel)
            # dropped (compacted) segments too: their inserts after the checkpoint must not come back as growing
            flushed = [
                s.id for s in self.cat.segments.values() if s.vchannel == vchannel and s.state in (FLUSHED, DROPPED)
            ]
        self._call(
            endpoint,
            "watch_channel",
            collection_id=coll.id,
            vchannel=vchannel,
            schema=coll.schema_b64,
            checkpoint=json.loads(cp) if cp else None,
            flushed_segment_ids=flushed,
            partition_ids=parts,
        )

    def _call(self, endpoint: str, method: str, **kwargs: Any) -> None:
        try:
            self.ctx.router.client(endpoint).call(method, **kwargs)
        except MilvusError as exc:
            log.warning("%s on %s failed: %s", method, endpoint, exc)
