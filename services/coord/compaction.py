"""Compaction (Milvus's "mix" compaction): which flushed segments to rewrite, and the plans' lifecycle.

Deletes only mark rows (delta logs), and many small flushes leave many small segments; both
make every search slower. The policy here picks, per collection, partition and vchannel,
the flushed segments whose deleted share reached a threshold (rewritten alone, without the
deleted rows) and groups small segments into merges up to the maximum segment size. The
datanode that watches the vchannel executes a plan inside its channel thread and asks this
module to commit the result; the commit swaps inputs for output in one KV write and is
refused when an input gained delta logs the datanode did not read (the plan is retried).
Triggers run in the coordinator loop at an interval, or on ManualCompaction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from common import tso
from common.collection_props import autocompaction_enabled, expire_ts
from common.errors import Code, MilvusError
from common.rpc import rpc
from services.coord.catalog import now_ms
from services.coord.compaction_store import (
    ACTIVE,
    COMPLETED,
    EXECUTING,
    FAILED,
    PENDING,
    CompactionStore,
    Plan,
    Trigger,
)
from services.coord.context import CoordContext
from services.coord.data import DataCoord
from services.coord.delta_watermark import channel_sync, covered_from, watermark
from services.coord.index import IndexCoord
from services.coord.meta import DROPPED, FLUSHED, SegmentInfo

log = logging.getLogger(__name__)

MAX_TRIGGERS = 1000  # finished triggers kept for GetCompactionState
MAX_INPUTS = 30  # segments merged by one plan at most (Milvus's compaction.max.segment)


def _live_rows(s: SegmentInfo) -> int:
    return max(0, s.num_rows - s.deleted_rows)


def deleted_ratio(s: SegmentInfo) -> float:
    return s.deleted_rows / s.num_rows if s.num_rows else 0.0


def select_plans(
    segments: Iterable[SegmentInfo],
    max_rows: int,
    ratio_threshold: float,
    small_proportion: float,
    force: bool = False,
    max_inputs: int = MAX_INPUTS,
    expired: set[int] | frozenset[int] = frozenset(),
) -> list[list[SegmentInfo]]:
    """Group one (collection, partition, vchannel)'s compactable segments into plans.

    A segment whose deleted share reached ``ratio_threshold`` must be rewritten; one below
    ``small_proportion`` of ``max_rows`` may be merged. Candidates are packed first-fit by
    decreasing live rows into bins of at most ``max_rows`` rows and ``max_inputs`` segments;
    a bin becomes a plan when it merges several segments or holds one that must be
    rewritten. ``force`` (manual compaction) makes every segment a candidate, and rewrites a
    lone one with deletes. ``expired`` segments hold rows past the collection TTL: they must
    be rewritten too (without those rows).
    """
    segs = [s for s in segments if s.num_rows > 0]
    must = {s.id for s in segs if deleted_ratio(s) >= ratio_threshold or s.id in expired}
    small = {s.id for s in segs if s.num_rows < small_proportion * max_rows}
    candidates = segs if force else [s for s in segs if s.id in must or s.id in small]
    bins: list[tuple[list[SegmentInfo], list[int]]] = []  # (members, [live rows])
    for s in sorted(candidates, key=lambda s: (-_live_rows(s), s.id)):
        for members, rows in bins:
            if rows[0] + _live_rows(s) <= max_rows and len(members) < max_inputs:
                members.append(s)
                rows[0] += _live_rows(s)
                break
        else:
            bins.append(([s], [_live_rows(s)]))
    plans = []
    for members, _ in bins:
        if len(members) > 1 or any(s.id in must or (force and s.deleted_rows > 0) for s in members):
            plans.append(sorted(members, key=lambda s: s.id))
    return plans


class CompactionManager:
    def __init__(self, ctx: CoordContext, data: DataCoord, index: IndexCoord) -> None:
        self.ctx = ctx
        self.cat = ctx.catalog
        self.data = data
        self.index = index
        self.store = CompactionStore(ctx.kv, ctx.catalog.keys)
        self.plans, self.triggers = self.store.load()
        self._lock = threading.RLock()  # plans and triggers; taken inside the catalog lock, never around it
        self._recover()
        self._next_auto = time.monotonic() + ctx.cfg.data.compaction_interval_seconds

    def _recover(self) -> None:
        """After a restart: finish plans whose commit landed, re-queue the ones that were running."""
        changed = []
        with self.cat.lock, self._lock:
            for p in self.plans.values():
                if p.state not in ACTIVE:
                    continue
                srcs = [self.cat.segments.get(sid) for sid in p.sources]
                targets = {s.compacted_to for s in srcs if s is not None}
                if (
                    srcs
                    and all(s is not None and s.state == DROPPED and s.compacted_to for s in srcs)
                    and len(targets) == 1
                ):
                    p.state, p.target = COMPLETED, targets.pop()
                elif p.state == EXECUTING:
                    p.state, p.node = PENDING, ""
                else:
                    continue
                changed.append(p)
            self.store.save(changed)
        if self.plans:
            log.info("compaction: %d plans reloaded, %d recovered", len(self.plans), len(changed))

    def _save(self, *plans: Plan) -> None:
        self.store.save(list(plans))

    # --- triggering ---------------------------------------------------------------------
    def busy_segments(self) -> set[int]:
        with self._lock:
            return {sid for p in self.plans.values() if p.state in ACTIVE for sid in p.sources}

    def _compactable(self, s: SegmentInfo, busy: set[int], force: bool) -> bool:
        return (
            s.state == FLUSHED
            and s.num_rows > 0
            and not s.compacted_to
            and s.id not in busy
            and s.collection_id in self.cat.collections
            # automatic runs, as Milvus, wait for a segment's indexes (no build is wasted on it);
            # a manual request takes it anyway
            and (force or self.index.segment_index_state(s.id, s.collection_id)[0])
        )

    def trigger(self, collection_id: int | None = None, force: bool = False) -> Trigger:
        """Plan compactions for one collection (or all) and queue them under a new trigger id."""
        cfg = self.ctx.cfg.data
        with self.cat.lock:
            busy = self.busy_segments()
            groups: dict[tuple[int, int, str], list[SegmentInfo]] = {}
            for s in self.cat.segments.values():
                if (collection_id is None or s.collection_id == collection_id) and self._compactable(s, busy, force):
                    groups.setdefault((s.collection_id, s.partition_id, s.vchannel), []).append(s)
            trig = Trigger(self.ctx.ids.alloc(), collection_id or 0)
            new: list[Plan] = []
            for (coll_id, part_id, vchannel), segs in sorted(groups.items()):
                props = self.cat.collections[coll_id].parsed_schema.props
                if not force and not autocompaction_enabled(props):
                    continue  # collection.autocompaction.enabled=false: manual compaction only
                cut = expire_ts(props, tso.compose(tso.now_ms()))
                max_rows = self.data.max_rows(self.cat.collections[coll_id])
                for members in select_plans(
                    segs, max_rows, cfg.compaction_deleted_ratio, cfg.compaction_small_proportion, force,
                    expired={s.id for s in segs if s.created_ts < cut},
                ):
                    plan = Plan(
                        self.ctx.ids.alloc(), trig.trigger_id, coll_id, part_id, vchannel, [s.id for s in members]
                    )
                    new.append(plan)
                    trig.plan_ids.append(plan.plan_id)
            with self._lock:
                self.store.save(new, [trig])  # persisted before anyone can see or dispatch them
                self.plans.update((p.plan_id, p) for p in new)
                self.triggers[trig.trigger_id] = trig
                self._prune()
        if trig.plan_ids:
            log.info("compaction trigger %d: %d plans", trig.trigger_id, len(trig.plan_ids))
        return trig

    def _prune(self) -> None:
        """Forget the oldest finished triggers (and their plans) beyond MAX_TRIGGERS."""
        if len(self.triggers) <= MAX_TRIGGERS:
            return
        gone_plans: list[Plan] = []
        gone_triggers: list[Trigger] = []
        for tid in sorted(self.triggers)[: len(self.triggers) - MAX_TRIGGERS]:
            trig = self.triggers[tid]
            if all(self.plans[p].state not in ACTIVE for p in trig.plan_ids if p in self.plans):
                gone_plans += [self.plans.pop(p) for p in trig.plan_ids if p in self.plans]
                gone_triggers.append(self.triggers.pop(tid))
        self.store.delete(gone_plans, gone_triggers)

    # --- the loop step ------------------------------------------------------------------
    def tick(self) -> None:
        """Auto-trigger at the configured interval, time out stuck plans, dispatch pending ones."""
        cfg = self.ctx.cfg.data
        now = time.monotonic()
        if cfg.compaction_enabled and now >= self._next_auto:
            self._next_auto = now + cfg.compaction_interval_seconds
            self.trigger()
        self._expire(now)
        self.dispatch()

    def _expire(self, now: float) -> None:
        timeout = self.ctx.cfg.data.compaction_timeout_seconds
        with self._lock:
            for p in self.plans.values():
                if p.state == EXECUTING and now - p.started > timeout:
                    p.state, p.reason = FAILED, f"timed out after {timeout:.0f}s on {p.node}"
                    self._save(p)
                    log.warning("compaction plan %d %s", p.plan_id, p.reason)

    def dispatch(self) -> None:
        with self._lock:
            pending = [p for p in self.plans.values() if p.state == PENDING]
        for p in pending:
            endpoint = self.data.channel_watchers.get(p.vchannel)
            if endpoint is None:
                continue
            with self._lock:
                if p.state != PENDING:
                    continue  # claimed meanwhile by another dispatch (the loop, or a manual request)
                p.state, p.node, p.started = EXECUTING, endpoint, time.monotonic()
                self._save(p)
            with self.cat.lock:  # the current schema (added fields) and TTL/truncate cut-off travel along
                coll = self.cat.collections.get(p.collection_id)
                schema_b64 = coll.schema_b64 if coll is not None else ""
                cut = expire_ts(coll.parsed_schema.props, tso.compose(tso.now_ms())) if coll is not None else 0
            try:
                self.ctx.router.client(endpoint).call(
                    "compact",
                    plan={
                        "plan_id": p.plan_id,
                        "collection_id": p.collection_id,
                        "partition_id": p.partition_id,
                        "vchannel": p.vchannel,
                        "segment_ids": p.sources,
                        "schema": schema_b64,
                        "expire_ts": cut,
                    },
                )
            except MilvusError as exc:
                log.warning("compaction plan %d to %s failed: %s", p.plan_id, endpoint, exc)
                with self._lock:
                    if p.state == EXECUTING:
                        p.state = PENDING
                        self._save(p)

    # --- datanode reports ---------------------------------------------------------------
    def _retry_or_fail(self, plan: Plan, reason: str) -> None:
        plan.attempts += 1
        plan.reason = reason
        plan.state = FAILED if plan.attempts >= self.ctx.cfg.data.compaction_max_attempts else PENDING
        self._save(plan)

    @rpc
    def fail_compaction(self, plan_id: int, reason: str) -> None:
        with self._lock:
            plan = self.plans.get(plan_id)
            if plan is not None and plan.state in ACTIVE:
                log.warning("compaction plan %d failed on its datanode: %s", plan_id, reason)
                self._retry_or_fail(plan, reason)

    @rpc
    def complete_compaction(
        self, plan_id: int, vchannel: str, segment: dict[str, Any], inputs: dict[int, list[str]]
    ) -> dict[str, Any]:
        """Commit a plan's result atomically: inputs Dropped, the new segment Flushed.

        Refused (MilvusError, nothing changed) when the plan is unknown or finished, when an
        input is no longer a flushed segment of this channel, or when an input has delta logs
        that the datanode did not read (then the plan is retried).
        """
        read = {int(k): set(v) for k, v in inputs.items()}
        with self.cat.lock, self._lock:
            plan = self.plans.get(plan_id)
            if plan is None or plan.state not in ACTIVE:
                raise MilvusError(Code.SERVICE_INTERNAL, f"compaction plan {plan_id} is not executing")
            if sorted(read) != sorted(plan.sources) or vchannel != plan.vchannel:
                raise MilvusError(Code.SERVICE_INTERNAL, f"compaction plan {plan_id}: result does not match the plan")
            coll = self.cat.collections.get(plan.collection_id)
            srcs = [self.cat.segments.get(sid) for sid in plan.sources]
            if coll is None or any(
                s is None or s.state != FLUSHED or s.compacted_to or s.vchannel != vchannel for s in srcs
            ):
                plan.state, plan.reason = FAILED, "an input segment was dropped meanwhile"
                self._save(plan)
                raise MilvusError(Code.SERVICE_INTERNAL, f"compaction plan {plan_id}: {plan.reason}")
            inputs_now = [s for s in srcs if s is not None]
            changed = [s.id for s in inputs_now if not set(s.deltalogs) <= read[s.id]]
            if changed:
                self._retry_or_fail(plan, f"segments {changed} gained delta logs during compaction")
                raise MilvusError(Code.SERVICE_INTERNAL, f"compaction plan {plan_id}: {plan.reason}")
            result = self._result_segment(plan, coll.id, segment, inputs_now)
            dropped = [
                s.model_copy(update={"state": DROPPED, "compacted_to": result.id, "dropped_at_ms": now_ms()})
                for s in inputs_now
            ]
            self.cat.save_segments([*dropped, result])  # the commit point (a restart finds it: _recover)
            plan.state, plan.target = COMPLETED, result.id
            self._save(plan)
        log.info("compaction plan %d: %s -> %d (%d rows)", plan_id, plan.sources, result.id, result.num_rows)
        return {"segment_id": result.id, "state": result.state}

    def _result_segment(
        self, plan: Plan, coll_id: int, segment: dict[str, Any], inputs: list[SegmentInfo]
    ) -> SegmentInfo:
        by_flush = sorted(inputs, key=lambda s: s.flush_ts)
        sync = channel_sync(self.cat.checkpoints.get(plan.vchannel))
        rows = int(segment["num_rows"])
        return SegmentInfo(
            id=int(segment["id"]),
            collection_id=coll_id,
            partition_id=plan.partition_id,
            vchannel=plan.vchannel,
            state=FLUSHED if rows else DROPPED,  # everything was deleted: nothing to serve
            num_rows=rows,
            max_rows=max(s.max_rows for s in inputs),
            created_ts=self.ctx.tso.alloc(),
            seal_ts=max(s.seal_ts for s in inputs),
            flush_ts=by_flush[-1].flush_ts,
            binlogs={int(k): list(v) for k, v in segment.get("binlogs", {}).items()},
            statslogs=list(segment.get("statslogs", [])),
            start_position=by_flush[0].start_position,
            dml_position=by_flush[-1].dml_position,
            compacted_from=list(plan.sources),
            # complete as far as its least complete input was (services/coord/delta_watermark.py)
            delta_floor_ts=min(watermark(s, sync) for s in inputs),
            delta_covered_seq=covered_from(sync),
            dropped_at_ms=0 if rows else now_ms(),
        )

    # --- user-facing --------------------------------------------------------------------
    @rpc
    def manual_compaction(self, collection_id: int, l0: bool = False) -> dict[str, Any]:
        """Compact a collection now (every segment is a candidate); an L0 request has no work here."""
        with self.cat.lock:
            if collection_id not in self.cat.collections:
                raise MilvusError(Code.COLLECTION_NOT_FOUND, f"collection not found[collection={collection_id}]")
        if l0:
            trig = Trigger(self.ctx.ids.alloc(), collection_id)
            with self._lock:
                self.store.save([], [trig])
                self.triggers[trig.trigger_id] = trig
            return {"compaction_id": trig.trigger_id, "plan_count": 0}
        trig = self.trigger(collection_id, force=True)
        self.dispatch()
        return {"compaction_id": trig.trigger_id, "plan_count": len(trig.plan_ids)}

    def _plans_of(self, compaction_id: int, collection_id: int = 0) -> list[Plan]:
        with self._lock:
            if compaction_id:
                trig = self.triggers.get(compaction_id)
                return [self.plans[p] for p in trig.plan_ids if p in self.plans] if trig else []
            return [p for p in self.plans.values() if p.collection_id == collection_id]

    @rpc
    def get_compaction_state(self, compaction_id: int) -> dict[str, Any]:
        """Counts of a trigger's plans; Executing while any is pending or running (as Milvus)."""
        plans = self._plans_of(compaction_id)
        executing = sum(1 for p in plans if p.state in ACTIVE)
        return {
            "state": "Executing" if executing else "Completed",
            "executing": executing,
            "completed": sum(1 for p in plans if p.state == COMPLETED),
            "failed": sum(1 for p in plans if p.state == FAILED and not p.reason.startswith("timed out")),
            "timeout": sum(1 for p in plans if p.state == FAILED and p.reason.startswith("timed out")),
        }

    @rpc
    def get_compaction_plans(self, compaction_id: int = 0, collection_id: int = 0) -> dict[str, Any]:
        plans = self._plans_of(compaction_id, collection_id)
        executing = any(p.state in ACTIVE for p in plans)
        return {"state": "Executing" if executing else "Completed", "plans": [p.info() for p in plans]}
