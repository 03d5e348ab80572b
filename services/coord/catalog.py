"""The coordinator's metadata catalog: in-memory maps backed write-through by the KV store.

Every change is written to the KV store before it is visible in memory, so a restarted or
newly elected coordinator rebuilds exactly the same state with :meth:`Catalog.load`.
"""

from __future__ import annotations

import threading
import time
from typing import TypeVar

from common.binlog.keys import INDEX_FILES, segment_prefix
from common.kv.base import KV
from services.coord.keys import Keys
from services.coord.meta import (
    CollectionInfo,
    DatabaseInfo,
    IndexInfo,
    LoadInfo,
    PartitionInfo,
    Record,
    SegmentIndexInfo,
    SegmentInfo,
    Tombstone,
)

R = TypeVar("R", bound=Record)
TXN_LIMIT = 100  # keys per KV transaction: etcd refuses more than 128 operations in one


def _load(kv: KV, prefix: str, cls: type[R]) -> list[R]:
    return [cls.model_validate_json(item.value) for item in kv.scan(prefix)]


def now_ms() -> int:
    return int(time.time() * 1000)


def build_prefix(si: SegmentIndexInfo) -> str:
    """Where every version of one index build's files lives."""
    seg = segment_prefix(INDEX_FILES, si.collection_id, si.partition_id, si.segment_id)
    return f"{seg}{si.build_id}/"


