"""The sealed segments one querynode holds, and the search/query execution over a set of segments.

A querynode is a *worker* for every sealed segment the coordinator placed on it, whichever node
leads the segment's shard (Milvus's querynode worker). It does not consume the channel: the
shard's leader (services/querynode/delegator.py) waits for tsafe, forwards deletes here, and asks
for the segments it routes to this node at a fixed query timestamp. The same execution functions
serve the leader's growing segments, so growing and sealed data are searched identically.

The search keyword arguments are opaque here: whatever the proxy sent (minus the filter, which is
compiled per node) becomes a :class:`SearchSpec`, so a new search option needs no change on the
way from the proxy to the workers.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np

from common.errors import Code, MilvusError
from common.expr import Filter
from common.index import metric_ascending
from common.reduce import Hits, merge_hits, merge_rows
from services.querynode.segment import SearchSpec, Segment

FILTER_KWARGS = ("expr", "expr_params")  # compiled per node; everything else goes to SearchSpec as is
_SPEC_FIELDS = {f.name for f in dataclasses.fields(SearchSpec)}


class SealedStore:
    """Sealed segments by id (each knows its vchannel), with the deletes forwarded to them.

    A segment loaded from object storage has the deletes of its delta logs only; the ones its
    shard's leader consumed since are in the leader's buffer. So a fresh copy (none held before)
    is *unready*: reads of it fail clearly until the leader's catch-up (``apply_deletes`` with
    ``ready``) has delivered that buffer. This holds also when the route does not change: a
    querynode restarted on the same endpoint reloads segments its leader still routes to it.
    """

    def __init__(self) -> None:
        self._segments: dict[int, Segment] = {}
        self._unready: set[int] = set()
        self._lock = threading.RLock()

    def add(self, seg: Segment, ready: bool = True) -> None:
        """Serve ``seg``; a copy it replaces (another index version) hands over the deletes it got
        (and its readiness). A fresh copy with ``ready=False`` waits for the leader's catch-up.

        Deletes are applied under the same lock, so none can reach the old copy after the hand-over
        and miss the new one: the leader forwards each delete once, to the endpoint, not the copy.
        """
        with self._lock:
            old = self._segments.get(seg.segment_id)
            if old is not None and old is not seg and not seg.inherit_deletes(old):
                raise MilvusError(
                    Code.SEGMENT_LOAD_FAILED,
                    f"segment {seg.segment_id} loaded with {seg.num_rows} rows differs from the copy "
                    f"served ({old.num_rows} rows): not replacing it",
                )
            if old is None and not ready:
                self._unready.add(seg.segment_id)
            if old is not None:  # it has every delete the old copy had
                seg.deltas_ts = max(seg.deltas_ts, old.deltas_ts)
            self._segments[seg.segment_id] = seg

    def remove(self, segment_ids: list[int]) -> None:
        with self._lock:
            for sid in segment_ids:
                self._segments.pop(sid, None)
                self._unready.discard(sid)

    def is_ready(self, segment_id: int) -> bool:
        with self._lock:
            return segment_id in self._segments and segment_id not in self._unready

    def get(self, segment_id: int) -> Segment | None:
        return self._segments.get(segment_id)

    def all(self) -> list[Segment]:
        with self._lock:
            return list(self._segments.values())

    def pick(self, vchannel: str, segment_ids: list[int], partitions: set[int] | None) -> list[Segment]:
        """The asked segments (all must be here: a missing one would make the answer partial)."""
        with self._lock:
            missing = [s for s in segment_ids if s not in self._segments]
            segs = [self._segments[s] for s in segment_ids if s in self._segments]
            waiting = [s for s in segment_ids if s in self._unready]
        if waiting and not missing:
            raise MilvusError(
                Code.SEGMENT_NOT_FOUND,
                f"segment not found[segment={waiting[0]}]: loaded on this query node but still waiting for "
                f"the deletes its shard leader buffered (channel {vchannel})",
            )
        if missing:
            raise MilvusError(
                Code.SEGMENT_NOT_FOUND,
                f"segment not found[segment={missing[0]}]: not loaded on this query node (channel {vchannel})",
            )
        return [s for s in segs if partitions is None or s.partition_id in partitions]

    def apply_deletes(
        self, vchannel: str, deletes: list[tuple[np.ndarray, int]], ready: list[int] | None = None,
        trimmed_to: int = 0,
    ) -> int:
        """Apply deletes of ``vchannel``; ``ready``: segments this catch-up completes (see above),
        from a leader's buffer that no longer has the deletes at or below ``trimmed_to``.

        A copy whose delta logs stop short of that (its watermark, ``Segment.deltas_ts``) may lack a
        delete nobody can give it any more: it is dropped, the catch-up fails, and the coordinator
        loads the segment again (its delta logs have grown since). The coordinator trims only below
        the copies it loaded, so this is the rare path: a worker that missed a forwarded delete and is
        caught up again long after, or a load the coordinator did not know of.
        """
        with self._lock:  # held while applying: see add()
            segs = [s for s in self._segments.values() if s.vchannel == vchannel]
            n = sum(seg.apply_delete(np.asarray(pks), int(ts)) for pks, ts in deletes for seg in segs)
            short = {s: self._segments[s].deltas_ts for s in ready or ()
                     if s in self._segments and self._segments[s].deltas_ts < trimmed_to}
            for sid in short:
                del self._segments[sid]
                self._unready.discard(sid)
            self._unready.difference_update(ready or ())
        if short:
            sid, upto = next(iter(short.items()))
            raise MilvusError(
                Code.SEGMENT_LOAD_FAILED,
                f"segment {sid} ({len(short)} in all) of channel {vchannel}: its copy's delta logs hold the "
                f"deletes up to ts {upto} only, but the shard leader has forgotten those up to ts {trimmed_to}; "
                "the copy is released to be loaded again",
            )
        return n

    def memory_used(self) -> int:
        return sum(s.memory_bytes() for s in self.all())


def search_segments(
    segments: list[Segment], query_ts: int, flt: Filter | None, kwargs: dict[str, Any]
) -> list[Hits]:
    """Top-k per segment (with output fields); segments without a hit are left out."""
    spec_args = {k: v for k, v in kwargs.items() if k not in FILTER_KWARGS}
    unknown = sorted(set(spec_args) - _SPEC_FIELDS)
    if unknown:  # never drop an option silently: the answer would ignore it
        raise MilvusError(Code.UNIMPLEMENTED, f"search option {unknown[0]} is not supported by this query node")
    spec = SearchSpec(filter=flt, **spec_args)
    parts: list[Hits] = []
    for seg in segments:
        if seg.num_rows == 0:  # an empty growing segment: nothing to find, and one part less to merge
            continue
        hits, offsets = seg.search(spec, query_ts)
        if not hits.filled.any():
            continue
        if spec.output_fields:
            hits.fields = seg.take(offsets.reshape(-1), spec.output_fields)
        parts.append(hits)
    return parts


def merge_search(parts: list[Hits], kwargs: dict[str, Any]) -> dict[str, Any]:
    if not parts:
        return {"empty": True}
    return merge_hits(parts, int(kwargs["k"]), metric_ascending(str(kwargs["metric"]))).to_wire()


def query_segments(
    segments: list[Segment],
    query_ts: int,
    flt: Filter | None,
    output_fields: list[str],
    limit: int | None,
    count_only: bool,
) -> dict[str, Any]:
    """Rows (merged, pk-ordered, limited) or the count of the matching rows of ``segments``."""
    if count_only:
        return {"count": sum(seg.count(flt, query_ts) for seg in segments)}
    rows = [seg.retrieve(flt, query_ts, output_fields, limit) for seg in segments]
    pk_name = segments[0].pk_name if segments else ""
    return {"rows": merge_rows(rows, pk_name, limit) if pk_name else {}}


def merge_query(replies: list[dict[str, Any]], pk_name: str, limit: int | None, count_only: bool) -> dict[str, Any]:
    if count_only:
        return {"count": sum(int(r["count"]) for r in replies)}
    rows = [r["rows"] for r in replies if r.get("rows")]
    return {"rows": merge_rows(rows, pk_name, limit) if rows else {}}
