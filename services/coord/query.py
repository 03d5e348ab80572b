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
from dataclasses import dataclass
from typing import Any

from common.errors import Code, MilvusError
from common.rpc import rpc
from services.coord.context import CoordContext
from services.coord.index import IndexCoord
from services.coord.meta import DROPPED, FLUSHED, LoadInfo, SegmentInfo

log = logging.getLogger(__name__)


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
        self.channel_leaders: dict[str, str] = {}  # vchannel -> querynode endpoint
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
            nodes = len(self.ctx.nodes("querynode"))
            if replica_number > max(1, nodes):
                raise MilvusError(
                    Code.RESOURCE_INSUFFICIENT,
                    f"failed to load collection: resource group node not enough: replica number {replica_number} "
                    f"exceeds {nodes} query nodes",
                )
            existing = self.cat.load_infos.get(collection_id)
            if partition_ids:
                if existing is not None and existing.load_all:
                    return
                parts = sorted(set(partition_ids) | set(existing.partition_ids if existing else []))
                info = LoadInfo(
                    collection_id=collection_id, partition_ids=parts, replica_number=replica_number, load_all=False
                )
            else:
                info = LoadInfo(
                    collection_id=collection_id, partition_ids=[], replica_number=replica_number, load_all=True
                )
            self.cat.save_load_info(info)
        # watch the channels, then load the sealed segments next to them: small collections are
        # loaded when this returns; large ones keep loading in the background loop
        self.reconcile()
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
        with self.cat.lock:
            coll = self.cat.collections.get(collection_id)
            if coll is None:
                raise MilvusError(Code.COLLECTION_NOT_FOUND, f"collection not found[collection={collection_id}]")
            if collection_id not in self.cat.load_infos:
                raise MilvusError(Code.COLLECTION_NOT_LOADED, f"collection not loaded[collection={coll.name}]")
            out: dict[str, list[str]] = {}
            for v in coll.vchannels:
                endpoint = self.channel_leaders.get(v)
                if endpoint is None or v not in self.distribution.get(endpoint, {}).get("channels", {}):
                    raise MilvusError(
                        Code.CHANNEL_NOT_AVAILABLE,
                        f"channel not available[channel={v}]: no query node serves it yet",
                    )
                out[v] = [endpoint]
            return out

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
        with self.cat.lock:
            wanted_channels: dict[str, Any] = {}
            wanted_segments: dict[int, Want] = {}
            failed = self.index.failed_segments()
            for coll_id in list(self.cat.load_infos):
                coll = self.cat.collections.get(coll_id)
                if coll is None:
                    continue
                parts = self.loaded_partitions(coll_id) or []
                for v in coll.vchannels:
                    wanted_channels[v] = (coll, parts)
                for s in self._target_segments(coll_id):
                    done, builds = self.index.segment_index_state(s.id, coll_id)
                    ready = done or s.id in failed
                    wanted_segments[s.id] = Want(s, segment_version(builds), builds, self.cat.ancestors(s), ready)
        self._place_channels(nodes, wanted_channels)
        # per node: segments to load (with the compaction inputs each replaces) or to keep serving
        keep: dict[str, set[int]] = {}
        loads: list[tuple[str, Want, list[int]]] = []
        for sid, want in wanted_segments.items():
            holder = self.channel_leaders.get(want.seg.vchannel)
            if holder is None or want.seg.vchannel not in self.distribution.get(holder, {}).get("channels", {}):
                continue  # load sealed data once the channel is watched there
            held = {int(k): v for k, v in self.distribution[holder].get("segments", {}).items()}
            held_inputs = sorted(a for a in want.ancestors if a in held)
            have = held.get(sid)
            if have is not None and have["version"] == want.version and not held_inputs:
                continue
            if have is None and held_inputs and not want.ready:
                keep.setdefault(holder, set()).update(held_inputs)  # serve the inputs until it is indexed
                continue
            keep.setdefault(holder, set()).update(held_inputs)  # replaced by the load, not released
            loads.append((holder, want, held_inputs))
        for endpoint, rep in self.distribution.items():
            for sid in (int(x) for x in rep.get("segments", {})):
                target = wanted_segments.get(sid)
                if sid in keep.get(endpoint, set()):
                    continue
                if target is None or self.channel_leaders.get(target.seg.vchannel) != endpoint:
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

    def _place_channels(self, nodes: list[str], wanted_channels: dict[str, Any]) -> None:
        """Channel leaders: keep a live one, else pick the least loaded node; release the rest."""
        self.channel_leaders = {v: e for v, e in self.channel_leaders.items() if e in self.distribution}
        for endpoint, rep in self.distribution.items():
            for v in rep.get("channels", {}):
                self.channel_leaders.setdefault(v, endpoint)
        for v, (coll, parts) in wanted_channels.items():
            if not nodes:
                break
            leader = self.channel_leaders.get(v)
            if leader is None:
                load = {e: 0 for e in nodes}
                for e in self.channel_leaders.values():
                    load[e] = load.get(e, 0) + 1
                leader = min(sorted(load), key=lambda e: load[e])
                self.channel_leaders[v] = leader
            endpoint = leader
            rep = self.distribution.get(endpoint, {})
            if v not in rep.get("channels", {}):
                self._watch(endpoint, coll, v, parts)
            elif sorted(rep["channels"][v].get("partitions", [])) != sorted(parts):
                self._call(endpoint, "set_partitions", vchannel=v, partition_ids=parts)
        for endpoint, rep in self.distribution.items():
            for v in list(rep.get("channels", {})):
                if v not in wanted_channels or self.channel_leaders.get(v) != endpoint:
                    self._call(endpoint, "release_channel", vchannel=v)
                    if self.channel_leaders.get(v) == endpoint:
                        self.channel_leaders.pop(v, None)

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
