"""Root coordination: databases, collections, partitions and aliases (the DDL of Milvus).

Each operation validates, allocates ids and channels, and saves one catalog record; the data
and query sides learn about collections from the catalog.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from pymilvus.grpc_gen import schema_pb2

from common import channels, limits
from common.collection_props import check_collection_props, check_timezone_prop
from common.errors import Code, MilvusError, collection_not_found, invalid
from common.rpc import rpc
from common.schema import Schema
from common.timestamptz import DEFAULT_TIMEZONE, TIMEZONE_KEY
from services.coord.context import CoordContext
from services.coord.meta import CollectionInfo, DatabaseInfo, PartitionInfo
from services.coord.proxy_cache import invalidates_proxy_cache

DEFAULT_DB = "default"
DEFAULT_DB_ID = 1
DEFAULT_PARTITION = "_default"
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _validate_name(kind: str, name: str) -> None:
    if not name:
        raise invalid(f"the length of {kind} name must be not empty")
    if len(name) > 255:
        raise invalid(f"the length of {kind} name must be not greater than limit 255")
    if not (name[0].isalpha() or name[0] == "_"):
        raise invalid(f"the first character of {kind} name must be an underscore or letter: {name}")
    if not _NAME_RE.match(name):
        raise invalid(f"{kind} name can only contain numbers, letters and underscores: invalid {kind} name {name}")


def collection_summary(c: CollectionInfo) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "db_name": c.db_name,
        "db_id": c.db_id,
        "schema": c.schema_b64,
        "shards_num": c.shards_num,
        "vchannels": c.vchannels,
        "pchannels": c.pchannels,
        "consistency_level": c.consistency_level,
        "created_ts": c.created_ts,
        "properties": c.properties,
    }


class RootCoord:
    def __init__(self, ctx: CoordContext) -> None:
        self.ctx = ctx
        self.cat = ctx.catalog
        self._next_pchannel = 0

    def bootstrap(self) -> None:
        if DEFAULT_DB_ID not in self.cat.databases:
            self.cat.save_database(DatabaseInfo(id=DEFAULT_DB_ID, name=DEFAULT_DB, created_ts=self.ctx.tso.alloc()))
        self._next_pchannel = len(self.cat.collections)

    # --- lookups ------------------------------------------------------------------------
    def db(self, name: str) -> DatabaseInfo:
        name = name or DEFAULT_DB
        for d in self.cat.databases.values():
            if d.name == name:
                return d
        raise MilvusError(Code.DATABASE_NOT_FOUND, f"database not found[database={name}]")

    def find(self, db_name: str, name: str) -> CollectionInfo | None:
        db = self.db(db_name)
        coll_id = self.cat.aliases.get((db.id, name))
        for c in self.cat.collections.values():
            if c.db_id == db.id and (c.name == name or c.id == coll_id):
                return c
        return None

    def get(self, db_name: str, name: str) -> CollectionInfo:
        c = self.find(db_name, name)
        if c is None:
            raise collection_not_found(name, db_name or DEFAULT_DB)
        return c

    def by_id(self, coll_id: int) -> CollectionInfo:
        c = self.cat.collections.get(coll_id)
        if c is None:
            raise MilvusError(Code.COLLECTION_NOT_FOUND, f"collection not found[collection={coll_id}]")
        return c

    # --- databases ----------------------------------------------------------------------
    @rpc
    def list_databases(self) -> list[dict[str, Any]]:
        return [d.model_dump() for d in sorted(self.cat.databases.values(), key=lambda d: d.id)]

    @rpc
    def create_database(self, name: str, properties: dict[str, str] | None = None) -> None:
        _validate_name("database", name)
        check_timezone_prop(properties or {})
        with self.cat.lock:
            if any(d.name == name for d in self.cat.databases.values()):
                raise invalid(f"database already exist: {name}")
            limits.check_database_count(self.ctx.cfg.quota, len(self.cat.databases))
            self.cat.save_database(
                DatabaseInfo(
                    id=self.ctx.ids.alloc(),
                    name=name,
                    created_ts=self.ctx.tso.alloc(),
                    properties=properties or {},
                )
            )

    @rpc
    def drop_database(self, name: str) -> None:
        if name == DEFAULT_DB:
            raise invalid("can not drop default database")
        with self.cat.lock:
            try:
                db = self.db(name)
            except MilvusError:
                return
            if any(c.db_id == db.id for c in self.cat.collections.values()):
                raise invalid(f"database:{name} not empty, must drop all collections before drop database")
            self.cat.drop_database(db.id)

    @rpc
    def describe_database(self, name: str) -> dict[str, Any]:
        return self.db(name).model_dump()

    # --- collections --------------------------------------------------------------------
    @rpc
    def create_collection(
        self,
        db_name: str,
        schema_proto: bytes,
        shards_num: int = 0,
        consistency_level: int = 2,
        properties: dict[str, str] | None = None,
        num_partitions: int = 0,
    ) -> int:
        proto = schema_pb2.CollectionSchema()
        try:
            proto.ParseFromString(schema_proto)
        except Exception as exc:
            raise invalid(f"invalid collection schema: {exc}") from exc
        _validate_name("collection", proto.name)
        schema = Schema.from_proto(proto)
        check_collection_props(properties or {})
        schema = schema.with_properties(properties or {})  # every node reads the TTL & co. from the schema
        if shards_num <= 0:
            shards_num = self.ctx.cfg.shards_num
        limits.check_shard_num(self.ctx.cfg.quota, shards_num)
        with self.cat.lock:
            db = self.db(db_name)
            if TIMEZONE_KEY not in (properties or {}):  # Milvus 2.6: every collection gets one
                properties = dict(properties or {}) | {TIMEZONE_KEY: db.properties.get(TIMEZONE_KEY, DEFAULT_TIMEZONE)}
                schema = schema.with_properties(properties)
            existing = self.find(db_name, proto.name)
            if existing is not None:
                if (db.id, proto.name) in self.cat.aliases:
                    raise MilvusError(
                        Code.ALIAS_COLLECTION_NAME_CONFLICT,
                        f"collection name [{proto.name}] conflicts with an existing alias",
                    )
                same = replace(existing.parsed_schema, properties=schema.properties).to_proto() == schema.to_proto()
                if same and existing.shards_num == shards_num:
                    return existing.id  # Milvus: creating the same collection again succeeds
                raise invalid(f"create duplicate collection with different parameters, collection: {proto.name}")
            in_db = sum(1 for c in self.cat.collections.values() if c.db_id == db.id)
            limits.check_collection_count(self.ctx.cfg.quota, db.name, in_db, len(self.cat.collections))
            coll_id = self.ctx.ids.alloc()
            count = self.ctx.cfg.stream.pchannel_count
            prefix = self.ctx.cfg.stream.topic_prefix
            pchans = [channels.pchannel_name(prefix, (self._next_pchannel + i) % count) for i in range(shards_num)]
            self._next_pchannel += shards_num
            vchans = [channels.vchannel_name(p, coll_id, i) for i, p in enumerate(pchans)]
            ts = self.ctx.tso.alloc()
            info = CollectionInfo(
                id=coll_id,
                db_id=db.id,
                db_name=db.name,
                name=proto.name,
                schema_b64=CollectionInfo.encode_schema(schema),
                shards_num=shards_num,
                vchannels=vchans,
                pchannels=pchans,
                consistency_level=consistency_level,
                created_ts=ts,
                properties=properties or {},
                description=proto.description,
            )
            parts = [self._new_partition(coll_id, DEFAULT_PARTITION, ts)]
            if schema.partition_key is not None:
                n = num_partitions or 16
                parts = [self._new_partition(coll_id, f"{DEFAULT_PARTITION}_{i}", ts) for i in range(n)]
            self.cat.save_collection(info, parts)
            return coll_id

    def _new_partition(self, coll_id: int, name: str, ts: int) -> PartitionInfo:
        return PartitionInfo(id=self.ctx.ids.alloc(), collection_id=coll_id, name=name, created_ts=ts)

    @rpc
    def describe_collection(self, db_name: str, name: str = "", collection_id: int = 0) -> dict[str, Any]:
        c = self.by_id(collection_id) if collection_id else self.get(db_name, name)
        out = collection_summary(c)
        out["partitions"] = [p.model_dump() for p in self.partitions_of(c.id)]
        out["aliases"] = [a for (db, a), cid in self.cat.aliases.items() if cid == c.id]
        return out

    @rpc
    def list_collections(self, db_name: str) -> list[dict[str, Any]]:
        db = self.db(db_name)
        colls = [c for c in self.cat.collections.values() if c.db_id == db.id]
        return [{"id": c.id, "name": c.name, "created_ts": c.created_ts} for c in sorted(colls, key=lambda c: c.id)]

    def partitions_of(self, coll_id: int) -> list[PartitionInfo]:
        return sorted(self.cat.partitions.get(coll_id, {}).values(), key=lambda p: p.id)

    # --- partitions ---------------------------------------------------------------------
    def create_partition(self, db_name: str, collection: str, partition: str) -> None:
        _validate_name("partition", partition)
        with self.cat.lock:
            c = self.get(db_name, collection)
            if c.parsed_schema.partition_key is not None:
                raise invalid("disable create partition if partition key mode is used")
            parts = self.partitions_of(c.id)
            if any(p.name == partition for p in parts):
                return
            limits.check_partition_count(self.ctx.cfg.quota, len(parts), c.name)
            self.cat.save_partition(self._new_partition(c.id, partition, self.ctx.tso.alloc()))

    def partition(self, c: CollectionInfo, name: str) -> PartitionInfo:
        for p in self.partitions_of(c.id):
            if p.name == name:
                return p
        raise MilvusError(Code.PARTITION_NOT_FOUND, f"partition not found[partition={name}]")

    # --- aliases ------------------------------------------------------------------------
    @rpc
    @invalidates_proxy_cache
    def create_alias(self, db_name: str, collection: str, alias: str) -> None:
        _validate_name("alias", alias)
        with self.cat.lock:
            db = self.db(db_name)
            c = self.get(db_name, collection)
            if any(x.db_id == db.id and x.name == alias for x in self.cat.collections.values()):
                raise MilvusError(
                    Code.ALIAS_COLLECTION_NAME_CONFLICT,
                    f"alias and collection name conflict[database={db.name}][alias={alias}]",
                )
            if (db.id, alias) in self.cat.aliases:
                raise MilvusError(Code.ALIAS_ALREADY_EXIST, f"alias already exist[alias={alias}]")
            self.cat.save_alias(db.id, alias, c.id)

    @rpc
    @invalidates_proxy_cache
    def alter_alias(self, db_name: str, collection: str, alias: str) -> None:
        with self.cat.lock:
            db = self.db(db_name)
            c = self.get(db_name, collection)
            if (db.id, alias) not in self.cat.aliases:
                raise MilvusError(Code.ALIAS_NOT_FOUND, f"alias not found[database={db.name}][alias={alias}]")
            self.cat.save_alias(db.id, alias, c.id)

    @rpc
    @invalidates_proxy_cache
    def drop_alias(self, db_name: str, alias: str) -> None:
        with self.cat.lock:
            db = self.db(db_name)
            self.cat.drop_alias(db.id, alias)

    @rpc
    def list_aliases(self, db_name: str, collection: str = "") -> list[dict[str, Any]]:
        db = self.db(db_name)
        out = []
        for (d, alias), cid in sorted(self.cat.aliases.items()):
            c = self.cat.collections.get(cid)
            if d == db.id and c is not None and (not collection or c.name == collection):
                out.append({"alias": alias, "collection": c.name})
        return out

    # --- clocks -------------------------------------------------------------------------
    @rpc
    def alloc_timestamp(self, count: int = 1) -> int:
        return self.ctx.tso.alloc(count)

    @rpc
    def alloc_ids(self, count: int) -> int:
        if count <= 0:
            raise invalid(f"invalid id count {count}")
        return self.ctx.ids.alloc(count)