class Catalog:
    def __init__(self, kv: KV, meta_root: str) -> None:
        self.kv = kv
        self.keys = Keys(meta_root)
        self.lock = threading.RLock()
        self.databases: dict[int, DatabaseInfo] = {}
        self.collections: dict[int, CollectionInfo] = {}
        self.partitions: dict[int, dict[int, PartitionInfo]] = {}  # coll -> part id -> info
        self.aliases: dict[tuple[int, str], int] = {}  # (db id, alias) -> collection id
        self.segments: dict[int, SegmentInfo] = {}
        self.checkpoints: dict[str, str] = {}  # vchannel -> b64 message id
        self.indexes: dict[int, IndexInfo] = {}
        self.segment_indexes: dict[int, SegmentIndexInfo] = {}  # build id -> info
        self.load_infos: dict[int, LoadInfo] = {}
        self.tombstones: dict[str, Tombstone] = {}  # KV key -> what garbage collection still owes

    def load(self) -> None:
        with self.lock:
            k = self.keys
            self.databases = {d.id: d for d in _load(self.kv, k.databases(), DatabaseInfo)}
            self.collections = {c.id: c for c in _load(self.kv, k.collections(), CollectionInfo)}
            self.partitions = {}
            for p in _load(self.kv, k.partitions(), PartitionInfo):
                self.partitions.setdefault(p.collection_id, {})[p.id] = p
            self.aliases = {}
            for item in self.kv.scan(k.aliases()):
                db_id, alias = item.key[len(k.aliases()) :].split("/", 1)
                self.aliases[(int(db_id), alias)] = int(item.value)
            self.segments = {s.id: s for s in _load(self.kv, k.segments(), SegmentInfo)}
            self.checkpoints = {
                item.key[len(k.channel_checkpoints()) :]: item.value.decode()
                for item in self.kv.scan(k.channel_checkpoints())
            }
            self.indexes = {i.id: i for i in _load(self.kv, k.indexes(), IndexInfo)}
            self.segment_indexes = {s.build_id: s for s in _load(self.kv, k.segment_indexes(), SegmentIndexInfo)}
            self.load_infos = {x.collection_id: x for x in _load(self.kv, k.load_infos(), LoadInfo)}
            # records left behind by a drop or create that crashed half-way belong to no collection
            live = set(self.collections)
            self.partitions = {c: p for c, p in self.partitions.items() if c in live}
            self.segments = {i: s for i, s in self.segments.items() if s.collection_id in live}
            self.indexes = {i: x for i, x in self.indexes.items() if x.collection_id in live}
            self.segment_indexes = {i: x for i, x in self.segment_indexes.items() if x.collection_id in live}
            self.load_infos = {c: x for c, x in self.load_infos.items() if c in live}
            self.tombstones = {
                item.key: Tombstone.model_validate_json(item.value) for item in self.kv.scan(k.tombstones())
            }

    # --- reads --------------------------------------------------------------------------
    def ancestors(self, seg: SegmentInfo) -> set[int]:
        """Every segment that compactions merged, directly or transitively, into ``seg``."""
        out: set[int] = set()
        todo = list(seg.compacted_from)
        while todo:
            sid = todo.pop()
            if sid in out:
                continue
            out.add(sid)
            parent = self.segments.get(sid)
            if parent is not None:
                todo.extend(parent.compacted_from)
        return out

    # --- writes -------------------------------------------------------------------------
    def save_database(self, db: DatabaseInfo) -> None:
        with self.lock:
            self.kv.put(self.keys.database(db.id), db.to_bytes())
            self.databases[db.id] = db

    def drop_database(self, db_id: int) -> None:
        with self.lock:
            self.kv.delete(self.keys.database(db_id))
            self.databases.pop(db_id, None)

    def save_collection(self, coll: CollectionInfo, partitions: list[PartitionInfo] = ()) -> None:  # type: ignore[assignment]
        with self.lock:
            # partitions first, the collection record last: it is the commit point (a crash in
            # between leaves partitions of no collection, which load() ignores)
            parts = [(self.keys.partition(coll.id, p.id), p.to_bytes()) for p in partitions]
            self._put_chunked(parts)
            self.kv.put(self.keys.collection(coll.db_id, coll.id), coll.to_bytes())
            self.collections[coll.id] = coll
            for p in partitions:
                self.partitions.setdefault(coll.id, {})[p.id] = p

    def replace_collection(self, old: CollectionInfo, new: CollectionInfo) -> None:
        """Save a changed collection record (same id); a move to another database moves its key
        in one transaction, so the collection is never in both databases or in neither."""
        with self.lock:
            new_key, old_key = self.keys.collection(new.db_id, new.id), self.keys.collection(old.db_id, old.id)
            self.kv.multi_save({new_key: new.to_bytes()}, [old_key] if old_key != new_key else [])
            self.collections[new.id] = new

    def drop_collection(self, coll: CollectionInfo) -> None:
        """Remove a collection and everything hanging off it.

        Deleting the collection record and writing its garbage-collection tombstone is the commit
        point (one write); what hangs off it goes by prefix afterwards, because etcd caps a
        transaction at 128 operations. After a crash in between, :meth:`load` ignores records
        whose collection is gone.
        """
        with self.lock:
            k = self.keys
            aliases = [k.alias(db, a) for (db, a), cid in self.aliases.items() if cid == coll.id]
            stone = Tombstone(kind="collection", collection_id=coll.id, dropped_at_ms=now_ms())
            stone_key = k.tombstone("collection", coll.id)
            self.kv.multi_save(
                {stone_key: stone.to_bytes()},
                [k.collection(coll.db_id, coll.id), k.load_info(coll.id), *aliases[:100]],
            )
            self.tombstones[stone_key] = stone
            for key in aliases[100:]:
                self.kv.delete(key)
            for v in coll.vchannels:
                self.kv.delete(k.channel_checkpoint(v))
            for prefix in (k.partitions(coll.id), k.segments(coll.id), f"{k.indexes()}{coll.id}/",
                           f"{k.segment_indexes()}{coll.id}/"):
                self.kv.delete_prefix(prefix)
            self.collections.pop(coll.id, None)
            self.partitions.pop(coll.id, None)
            self.load_infos.pop(coll.id, None)
            for v in coll.vchannels:
                self.checkpoints.pop(v, None)
            self.segments = {i: s for i, s in self.segments.items() if s.collection_id != coll.id}
            self.indexes = {i: x for i, x in self.indexes.items() if x.collection_id != coll.id}
            self.segment_indexes = {i: x for i, x in self.segment_indexes.items() if x.collection_id != coll.id}
            self.aliases = {a: cid for a, cid in self.aliases.items() if cid != coll.id}

    def save_partition(self, p: PartitionInfo) -> None:
        with self.lock:
            self.kv.put(self.keys.partition(p.collection_id, p.id), p.to_bytes())
            self.partitions.setdefault(p.collection_id, {})[p.id] = p

    def drop_partition(self, p: PartitionInfo) -> None:
        """Remove a partition, its segments and their index builds; leave a tombstone for its files."""
        with self.lock:
            deletes = [self.keys.partition(p.collection_id, p.id)]
            segs = [s for s in self.segments.values() if s.partition_id == p.id]
            deletes += [self.keys.segment(s.collection_id, s.partition_id, s.id) for s in segs]
            builds = [si for si in self.segment_indexes.values() if si.partition_id == p.id]
            deletes += [
                self.keys.segment_index(si.collection_id, si.partition_id, si.segment_id, si.build_id) for si in builds
            ]
            stone = Tombstone(
                kind="partition", collection_id=p.collection_id, partition_id=p.id, dropped_at_ms=now_ms()
            )
            stone_key = self.keys.tombstone("partition", p.collection_id, p.id)
            self.kv.multi_save({stone_key: stone.to_bytes()}, deletes[:1])  # the commit point
            self._delete_chunked(deletes[1:])
            self.tombstones[stone_key] = stone
            self.partitions.get(p.collection_id, {}).pop(p.id, None)
            for s in segs:
                self.segments.pop(s.id, None)
            for si in builds:
                self.segment_indexes.pop(si.build_id, None)

    def save_alias(self, db_id: int, alias: str, coll_id: int) -> None:
        with self.lock:
            self.kv.put(self.keys.alias(db_id, alias), str(coll_id).encode())
            self.aliases[(db_id, alias)] = coll_id

    def drop_alias(self, db_id: int, alias: str) -> None:
        with self.lock:
            self.kv.delete(self.keys.alias(db_id, alias))
            self.aliases.pop((db_id, alias), None)

    def save_segments(self, segs: list[SegmentInfo], checkpoint: tuple[str, str] | None = None) -> None:
        """Save segments and optionally a channel checkpoint: one atomic write up to etcd's
        transaction cap, else in chunks with the checkpoint in the last, so it never gets ahead
        of the segments it covers."""
        with self.lock:
            items = [(self.keys.segment(s.collection_id, s.partition_id, s.id), s.to_bytes()) for s in segs]
            if checkpoint is not None:
                items.append((self.keys.channel_checkpoint(checkpoint[0]), checkpoint[1].encode()))
            self._put_chunked(items)
            for s in segs:
                self.segments[s.id] = s
            if checkpoint is not None:
                self.checkpoints[checkpoint[0]] = checkpoint[1]

    def save_index(self, idx: IndexInfo) -> None:
        with self.lock:
            self.kv.put(self.keys.index(idx.collection_id, idx.id), idx.to_bytes())
            self.indexes[idx.id] = idx

    def drop_index(self, idx: IndexInfo) -> None:
        with self.lock:
            builds = [s for s in self.segment_indexes.values() if s.index_id == idx.id]
            deletes = [self.keys.index(idx.collection_id, idx.id)]
            deletes += [
                self.keys.segment_index(s.collection_id, s.partition_id, s.segment_id, s.build_id) for s in builds
            ]
            stone = Tombstone(
                kind="index",
                collection_id=idx.collection_id,
                index_id=idx.id,
                dropped_at_ms=now_ms(),
                prefixes=sorted(build_prefix(s) for s in builds),
            )
            stone_key = self.keys.tombstone("index", idx.collection_id, idx.id)
            self.kv.multi_save({stone_key: stone.to_bytes()}, deletes[:1])  # the commit point
            self._delete_chunked(deletes[1:])
            self.tombstones[stone_key] = stone
            self.indexes.pop(idx.id, None)
            for s in builds:
                self.segment_indexes.pop(s.build_id, None)

    def save_segment_index(self, si: SegmentIndexInfo) -> None:
        with self.lock:
            key = self.keys.segment_index(si.collection_id, si.partition_id, si.segment_id, si.build_id)
            self.kv.put(key, si.to_bytes())
            self.segment_indexes[si.build_id] = si

    def drop_segments(self, segment_ids: list[int], batch: int = 100) -> None:
        """Forget garbage-collected segments with their index builds (each segment atomically;
        several per KV transaction, within the store's limit of operations per transaction)."""
        with self.lock:
            deletes: list[str] = []
            done: list[int] = []
            for sid in segment_ids:
                s = self.segments.get(sid)
                if s is None:
                    continue
                builds = [si for si in self.segment_indexes.values() if si.segment_id == sid]
                keys = [self.keys.segment(s.collection_id, s.partition_id, s.id)]
                keys += [
                    self.keys.segment_index(si.collection_id, si.partition_id, si.segment_id, si.build_id)
                    for si in builds
                ]
                if deletes and len(deletes) + len(keys) > batch:
                    self._forget_segments(deletes, done)
                    deletes, done = [], []
                deletes += keys
                done.append(sid)
            if deletes:
                self._forget_segments(deletes, done)

    def _put_chunked(self, items: list[tuple[str, bytes]]) -> None:
        for start in range(0, len(items), TXN_LIMIT):
            self.kv.multi_save(dict(items[start : start + TXN_LIMIT]))

    def _delete_chunked(self, keys: list[str]) -> None:
        for start in range(0, len(keys), TXN_LIMIT):
            self.kv.multi_save({}, keys[start : start + TXN_LIMIT])

    def _forget_segments(self, deletes: list[str], segment_ids: list[int]) -> None:
        self.kv.multi_save({}, deletes)
        gone = set(segment_ids)
        for sid in segment_ids:
            self.segments.pop(sid, None)
        for build_id in [b for b, si in self.segment_indexes.items() if si.segment_id in gone]:
            del self.segment_indexes[build_id]

    def drop_tombstone(self, key: str) -> None:
        with self.lock:
            self.kv.delete(key)
            self.tombstones.pop(key, None)

    def save_load_info(self, info: LoadInfo) -> None:
        with self.lock:
            self.kv.put(self.keys.load_info(info.collection_id), info.to_bytes())
            self.load_infos[info.collection_id] = info

    def drop_load_info(self, coll_id: int) -> None:
        with self.lock:
            self.kv.delete(self.keys.load_info(coll_id))
            self.load_infos.pop(coll_id, None)
