"""One pass of the query coordinator's checkers: from targets to querynode calls.

Per loaded collection and replica, in this order (each step sees the effect of the one before,
since successful calls are written into the coordinator's view of the distribution at once):

1. replica node sets and shard-leader targets (services/coord/replicas.py), per resource group;
2. channels: the target leader of each shard watches the channel;
3. sealed segments: each gets a target node in its replica (services/coord/balance.py), is loaded
   there, and the balancer starts a few segment moves in a replica whose last moves completed; a
   copy no leader routes to any more that becomes a target again (moved away and back before its
   release) is loaded again first, as its leaders may have forgotten deletes it lacks;
4. leaders: every node leading (or about to lead) a shard gets the distribution it must route to:
   a segment's target once loaded there, else wherever it is still loaded (a move loads first and
   switches after), else the compaction inputs it replaces; with it, the growing copies the leader
   must drop (of segments compaction dropped, once their successor is routed or when they have none);
5. the shard leader switches to its target once that node routes every segment;
6. releases: channels nobody leads, and segment copies no leader routes to any more (after a
   grace period, so reads that already picked the old copy finish).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.errors import Code, MilvusError
from services.coord.balance import GROWING_ROW_WEIGHT, NodeState, Placer, SegLoad, estimate_bytes
from services.coord.delta_watermark import channel_sync
from services.coord.meta import DROPPED, FLUSHED, SegmentInfo
from services.coord.replicas import Replica, balance_move, place

if TYPE_CHECKING:
    from services.coord.query import QueryCoord

log = logging.getLogger(__name__)
RETIRE_GRACE_SECONDS = 3.0  # an old leader keeps a moved channel this long, for proxies with cached leaders
RELEASE_GRACE_SECONDS = 3.0  # a segment copy no leader routes to any more is released after this
MOVES_PER_PASS = 4  # segment moves the balancer starts per replica at once (each loads before it switches)
AVOID_SECONDS = 30.0  # a node that refused a segment load (memory) is not asked for it again this long
NO_BUDGET = 1 << 62


@dataclass
class Want:
    """A target segment: at which index version, and what compactions it replaces."""

    seg: SegmentInfo
    version: str
    builds: list[dict[str, Any]]
    ancestors: set[int]  # dropped segments merged into it (a node may still serve some)
    ready: bool  # its indexes are built (or failed): worth swapping the ancestors for it
    deltas_ts: int = 0  # its delta logs' watermark when the pass read it (services/coord/delta_watermark.py)


def segment_version(builds: list[dict[str, Any]]) -> str:
    """The version a querynode serves: the builds with files (vector) or built at load (scalar)."""
    ids = sorted(b["build_id"] for b in builds if b["files"] or b.get("scalar"))
    return ",".join(str(b) for b in ids) or "raw"


@dataclass
class Plan:
    coll: Any
    parts: list[int]
    replicas: list[Replica]
    wants: list[Want]


class Dispatcher:
    def __init__(self, qc: QueryCoord) -> None:
        self.qc = qc
        self.serving: dict[tuple[int, str], str] = {}  # (replica id, vchannel) -> leading querynode
        self._retiring: dict[tuple[int, str], tuple[str, float]] = {}  # a switched-away leader, until a deadline
        self._channel_targets: dict[tuple[int, str], str] = {}
        self._wants: dict[str, list[Want]] = {}  # vchannel -> its target segments
        self.targets: dict[int, dict[int, str]] = {}  # replica id -> segment id -> target node
        self._settled: set[int] = set()  # replicas whose placement matched their targets last pass
        self._unref: dict[tuple[str, int], float] = {}
        # vchannel -> min("synced", oldest uncommitted import's row ts), read before the targets
        self._trim_bounds: dict[str, int] = {}
        self._avoid: dict[tuple[str, int], float] = {}
        self.unplaced: dict[int, int] = {}  # collection -> segments that fit on no node of a replica

    # --- views ----------------------------------------------------------------------------
    @property
    def dist(self) -> dict[str, dict[str, Any]]:
        return self.qc.distribution

    def _reports(self, endpoint: str | None, vchannel: str) -> bool:
        return endpoint is not None and vchannel in self.dist.get(endpoint, {}).get("channels", {})

    def _routes(self, endpoint: str, vchannel: str) -> dict[str, str]:
        return dict(self.dist.get(endpoint, {}).get("channels", {}).get(vchannel, {}).get("dist", {}))

    def _holds(self, endpoint: str | None, sid: int, version: str | None = None) -> bool:
        seg = self.dist.get(endpoint or "", {}).get("segments", {}).get(str(sid))
        return seg is not None and (version is None or seg.get("version") == version)

    def _ready(self, endpoint: str | None, vchannel: str) -> bool:
        """The node leads the channel and routes every sealed segment (or the inputs a successor replaces)."""
        if endpoint is None or not self._reports(endpoint, vchannel):
            return False
        routes = self._routes(endpoint, vchannel)
        if any(e not in self.dist for e in routes.values()):
            return False
        held = {int(s) for s in routes}
        return all(w.seg.id in held or w.ancestors & held for w in self._wants.get(vchannel, []))

    def leader_of(self, rid: int, vchannel: str) -> str | None:
        key = (rid, vchannel)
        e = self.serving.get(key)
        target = self._channel_targets.get(key)
        if (e is None or not self._reports(e, vchannel)) and self._ready(target, vchannel):
            e = self.serving[key] = target  # type: ignore[assignment]
        return e if e is not None and self._reports(e, vchannel) else None

    def uses(self, endpoint: str) -> bool:
        """Whether a shard is led by, or routes reads to, ``endpoint``."""
        if endpoint in self.serving.values() or any(e == endpoint for e, _ in self._retiring.values()):
            return True
        return any(
            endpoint in ch.get("dist", {}).values()
            for e, rep in self.dist.items() if e != endpoint
            for ch in rep.get("channels", {}).values()
        )

    # --- the pass -------------------------------------------------------------------------
    def run(self, nodes: list[str]) -> None:
        qc = self.qc
        # first the import floors, then the targets: an import committed in between is among the
        # targets (with its watermark), one that is not has its rows' timestamp in the floor; and
        # "synced" before the targets: a compaction result committed since has at least that
        loaded = [c for cid in list(qc.cat.load_infos) if (c := qc.cat.collections.get(cid)) is not None]
        floors = {v: qc.import_floor(v) for c in loaded for v in c.vchannels}
        with qc.cat.lock:
            self._trim_bounds = {
                v: min([channel_sync(qc.cat.checkpoints.get(v)).synced, *([floor] if floor else [])])
                for v, floor in floors.items()
            }
            failed = qc.index.failed_segments()
            plans: dict[int, Plan] = {}
            for coll_id, reps in self._plan_replicas(nodes).items():
                coll = qc.cat.collections[coll_id]
                plans[coll_id] = Plan(coll, qc.loaded_partitions(coll_id) or [], reps, qc.wanted(coll_id, failed))
        self._wants = {}
        for p in plans.values():
            for v in p.coll.vchannels:
                self._wants[v] = []
            for w in p.wants:
                self._wants.setdefault(w.seg.vchannel, []).append(w)
        self._channel_targets = {
            (r.id, v): e for p in plans.values() for r in p.replicas for v, e in r.channels.items()
        }
        live_keys = {(r.id, v) for p in plans.values() for r in p.replicas for v in p.coll.vchannels}
        self.serving = {k: e for k, e in self.serving.items() if k in live_keys}
        now = time.monotonic()
        self._retiring = {k: (e, t) for k, (e, t) in self._retiring.items() if t > now and e in self.dist}
        self._watch_channels(plans)
        self._place_segments(plans)
        self._sync_leaders(plans)
        for p in plans.values():
            for r in p.replicas:
                for v in p.coll.vchannels:
                    self._update_serving((r.id, v), r.channels.get(v), r.nodes)
        self._release_channels(live_keys)
        self._release_segments()

    def _plan_replicas(self, nodes: list[str]) -> dict[int, list[Replica]]:
        """Replica node sets and channel targets of every loaded collection, persisted when changed."""
        qc = self.qc
        load: dict[str, int] = {}
        for info in qc.cat.load_infos.values():
            for d in info.replicas:
                for e in d.get("channels", {}).values():
                    load[e] = load.get(e, 0) + 1
        plans: dict[int, list[Replica]] = {}
        for coll_id, info in list(qc.cat.load_infos.items()):
            coll = qc.cat.collections.get(coll_id)
            if coll is None:
                continue
            reps = [Replica.from_dict(d) for d in info.replicas]
            while len(reps) < info.replica_number:
                reps.append(Replica(int(qc.ctx.ids.alloc())))
            del reps[max(1, info.replica_number):]
            changed = False
            for rg in sorted({r.resource_group for r in reps}):
                group = qc.rm.groups.get(rg)
                live = [e for e in (group.nodes if group else []) if e in nodes]
                in_rg = [r for r in reps if r.resource_group == rg]
                changed |= place(in_rg, list(coll.vchannels), live, load, qc.draining)
            settled = all(self.serving.get((r.id, v)) == e for r in reps for v, e in r.channels.items())
            if settled:  # one move at a time per collection: the last one is loaded and leading
                for r in reps:
                    move = balance_move(r, load)
                    if move is not None:
                        log.info("balance: replica %d moves channel %s from %s to %s", r.id, *move)
                        changed = True
                        break
            if changed or len(info.replicas) != len(reps):
                qc.cat.save_load_info(info.model_copy(update={"replicas": [r.to_dict() for r in reps]}))
            plans[coll_id] = reps
        return plans

    def _watch_channels(self, plans: dict[int, Plan]) -> None:
        for p in plans.values():
            for r in p.replicas:
                for v in p.coll.vchannels:
                    target = r.channels.get(v)
                    if target is None or target not in self.dist:
                        continue
                    rep = self.dist[target].setdefault("channels", {})
                    if v not in rep:
                        if self._watch(target, p.coll, v, p.parts):
                            rep[v] = {"partitions": sorted(p.parts), "dist": {}}
                    elif sorted(rep[v].get("partitions", [])) != sorted(p.parts):
                        self._call(target, "set_partitions", vchannel=v, partition_ids=p.parts)

    def _place_segments(self, plans: dict[int, Plan]) -> None:
        """Targets for every replica's segments (memory and score aware), loads, and one balance move."""
        now = time.monotonic()
        self._avoid = {k: t for k, t in self._avoid.items() if t > now}
        nodes = {
            e: NodeState(e, int(rep.get("budget") or NO_BUDGET), int(rep.get("memory") or 0))
            for e, rep in self.dist.items() if e not in self.qc.draining
        }
        for e, rep in self.dist.items():
            if e in nodes:
                nodes[e].score += GROWING_ROW_WEIGHT * sum(
                    int(ch.get("growing_rows", 0)) for ch in rep.get("channels", {}).values()
                )
        held: dict[int, set[str]] = {}
        for e, rep in self.dist.items():
            for s in rep.get("segments", {}):
                held.setdefault(int(s), set()).add(e)
        placer = Placer(nodes)
        work: list[tuple[Plan, Replica, list[SegLoad], list[SegLoad], dict[int, Want]]] = []
        live_rids = set()
        for p in plans.values():
            schema = p.coll.parsed_schema
            for r in p.replicas:
                live_rids.add(r.id)
                wants: dict[int, Want] = {}
                for w in p.wants:
                    inputs_held = any(held.get(a, set()) & set(r.nodes) for a in w.ancestors)
                    if not w.ready and inputs_held and not held.get(w.seg.id, set()) & set(r.nodes):
                        continue  # keep serving the compaction inputs until the result is indexed
                    wants[w.seg.id] = w
                segs = [
                    SegLoad(w.seg.id, w.seg.num_rows, estimate_bytes(schema, w.seg.num_rows, w.builds),
                            held.get(w.seg.id, set()), r.channels.get(w.seg.vchannel))
                    for w in wants.values()
                ]
                targets = self.targets.setdefault(r.id, {})
                for sid in [s for s in targets if s not in wants]:
                    del targets[sid]
                left = placer.keep(r.nodes, segs, targets)
                work.append((p, r, segs, left, wants))
        self.targets = {rid: t for rid, t in self.targets.items() if rid in live_rids}
        self.unplaced = {}
        for p, r, _, left, _ in work:
            unplaced = placer.place(r.nodes, left, self.targets[r.id], set(self._avoid))
            if unplaced and r.nodes:
                self.unplaced[p.coll.id] = self.unplaced.get(p.coll.id, 0) + len(unplaced)
                log.warning("replica %d of %s: %d segments fit on none of its %d nodes (memory budget)",
                            r.id, p.coll.name, len(unplaced), len(r.nodes))
        for p, r, segs, _, wants in work:
            # segments move once the shard leaders stopped moving, so each can go next to its leader
            leaders_settled = all(self.serving.get((r.id, v)) == e for v, e in r.channels.items())
            if r.id in self._settled and leaders_settled and p.coll.id not in self.unplaced:
                for _ in range(MOVES_PER_PASS):  # the next batch once this one is loaded and switched
                    move = placer.balance_move(r.nodes, segs, self.targets[r.id])
                    if move is None:
                        break
                    log.info("balance: replica %d moves segment %d from %s to %s", r.id, *move)
            for sid, e in sorted(self.targets[r.id].items()):
                w = wants[sid]
                if not self._holds(e, sid, w.version):
                    self._load(e, p.coll, w)
                elif self._orphaned(e, w):
                    self._load(e, p.coll, w, refresh=True)

    def _routed_to(self, vchannel: str, sid: int, endpoint: str) -> bool:
        """Whether a leader of ``vchannel`` (any replica) routes segment ``sid`` to ``endpoint``."""
        return any(
            rep.get("channels", {}).get(vchannel, {}).get("dist", {}).get(str(sid)) == endpoint
            for rep in self.dist.values()
        )

    def _orphaned(self, endpoint: str, want: Want) -> bool:
        """A copy at ``endpoint`` that a leader caught up once but none routes to any more, older than
        a load now would be (a segment moved away and back within the release grace). It got the
        deletes forwarded while it was routed, not those since, and the leaders' buffers may have
        forgotten the gap (or, for a leader that started after, never had it): it is loaded again
        before a leader routes to it, so no catch-up is refused and no delete missed."""
        held = self.dist.get(endpoint, {}).get("segments", {}).get(str(want.seg.id))
        return (
            held is not None and bool(held.get("ready", True)) and int(held.get("deltas_ts", 0)) < want.deltas_ts
            and not self._routed_to(want.seg.vchannel, want.seg.id, endpoint)
        )

    def _load(self, endpoint: str, coll: Any, want: Want, refresh: bool = False) -> None:
        rep = self.dist[endpoint]
        if coll.id not in rep.get("schemas", []) and self._call(
            endpoint, "set_schema", collection_id=coll.id, schema=coll.schema_b64
        ):
            rep.setdefault("schemas", []).append(coll.id)
        held = rep.get("segments", {})
        replaces = sorted(a for a in want.ancestors if str(a) in held)
        try:
            ready = self.qc.ctx.router.client(endpoint).call(
                "load_segment", segment=want.seg.model_dump(), version=want.version, indexes=want.builds,
                replaces=replaces, deltas_ts=want.deltas_ts, refresh=refresh,
            )
        except MilvusError as exc:
            log.warning("load_segment %d on %s failed: %s", want.seg.id, endpoint, exc)
            if exc.code == Code.MEMORY_LIMIT_EXCEEDED:
                self._avoid[(endpoint, want.seg.id)] = time.monotonic() + AVOID_SECONDS
            for targets in self.targets.values():
                if targets.get(want.seg.id) == endpoint:
                    del targets[want.seg.id]
            return
        held[str(want.seg.id)] = {
            "version": want.version, "vchannel": want.seg.vchannel, "rows": want.seg.num_rows, "ready": bool(ready),
            "deltas_ts": want.deltas_ts,
        }

    def _desired(self, r: Replica, v: str, current: dict[str, str]) -> dict[str, str]:
        """Where a leader of replica ``r`` must route each sealed segment of ``v`` now."""
        alive = set(self.dist)
        targets = self.targets.get(r.id, {})
        out: dict[str, str] = {}

        def where(sid: int, version: str | None, want: Want | None = None) -> str | None:
            def fit(n: str | None, v: str | None) -> bool:
                return self._holds(n, sid, v) and not (want is not None and self._orphaned(str(n), want))

            t = targets.get(sid)
            if t in alive and fit(t, version):
                return t
            c = current.get(str(sid))
            if c in alive and self._holds(c, sid):  # routed here by this leader: kept up to date
                return c
            holders = sorted(n for n in r.nodes if fit(n, None))
            # loaded nowhere alive: keep the old route, so reads fail clearly instead of missing rows
            return holders[0] if holders else c

        for w in self._wants.get(v, []):
            e = where(w.seg.id, w.version, w)
            if e is not None:
                out[str(w.seg.id)] = e
                continue
            for a in sorted(w.ancestors):  # the result is not loaded yet: route to its inputs
                ea = where(a, None)
                if ea is not None:
                    out[str(a)] = ea
        return out

    def _sync_leaders(self, plans: dict[int, Plan]) -> None:
        settled: set[int] = set()
        copies: dict[str, list[tuple[str, str, int]]] = {}  # vchannel -> (node, segment, watermark) held
        for n, rep in self.dist.items():
            for sid, held in rep.get("segments", {}).items():
                copies.setdefault(held.get("vchannel", ""), []).append((n, sid, int(held.get("deltas_ts", 0))))
        for p in plans.values():
            for r in p.replicas:
                ok = True
                for v in p.coll.vchannels:
                    key = (r.id, v)
                    leaders = {self.serving.get(key), r.channels.get(v)}
                    if key in self._retiring:
                        leaders.add(self._retiring[key][0])
                    for e in sorted(x for x in leaders if x is not None and self._reports(x, v)):
                        current = self._routes(e, v)
                        desired = self._desired(r, v, current)
                        stale = self._stale_growing(e, v, desired)
                        fresh = self._unready(desired)
                        synced = True
                        if desired != current or stale or fresh:
                            ok &= desired == current
                            extra: dict[str, Any] = {"dropped": stale} if stale else {}
                            if fresh:
                                extra["reloaded"] = fresh
                            extra["stats"] = self._stats_logs(desired)
                            synced = self._call(e, "sync_distribution", vchannel=v, leader=e, segments=desired, **extra)
                            if synced:
                                rep = self.dist[e]["channels"][v]
                                rep["dist"] = desired
                                rep["growing"] = [s for s in rep.get("growing", []) if s not in stale]
                                self._mark_ready(desired, fresh)
                        if synced:  # every routed copy is caught up: the leader may forget what none needs
                            self._trim_deletes(e, r, v, desired, copies.get(v, []))
                    routes = self._routes(self.serving.get(key) or "", v)
                    ok &= all(routes.get(str(sid)) == t for sid, t in self.targets.get(r.id, {}).items()
                              if self._wants_has(v, sid))
                if ok:
                    settled.add(r.id)
        self._settled = settled

    def _trim_deletes(
        self, endpoint: str, r: Replica, v: str, routes: dict[str, str], copies: list[tuple[str, str, int]]
    ) -> None:
        """Let the leader of ``v`` at ``endpoint`` drop its buffered deletes at or below the point
        every copy it may still catch up has in its delta logs: the channel's ``synced`` (later loads
        read at least that), the oldest uncommitted import's rows (its segments come later with that
        watermark), both read before the targets; the targets' watermarks (an import or compaction
        result not covered yet has less); and the copies loaded on the replica's nodes that the
        leader does not route yet. (A copy caught up from a buffer trimmed past its watermark is
        refused and loaded again: services/querynode/worker.py.)"""
        if v not in self._trim_bounds:
            return  # loaded after this pass began: next pass
        points = [self._trim_bounds[v], *(w.deltas_ts for w in self._wants.get(v, []))]
        nodes = set(r.nodes)
        points += [wm for n, sid, wm in copies if n in nodes and routes.get(sid) != n]
        upto = min(points)
        rep = self.dist[endpoint]["channels"][v]
        if upto > int(rep.get("trimmed", 0)) and self._call(endpoint, "trim_deletes", vchannel=v, upto=upto):
            rep["trimmed"] = upto

    def _stats_logs(self, routes: dict[str, str]) -> dict[str, list[Any]]:
        """[stats log keys, rows] of each routed segment, for the leader's PK oracle (one the catalog
        does not know is left out: the leader then sends it every delete)."""
        out: dict[str, list[Any]] = {}
        for sid in routes:
            seg = self.qc.cat.segments.get(int(sid))
            if seg is not None:
                out[sid] = [list(seg.statslogs), seg.num_rows]
        return out

    def _unready(self, routes: dict[str, str]) -> list[int]:
        """Routed segments whose worker holds a fresh copy still waiting for the leader's catch-up
        (a querynode restarted on the same endpoint reloads what its leader routes to it)."""
        return sorted(
            int(sid) for sid, e in routes.items()
            if not self.dist.get(e, {}).get("segments", {}).get(sid, {}).get("ready", True)
        )

    def _mark_ready(self, routes: dict[str, str], sids: list[int]) -> None:
        """The leader caught these up (if that failed, the worker's next report says so again)."""
        for sid in sids:
            held = self.dist.get(routes[str(sid)], {}).get("segments", {}).get(str(sid))
            if held is not None:
                held["ready"] = True

    def _stale_growing(self, endpoint: str, v: str, desired: dict[str, str]) -> list[int]:
        """Growing copies a leader still holds of segments that are gone from the catalog's view:
        dropped (compacted, truncated) or already garbage-collected. Their rows are served by the
        compaction result once it is routed, or by nothing (all deleted or expired: a later TTL
        change must not bring them back). Copies whose successor is not routed yet stay: reads
        use them meanwhile (a flush and compaction can beat the load of the flushed segment)."""
        growing = self.dist.get(endpoint, {}).get("channels", {}).get(v, {}).get("growing", [])
        if not growing:
            return []
        waiting: set[int] = set()
        for w in self._wants.get(v, []):
            if str(w.seg.id) not in desired:
                waiting |= w.ancestors
        cat = self.qc.cat
        with cat.lock:
            states = {int(s): (seg.state if (seg := cat.segments.get(int(s))) is not None else None)
                      for s in growing}
        return sorted(s for s, state in states.items() if s not in waiting and state in (DROPPED, None))

    def _wants_has(self, v: str, sid: int) -> bool:
        return any(w.seg.id == sid for w in self._wants.get(v, []))

    def _update_serving(self, key: tuple[int, str], target: str | None, nodes: list[str]) -> None:
        """Switch a replica's leader of a channel to its target once the target routes everything."""
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

    def _release_channels(self, live_keys: set[tuple[int, str]]) -> None:
        holders: dict[str, set[str]] = {}
        for key in live_keys:
            keep = {self.serving.get(key), self._channel_targets.get(key)}
            if key in self._retiring:
                keep.add(self._retiring[key][0])
            holders.setdefault(key[1], set()).update(e for e in keep if e is not None)
        for endpoint, rep in self.dist.items():
            for v in list(rep.get("channels", {})):
                if endpoint not in holders.get(v, set()) and self._call(endpoint, "release_channel", vchannel=v):
                    rep["channels"].pop(v, None)

    def _release_segments(self) -> None:
        cat = self.qc.cat
        referenced = {(t, sid) for targets in self.targets.values() for sid, t in targets.items()}
        for rep in self.dist.values():
            for ch in rep.get("channels", {}).values():
                referenced |= {(e, int(s)) for s, e in ch.get("dist", {}).items()}
        now = time.monotonic()
        seen: set[tuple[str, int]] = set()
        for endpoint, rep in self.dist.items():
            for s in list(rep.get("segments", {})):
                key = (endpoint, int(s))
                if key in referenced:
                    continue
                seen.add(key)
                seg = cat.segments.get(int(s))
                loaded = seg is not None and seg.collection_id in cat.load_infos
                if loaded and now - self._unref.setdefault(key, now) < RELEASE_GRACE_SECONDS:
                    continue
                if self._call(endpoint, "release_segments", segment_ids=[int(s)]):
                    rep["segments"].pop(s, None)
        self._unref = {k: t for k, t in self._unref.items() if k in seen}

    def _watch(self, endpoint: str, coll: Any, vchannel: str, parts: list[int]) -> bool:
        cat = self.qc.cat
        with cat.lock:
            cp = cat.checkpoints.get(vchannel)
            # dropped (compacted) segments too: their inserts after the checkpoint must not come back as growing
            flushed = [s.id for s in cat.segments.values() if s.vchannel == vchannel and s.state in (FLUSHED, DROPPED)]
        return self._call(
            endpoint,
            "watch_channel",
            collection_id=coll.id,
            vchannel=vchannel,
            schema=coll.schema_b64,
            checkpoint=json.loads(cp) if cp else None,
            flushed_segment_ids=flushed,
            partition_ids=parts,
        )

    def _call(self, endpoint: str, method: str, **kwargs: Any) -> bool:
        try:
            self.qc.ctx.router.client(endpoint).call(method, **kwargs)
            return True
        except MilvusError as exc:
            log.warning("%s on %s failed: %s", method, endpoint, exc)
            return False
