"""Garbage collection: delete the files (then the metadata) of things that were dropped.

Compaction drops its input segments, DropCollection / DropPartition / DropIndex drop whole
trees of files, and retried index builds leave superseded versions behind. Nothing deletes
those files on the spot: a querynode may still serve a dropped segment until its successor
is loaded, and a channel replay may still meet its inserts. After a tolerance (default one
hour) this collector deletes them — a dropped segment only once the channel checkpoint has
passed it and no querynode holds it or an ancestor of it — and every deletion is checked
against the set of files that live segments and finished index builds reference, so a
referenced file is never removed.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from common.binlog.keys import DELTA_LOG, INDEX_FILES, INSERT_LOG, STATS_LOG, parse_log_key, segment_prefix
from common.storage.base import ObjectStorage
from services.coord.catalog import now_ms
from services.coord.context import CoordContext
from services.coord.meta import DROPPED, SegmentInfo, Tombstone

log = logging.getLogger(__name__)

KINDS = (INSERT_LOG, STATS_LOG, DELTA_LOG, INDEX_FILES)


@dataclass
class GcReport:
    deleted_files: list[str] = field(default_factory=list)
    dropped_segments: list[int] = field(default_factory=list)
    tombstones: list[str] = field(default_factory=list)


def segment_files(s: SegmentInfo) -> set[str]:
    return {k for keys in s.binlogs.values() for k in keys} | set(s.statslogs) | set(s.deltalogs)


class GarbageCollector:
    def __init__(
        self,
        ctx: CoordContext,
        storage: Callable[[], ObjectStorage],
        loaded_segments: Callable[[], set[int]],
        compare: Callable[[bytes, bytes], int],
    ) -> None:
        """``storage`` opens the object store on first use; ``loaded_segments`` is what
        querynodes hold now; ``compare`` orders message ids of one channel."""
        self.ctx = ctx
        self.cat = ctx.catalog
        self._open_storage = storage
        self._storage: ObjectStorage | None = None
        self._loaded = loaded_segments
        self._compare = compare
        self._next = time.monotonic() + ctx.cfg.data.gc_interval_seconds

    @property
    def storage(self) -> ObjectStorage:
        if self._storage is None:
            self._storage = self._open_storage()
        return self._storage

    def tick(self) -> None:
        cfg = self.ctx.cfg.data
        if not cfg.gc_enabled or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + cfg.gc_interval_seconds
        self.run()

    def run(self) -> GcReport:
        """One full pass; safe to repeat (a crash midway leaves metadata for the next pass)."""
        report = GcReport()
        expired_before = now_ms() - int(self.ctx.cfg.data.gc_drop_tolerance_seconds * 1000)
        with self.cat.lock:
            victims = self._collectable_segments(expired_before)
            referenced = self._referenced(exclude={s.id for s in victims})
            stones = [(k, t) for k, t in self.cat.tombstones.items() if t.dropped_at_ms <= expired_before]
            builds = {si.build_id: (si.state, set(si.files)) for si in self.cat.segment_indexes.values()}
        for s in victims:
            keys = segment_files(s)
            for kind in KINDS:
                keys.update(self.storage.list(segment_prefix(kind, s.collection_id, s.partition_id, s.id)))
            self._delete(keys, referenced, report)
        if victims:
            self.cat.drop_segments([s.id for s in victims])
            report.dropped_segments = [s.id for s in victims]
        for key, stone in stones:
            keys = {k for prefix in self._prefixes(stone) for k in self.storage.list(prefix)}
            self._delete(keys, referenced, report)
            self.cat.drop_tombstone(key)
            report.tombstones.append(key)
        self._delete(self._superseded(builds), referenced, report)
        if report.deleted_files or report.dropped_segments or report.tombstones:
            log.info(
                "gc: %d files, %d segments, %d tombstones",
                len(report.deleted_files),
                len(report.dropped_segments),
                len(report.tombstones),
            )
        return report

    # --- what may go ----------------------------------------------------------------------
    def _collectable_segments(self, expired_before: int) -> list[SegmentInfo]:
        """Dropped long enough, passed by the channel checkpoint, held by no querynode, not being indexed."""
        loaded = self._loaded()
        building = {
            si.segment_id
            for si in self.cat.segment_indexes.values()
            if si.state == "InProgress" and si.node_endpoint  # an indexnode may still write its files
        }
        out = []
        for s in self.cat.segments.values():
            if s.state != DROPPED or s.dropped_at_ms > expired_before or not self._checkpoint_passed(s):
                continue
            if s.id in building:
                continue
            if s.id in loaded or self.cat.ancestors(s) & loaded:
                continue  # a querynode serves it (or an input of it) until the successor is loaded
            out.append(s)
        return out

    def _checkpoint_passed(self, s: SegmentInfo) -> bool:
        """True when a replay of the channel can no longer meet the segment's inserts."""
        if not s.dml_position:
            return True
        raw = self.cat.checkpoints.get(s.vchannel)
        if raw is None:
            return s.collection_id not in self.cat.collections
        cp = json.loads(raw)
        if not cp.get("id"):
            return False
        return self._compare(base64.b64decode(cp["id"]), base64.b64decode(s.dml_position)) >= 0

    def _referenced(self, exclude: set[int]) -> set[str]:
        """Every file a segment that stays, or a finished build of one, points to."""
        keys: set[str] = set()
        for s in self.cat.segments.values():
            if s.id not in exclude:
                keys |= segment_files(s)
        for si in self.cat.segment_indexes.values():
            if si.state == "Finished" and si.segment_id not in exclude:
                keys.update(si.files)
        return keys

    @staticmethod
    def _prefixes(stone: Tombstone) -> list[str]:
        if stone.kind == "collection":
            return [segment_prefix(kind, stone.collection_id) for kind in KINDS]
        if stone.kind == "partition":
            return [segment_prefix(kind, stone.collection_id, stone.partition_id) for kind in KINDS]
        return list(stone.prefixes)

    def _superseded(self, builds: dict[int, tuple[str, set[str]]]) -> set[str]:
        """Index files of known builds that the build's record does not name (older attempts)."""
        out = set()
        for key in self.storage.list(f"{INDEX_FILES}/"):
            try:
                build_id = parse_log_key(key).log_id
            except ValueError:
                continue
            state, files = builds.get(build_id or 0, ("", set()))
            if (state == "Finished" and key not in files) or state == "Failed":
                out.add(key)
        return out

    def _delete(self, keys: set[str], referenced: set[str], report: GcReport) -> None:
        for key in sorted(keys):
            if key in referenced:
                log.error("gc: refusing to delete %s, a live segment or index build references it", key)
                continue
            self.storage.delete(key)
            report.deleted_files.append(key)
