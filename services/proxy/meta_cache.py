"""The proxy's cache of collection metadata (schema, channels, partitions, indexes).

Every request needs its collection's schema; asking the coordinator each time would double
the latency of a search. Entries expire after a short time and are dropped at once when
this proxy changes the collection or a node answers that the cache is stale.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from common.errors import Code, MilvusError
from common.rpc import Caller
from common.schema import Schema

TTL_SECONDS = 3.0


@dataclass
class CollectionMeta:
    id: int
    name: str
    db_name: str
    schema: Schema
    vchannels: list[str]
    pchannels: list[str]
    shards_num: int
    consistency_level: int
    created_ts: int
    properties: dict[str, str]
    partitions: dict[str, int]  # name -> id
    aliases: list[str]
    fetched: float = field(default_factory=time.monotonic)

    @classmethod
    def from_coord(cls, d: dict[str, Any]) -> CollectionMeta:
        return cls(
            id=d["id"],
            name=d["name"],
            db_name=d["db_name"],
            schema=Schema.from_bytes(base64.b64decode(d["schema"])),
            vchannels=d["vchannels"],
            pchannels=d["pchannels"],
            shards_num=d["shards_num"],
            consistency_level=d["consistency_level"],
            created_ts=d["created_ts"],
            properties=d["properties"],
            partitions={p["name"]: p["id"] for p in d["partitions"]},
            aliases=d.get("aliases", []),
        )

    def partition_id(self, name: str) -> int:
        pid = self.partitions.get(name)
        if pid is None:
            raise MilvusError(Code.PARTITION_NOT_FOUND, f"partition not found[partition={name}]")
        return pid


class MetaCache:
    def __init__(self, coord: Caller) -> None:
        self.coord = coord
        self._by_name: dict[tuple[str, str], CollectionMeta] = {}
        self._indexes: dict[int, tuple[float, list[dict[str, Any]]]] = {}
        self._leaders: dict[int, dict[str, list[str]]] = {}
        self._lock = threading.Lock()

    def get(self, db: str, name: str) -> CollectionMeta:
        if not name:
            raise MilvusError(Code.PARAMETER_INVALID, "collection name should not be empty")
        key = (db or "default", name)
        with self._lock:
            meta = self._by_name.get(key)
        if meta is not None and time.monotonic() - meta.fetched < TTL_SECONDS:
            return meta
        meta = CollectionMeta.from_coord(self.coord.call("describe_collection", db_name=key[0], name=name))
        with self._lock:
            self._by_name[key] = meta
        return meta

    def put(self, db: str, name: str, described: dict[str, Any]) -> CollectionMeta:
        """Cache what the coordinator just described (DescribeCollection refreshes the cache)."""
        meta = CollectionMeta.from_coord(described)
        with self._lock:
            self._by_name[(db or "default", name)] = meta
        return meta

    def invalidate(self, db: str = "", name: str = "", collection_id: int = 0) -> None:
        with self._lock:
            if name:
                self._by_name.pop((db or "default", name), None)
            if collection_id:
                self._by_name = {k: v for k, v in self._by_name.items() if v.id != collection_id}
                self._indexes.pop(collection_id, None)
                self._leaders.pop(collection_id, None)
            if not name and not collection_id:
                self._by_name.clear()
                self._indexes.clear()
                self._leaders.clear()

    def indexes(self, collection_id: int) -> list[dict[str, Any]]:
        with self._lock:
            hit = self._indexes.get(collection_id)
        if hit is not None and time.monotonic() - hit[0] < TTL_SECONDS:
            return hit[1]
        try:
            found: list[dict[str, Any]] = self.coord.call("describe_index", collection_id=collection_id)
        except MilvusError as exc:
            if exc.code != Code.INDEX_NOT_FOUND:
                raise
            found = []
        with self._lock:
            self._indexes[collection_id] = (time.monotonic(), found)
        return found

    def shard_leaders(self, collection_id: int) -> dict[str, list[str]]:
        with self._lock:
            hit = self._leaders.get(collection_id)
        if hit is not None:
            return hit
        leaders: dict[str, list[str]] = self.coord.call("get_shard_leaders", collection_id=collection_id)
        with self._lock:
            self._leaders[collection_id] = leaders
        return leaders

    def drop_leaders(self, collection_id: int) -> None:
        with self._lock:
            self._leaders.pop(collection_id, None)
