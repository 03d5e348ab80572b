"""Every delete a shard leader has consumed, packed into arrays, for sealed copies that catch up.

A sealed copy a worker loads holds the deletes of its delta logs; the ones consumed since, the
leader sends it when the copy joins the shard's distribution (ShardDelegator.sync). So the leader
keeps the deletes of its channel until every copy it may still catch up has them in its delta
logs: the coordinator computes that point from the copies' watermarks (services/coord/
delta_watermark.py) and the leader trims to it (:meth:`DeleteLog.trim`). Kept as consumed — a
tuple of a numpy array and an int per message — a one-key delete cost ~216 bytes; packed into one
key array and one timestamp array per few thousand messages it costs the key and 8 bytes.

A catch-up reads a snapshot (the packed chunks never change once made) and asks which keys the
copy's segments may hold chunk by chunk, a slice of keys at a time, instead of one oracle call per
message; the answer is regrouped by timestamp into the (keys, ts) pairs workers apply.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from common.binlog import pack_deletes

Deletes = list[tuple[np.ndarray, int]]  # (keys, ts) pairs, as workers apply them

PACK_EVERY = 4096  # messages kept as they came before they are packed into one chunk
SLICE = 65_536  # keys per oracle call during a catch-up (bounds its keys x segments matrix)


class DeleteLog:
    """Appends from the channel's consumer and snapshots for catch-ups, both under the channel lock."""

    def __init__(self) -> None:
        self._chunks: list[tuple[np.ndarray, np.ndarray]] = []  # (keys, ts of each key), never changed
        self._loose: Deletes = []
        self._messages = 0
        self.trimmed_to = 0  # the deletes at or below this timestamp are gone

    def append(self, pks: np.ndarray, ts: int) -> None:
        if len(pks) == 0:
            return
        self._loose.append((pks, ts))
        self._messages += 1
        if len(self._loose) >= PACK_EVERY:
            self._chunks.append(pack_deletes(self._loose))
            self._loose = []

    def trim(self, upto: int) -> None:
        """Forget the deletes at or below ``upto``. Chunks are replaced, never changed, so a
        snapshot taken before stays whole."""
        if upto <= self.trimmed_to:
            return
        self.trimmed_to = upto
        chunks = []
        for keys, ts in self._chunks:
            keep = ts > upto
            if keep.all():
                chunks.append((keys, ts))
            elif keep.any():
                chunks.append((keys[keep], ts[keep]))
        self._chunks = chunks
        self._loose = [(pks, ts) for pks, ts in self._loose if ts > upto]

    def __len__(self) -> int:
        """Delete messages (with at least one key) consumed so far."""
        return self._messages

    def snapshot(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The log as (keys, ts) chunks; later appends do not change it."""
        return [*self._chunks, pack_deletes(self._loose)] if self._loose else list(self._chunks)

    def nbytes(self) -> int:
        packed = sum(int(k.nbytes + t.nbytes) for k, t in self._chunks)
        return packed + sum(int(p.nbytes) + 8 for p, _ in self._loose)


def select(
    chunks: list[tuple[np.ndarray, np.ndarray]], wanted: Callable[[np.ndarray], np.ndarray]
) -> Deletes:
    """The deletes of ``chunks`` whose keys ``wanted`` (keys -> bool per key) keeps, as (keys, ts)
    pairs, one per timestamp, keys in the order they were consumed."""
    keys_out: list[np.ndarray] = []
    ts_out: list[np.ndarray] = []
    for keys, ts in chunks:
        for start in range(0, len(keys), SLICE):
            k, t = keys[start : start + SLICE], ts[start : start + SLICE]
            mask = wanted(k)
            if mask.all():
                keys_out.append(k)
                ts_out.append(t)
            elif mask.any():
                keys_out.append(k[mask])
                ts_out.append(t[mask])
    if not keys_out:
        return []
    keys = np.concatenate(keys_out)
    ts = np.concatenate(ts_out)
    order = np.argsort(ts, kind="stable")
    keys, ts = keys[order], ts[order]
    bounds = np.flatnonzero(np.diff(ts)) + 1
    return [(group, int(ts[start])) for group, start in zip(np.split(keys, bounds), [0, *bounds.tolist()], strict=True)]
