"""Which sealed segments of a shard may hold a primary key: the leader's PK oracle, as Milvus's.

A delete names keys, not segments. The shard leader forwards every delete it consumes to the
workers serving the shard's sealed segments; sending each delete to each worker costs an RPC per
worker per delete, and a key scan per segment there. The stats log every flush, compaction and
import writes (common/binlog/stats.py: PK min/max and a bloom filter, no false negatives) says which
segments may hold a key, so the leader sends a worker only the keys its segments may hold, and
nothing when none.

The coordinator names each routed segment's stats logs when it syncs the distribution; the leader
reads them once per segment. A segment whose stats are not known (not named, unreadable: retried
at the next sync) may hold every key: routing sends too much, never too little.

This runs for every delete a shard consumes, against every sealed segment of the shard, so for
integer keys the min/max test is one numpy comparison of the batch against all segments' ranges
and only the segments with a key in range probe their bloom filters, with the batch hashed once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

import numpy as np

from common.binlog import SegmentPkStats
from common.binlog.bloom import hash_keys
from common.storage.base import ObjectStorage


class _Known:
    """One consistent view: every segment's stats, and the integer-keyed ones' ranges as arrays."""

    def __init__(self, stats: dict[int, SegmentPkStats]) -> None:
        self.stats = stats
        ranged = [(sid, b) for sid, st in stats.items() if (b := st.bounds()) is not None and isinstance(b[0], int)]
        self.ids = np.array([sid for sid, _ in ranged], dtype=np.int64)
        self.lo = np.array([b[0] for _, b in ranged], dtype=np.int64)
        self.hi = np.array([b[1] for _, b in ranged], dtype=np.int64)

    def masks(self, keys: np.ndarray) -> dict[int, np.ndarray] | None:
        """Per integer-keyed segment with a key in its range: which keys it may hold (a segment
        left out holds none). None when ``keys`` are not integers (ask each segment instead)."""
        if keys.dtype.kind not in "iu":
            return None
        k = keys.astype(np.int64, copy=False)
        in_range = (k[:, None] >= self.lo[None, :]) & (k[:, None] <= self.hi[None, :])
        cols = np.flatnonzero(in_range.any(axis=0))
        if cols.size == 0:
            return {}
        hashes = hash_keys(k)
        return {int(self.ids[j]): self.stats[int(self.ids[j])].may_contain(k, hashes) for j in cols}


class PkOracle:
    def __init__(self, storage: ObjectStorage) -> None:
        self._storage = storage
        self._known = _Known({})
        self._lock = threading.Lock()

    def add(self, segments: Mapping[int, tuple[list[str], int]]) -> None:
        """Learn the stats of ``segments`` (id -> (stats log keys, rows)) not known so far (or
        unknown: a read that failed is tried again). Reads run outside the lock."""
        with self._lock:
            known = self._known.stats
            todo = {sid: v for sid, v in segments.items() if sid not in known or known[sid].unknown}
        if not todo:
            return
        fresh = {sid: SegmentPkStats.read(self._storage.get, list(keys), rows) for sid, (keys, rows) in todo.items()}
        with self._lock:
            self._known = _Known({**self._known.stats, **fresh})

    def retain(self, segment_ids: Iterable[int]) -> None:
        """Forget every segment but these (the ones routed now)."""
        keep = set(segment_ids)
        with self._lock:
            if keep >= self._known.stats.keys():
                return
            self._known = _Known({sid: st for sid, st in self._known.stats.items() if sid in keep})

    def stats(self, segment_id: int) -> SegmentPkStats | None:
        with self._lock:
            return self._known.stats.get(segment_id)

    def split(self, pks: np.ndarray, placement: Mapping[str, Iterable[int]]) -> dict[str, np.ndarray]:
        """Per endpoint of ``placement`` (endpoint -> segment ids), the keys of ``pks`` its segments
        may hold; endpoints whose segments hold none of them are left out."""
        arr = np.asarray(pks)
        with self._lock:
            known = self._known
        masks = known.masks(arr)
        out: dict[str, np.ndarray] = {}
        for endpoint, sids in placement.items():
            mask = _held(known, masks, arr, sids)
            if mask.all():
                out[endpoint] = arr
            elif mask.any():
                out[endpoint] = arr[mask]
        return out

    def may_contain(self, pks: np.ndarray, segment_ids: Iterable[int]) -> np.ndarray:
        """Per key: whether any of ``segment_ids`` may hold it (an unknown segment holds all)."""
        arr = np.asarray(pks)
        with self._lock:
            known = self._known
        return _held(known, known.masks(arr), arr, segment_ids)


def _held(
    known: _Known, masks: dict[int, np.ndarray] | None, keys: np.ndarray, segment_ids: Iterable[int]
) -> np.ndarray:
    """Per key: whether any of ``segment_ids`` may hold it; ``masks`` from :meth:`_Known.masks`."""
    mask = np.zeros(len(keys), dtype=bool)
    for sid in segment_ids:
        st = known.stats.get(sid)
        if st is None or st.unknown:
            mask[:] = True
            return mask
        m = st.may_contain(keys) if masks is None else masks.get(sid)
        if m is not None:
            mask |= m
    return mask
