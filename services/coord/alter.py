"""Changing what exists: AddCollectionField, Alter{Collection,CollectionField,Index,Database},
RenameCollection and TruncateCollection, with Milvus's checks, codes and messages.

Each change is one catalog write (the commit point). A change the data path must know — a new
field, collection properties such as the TTL, a truncate point — is then pushed, as the whole
new schema (properties travel inside it), to every querynode and datanode, which adopt it
before the DDL returns (Milvus broadcasts the same thing on the collection's channels). A node
the push misses still converges: channels and segments are always (re)placed with the catalog's
schema, and a datanode that meets a field it does not know asks for the schema itself.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Any

from pymilvus.grpc_gen import schema_pb2
from pymilvus.grpc_gen.schema_pb2 import DataType

from common import collection_props as cp
from common.errors import Code, MilvusError
from common.rpc import rpc
from common.schema import DYNAMIC_FIELD_NAME, INTERNAL_PREFIX, Field, Schema
from common.schema_rules import MAX_ARRAY_CAPACITY, MAX_VARCHAR_LENGTH, check_collection_name, check_raw_default
from services.coord.catalog import now_ms
from services.coord.context import CoordContext
from services.coord.data import DataCoord
from services.coord.index import IndexCoord
from services.coord.meta import DROPPED, FLUSHED, SEALED, CollectionInfo
from services.coord.proxy_cache import invalidates_proxy_cache
from services.coord.root import DEFAULT_DB, RootCoord

log = logging.getLogger(__name__)
PUSH_TIMEOUT_SECONDS = 5.0


def _plain(msg: str) -> MilvusError:
    """A Go error without a merr code: Milvus reports it as code 65535."""
    return MilvusError(Code.UNEXPECTED, msg)


def rebuild(coll: CollectionInfo, schema: Schema | None = None, **changes: Any) -> CollectionInfo:
    """A fresh record (a model_copy would keep the stale cached parsed schema)."""
    data = coll.model_dump() | changes
    if schema is not None:
        data["schema_b64"] = CollectionInfo.encode_schema(schema)
    return CollectionInfo.model_validate(data)


class AlterCoord:
    def __init__(self, ctx: CoordContext, root: RootCoord, data: DataCoord, index: IndexCoord) -> None:
        self.ctx = ctx
        self.cat = ctx.catalog
        self.root = root
        self.data = data
        self.index = index
        self._push_lock = threading.Lock()

    # --- propagation --------------------------------------------------------------------
    def push_schema(self, collection_id: int) -> None:
        """Send the collection's current schema to every querynode and datanode (serialised, so a
        node never receives an older schema after a newer one)."""
        with self._push_lock:
            with self.cat.lock:
                coll = self.cat.collections.get(collection_id)
                if coll is None:
                    return
                schema_b64 = coll.schema_b64
            for role in ("querynode", "datanode"):
                for node in self.ctx.nodes(role):
                    try:
                        self.ctx.router.client(node.endpoint).call(
                            "update_schema", timeout=PUSH_TIMEOUT_SECONDS, collection_id=collection_id,
                            schema=schema_b64)
                    except MilvusError as exc:
                        log.warning("schema of collection %d not pushed to %s %s: %s", collection_id, role,
                                    node.endpoint, exc.message)

    def _save(self, old: CollectionInfo, new: CollectionInfo) -> None:
        self.cat.replace_collection(old, new)

    # --- AddCollectionField -------------------------------------------------------------
    @rpc
    @invalidates_proxy_cache
    def add_collection_field(self, db_name: str, collection: str, field_schema: bytes) -> int:
        """Append a nullable field; returns its id. Existing rows read as its default, else null."""
        fs = schema_pb2.FieldSchema()
        try:
            fs.ParseFromString(field_schema)
        except Exception as exc:  # protobuf raises DecodeError
            raise MilvusError(Code.PARAMETER_INVALID, f"failed to unmarshal field schema: {exc}") from exc
        check_raw_default(fs)
        new = replace(Field.from_proto(fs), field_id=0)
        with self.cat.lock:
            coll = self.root.get(db_name, collection)
            grown = coll.parsed_schema.with_field(new)
            self._save(coll, rebuild(coll, grown))
            field_id = grown.fields[-1].field_id
        self.push_schema(coll.id)
        return field_id

    # --- AlterCollection ----------------------------------------------------------------
    @rpc
    @invalidates_proxy_cache
    def alter_collection(
        self, db_name: str, collection: str, properties: dict[str, str], delete_keys: list[str]
    ) -> None:
        if properties and delete_keys:
            raise cp.invalid("cannot provide both DeleteKeys and ExtraParams")
        if not properties and not delete_keys:
            raise cp.invalid("no properties or delete keys provided")
        if cp.DYNAMIC_KEY in delete_keys:
            raise cp.invalid(f"cannot delete key {cp.DYNAMIC_KEY}, dynamic field schema could support set to "
                             "true/false")
        if cp.DYNAMIC_KEY in properties:
            self._alter_dynamic(db_name, collection, properties)
            return
        cp.check_collection_props(properties)
        with self.cat.lock:
            coll = self.root.get(db_name, collection)
            loaded = coll.id in self.cat.load_infos
            if loaded and (cp.MMAP_KEY in properties or cp.LAZYLOAD_KEY in properties):
                raise cp.collection_loaded(collection, "can not alter mmap properties if collection loaded")
            for key in delete_keys:
                if loaded and key in (cp.MMAP_KEY, cp.LAZYLOAD_KEY, cp.WARMUP_KEY):
                    what = "mmap" if key == cp.MMAP_KEY else key
                    raise cp.collection_loaded(collection, f"can not delete {what} properties if collection loaded")
            props = dict(coll.properties)
            description = coll.description
            for key, value in properties.items():
                if key == cp.DESCRIPTION_KEY:
                    description = value
                else:
                    props[key] = value
            for key in delete_keys:
                props.pop(key, None)
            if props == coll.properties and description == coll.description:
                return  # nothing changes: idempotent, as Milvus
            internal = {k: v for k, v in coll.parsed_schema.properties if k.startswith(INTERNAL_PREFIX)}
            schema = replace(coll.parsed_schema.with_properties(props | internal), description=description)
            self._save(coll, rebuild(coll, schema, properties=props, description=description))
        self.push_schema(coll.id)

    def _alter_dynamic(self, db_name: str, collection: str, properties: dict[str, str]) -> None:
        if len(properties) != 1:
            raise cp.invalid("cannot alter dynamic schema with other properties at the same time")
        raw = properties[cp.DYNAMIC_KEY].strip().lower()
        if raw not in ("true", "false"):
            raise cp.invalid(f"invalid dynamic schema property value: {properties[cp.DYNAMIC_KEY]}")
        with self.cat.lock:
            coll = self.root.get(db_name, collection)
            schema = coll.parsed_schema
            if schema.enable_dynamic_field == (raw == "true"):
                return
            if raw == "false":
                raise cp.invalid("dynamic schema cannot supported to be disabled")
            meta = Field(field_id=max(f.field_id for f in schema.fields) + 1, name=DYNAMIC_FIELD_NAME,
                         dtype=DataType.JSON, is_dynamic=True, description="dynamic schema")
            grown = replace(schema, fields=(*schema.fields, meta), enable_dynamic_field=True,
                            version=schema.version + 1)
            self._save(coll, rebuild(coll, grown))
        self.push_schema(coll.id)

    # --- AlterCollectionField -----------------------------------------------------------
    @rpc
    @invalidates_proxy_cache
    def alter_collection_field(
        self, db_name: str, collection: str, field_name: str, properties: dict[str, str], delete_keys: list[str]
    ) -> None:
        with self.cat.lock:
            coll = self.root.get(db_name, collection)
            schema = coll.parsed_schema
            loaded = coll.id in self.cat.load_infos
            found = schema.get(field_name)
            for key, value in properties.items():
                if key not in cp.FIELD_ALTERABLE:
                    raise cp.invalid(f"{key} does not allow update in collection field param")
                if key == cp.MMAP_KEY and loaded:
                    raise cp.collection_loaded(collection, "can not alter collection field properties if "
                                                           "collection loaded")
                if key == cp.WARMUP_KEY and loaded:
                    raise cp.collection_loaded(collection, "can not alter warmup if collection loaded")
                cp.check_bool(key, value)
                if key == "max_length":
                    _check_max_length(found, field_name, value)
                if key == "max_capacity":
                    _check_max_capacity(found, field_name, value)
            for key in delete_keys:
                if key not in cp.FIELD_DROPPABLE:
                    raise cp.invalid(f"{key} is not allowed to drop in collection field param")
                if loaded:
                    raise cp.collection_loaded(collection, "can not drop collection field properties if "
                                                           "collection loaded")
            if found is None or found.is_dynamic:
                raise cp.invalid(f"field {field_name} does not exist in collection")
            altered = _altered(found, properties, delete_keys)
            if altered == found:
                return
            self._save(coll, rebuild(coll, schema.with_altered_field(altered)))
        self.push_schema(coll.id)

    # --- RenameCollection ---------------------------------------------------------------
    @rpc
    @invalidates_proxy_cache
    def rename_collection(self, db_name: str, old_name: str, new_name: str, new_db_name: str = "") -> None:
        db_name = db_name or DEFAULT_DB
        new_db_name = new_db_name or db_name
        check_collection_name(new_name)
        if not old_name:
            raise cp.invalid("old collection name should not be empty")
        if db_name == new_db_name and old_name == new_name:
            raise cp.invalid("collection name or database name should be different")
        with self.cat.lock:
            target = next((d for d in self.cat.databases.values() if d.name == new_db_name), None)
            if target is None:
                raise _plain(f"target database:{new_db_name} not found")
            source = self.root.db(db_name)
            if (source.id, old_name) in self.cat.aliases:
                raise _plain(f"unsupported use an alias to rename collection, alias:{old_name}")
            if (target.id, new_name) in self.cat.aliases:
                raise _plain(f"cannot rename collection to an existing alias: {new_name}")
            if self.root.find(new_db_name, new_name) is not None:
                raise _plain(f"duplicated new collection name {new_db_name}:{new_name} with other collection name "
                             "or alias")
            coll = self.root.get(db_name, old_name)
            if coll.db_id != target.id and any(cid == coll.id for cid in self.cat.aliases.values()):
                raise _plain("fail to rename db name, must drop all aliases of this collection before rename")
            schema = replace(coll.parsed_schema, name=new_name)
            self._save(coll, rebuild(coll, schema, name=new_name, db_id=target.id, db_name=target.name))
        self.push_schema(coll.id)

    # --- AlterDatabase ------------------------------------------------------------------
    @rpc
    def alter_database(self, name: str, properties: dict[str, str], delete_keys: list[str]) -> None:
        if not name:
            raise cp.invalid("alter database failed, database name does not exists")
        if not properties and not delete_keys:
            raise cp.invalid("alter database with empty properties and delete keys, expected to set either "
                             "properties or delete keys")
        if properties and delete_keys:
            raise cp.invalid("alter database cannot modify properties and delete keys at the same time")
        for key, value in properties.items():
            cp.check_bool(key, value)
        cp.check_timezone_prop(properties)
        with self.cat.lock:
            try:
                db = self.root.db(name)
            except MilvusError as exc:
                raise MilvusError(exc.code, f"failed to get database by name: {exc.message}") from exc
            props = dict(db.properties) | properties
            for key in delete_keys:
                props.pop(key, None)
            if props != db.properties:
                self.cat.save_database(db.model_copy(update={"properties": props}))

    # --- AlterIndex ---------------------------------------------------------------------
    @rpc
    @invalidates_proxy_cache
    def alter_index(
        self, collection_id: int, index_name: str, properties: dict[str, str], delete_keys: list[str]
    ) -> None:
        if delete_keys and properties:
            raise cp.invalid("cannot provide both DeleteKeys and ExtraParams")
        for key in [*properties, *delete_keys]:
            if key not in cp.INDEX_CONFIGURABLE:
                raise cp.invalid(f"{key} is not a configable index property")
        for key, value in properties.items():
            cp.check_bool(key, value)
        if not index_name:
            raise cp.invalid("index name is empty")
        with self.cat.lock:
            coll = self.root.by_id(collection_id)
            if collection_id in self.cat.load_infos:
                raise cp.collection_loaded(coll.name, "can't alter index on loaded collection, please release the "
                                                      "collection first")
            found = [i for i in self.index.indexes_of(collection_id) if i.name == index_name]
            if not found:
                raise MilvusError(Code.INDEX_NOT_FOUND, f"index not found[indexName={index_name}]")
            for idx in found:
                params = dict(idx.user_params) | properties
                for key in delete_keys:
                    params.pop(key, None)
                if params != idx.user_params:
                    self.cat.save_index(idx.model_copy(update={"user_params": params}))

    # --- TruncateCollection -------------------------------------------------------------
    @rpc
    @invalidates_proxy_cache
    def truncate_collection(self, db_name: str, collection: str) -> None:
        """Remove every row, keep schema, indexes and load state (as Milvus 2.6).

        Growing segments are sealed at a fresh timestamp; that timestamp becomes the collection's
        truncate point, under which every node hides rows at once (also rows still in flight on
        the channels), and every segment sealed up to it is dropped (garbage collection deletes
        its files later). Rows written afterwards go to new segments.
        """
        coll = self.root.get(db_name, collection)
        cut = int(self.data.flush(coll.id)["flush_ts"])
        with self.cat.lock:
            coll = self.root.by_id(coll.id)
            schema = coll.parsed_schema
            schema = schema.with_properties(schema.props | {cp.TRUNCATE_KEY: str(cut)})
            self._save(coll, rebuild(coll, schema))
            gone = [
                s.model_copy(update={"state": DROPPED, "dropped_at_ms": now_ms()})
                for s in self.cat.segments.values()
                if s.collection_id == coll.id and s.state in (SEALED, FLUSHED) and s.seal_ts <= cut
            ]
            if gone:
                self.cat.save_segments(gone)
        self.push_schema(coll.id)
        log.info("truncated collection %s (%d): %d segments dropped at ts %d", coll.name, coll.id, len(gone), cut)


def _check_max_length(found: Field | None, field_name: str, value: str) -> None:
    is_string = found is not None and (
        found.dtype == DataType.VarChar or (found.dtype == DataType.Array and found.element_type == DataType.VarChar))
    if not is_string:
        raise cp.invalid(f"{field_name} can not modify the maxlength for non-string types")
    try:
        length = int(value)
    except ValueError:
        raise cp.invalid("max_length should be an integer, but got string") from None
    if length > MAX_VARCHAR_LENGTH:
        raise cp.invalid(f"{value} exceeds the maximum allowed value {MAX_VARCHAR_LENGTH}")
    if length <= 0:
        raise cp.invalid(f"the maximum length specified for the field({field_name}) should be in "
                         f"(0, {MAX_VARCHAR_LENGTH}], but got {length} instead")


def _check_max_capacity(found: Field | None, field_name: str, value: str) -> None:
    if found is None or found.dtype != DataType.Array:
        raise cp.invalid(f"{field_name} can not modify the maxcapacity for non-array types")
    try:
        capacity = int(value)
    except ValueError:
        raise cp.invalid(f"the value for max_capacity of field {field_name} must be an integer") from None
    if not 0 < capacity <= MAX_ARRAY_CAPACITY:
        raise cp.invalid(f"the maximum capacity specified for a Array should be in (0, {MAX_ARRAY_CAPACITY}]")


def _altered(found: Field, properties: dict[str, str], delete_keys: list[str]) -> Field:
    extra = dict(found.extra_params)
    changes: dict[str, Any] = {}
    for key, value in properties.items():
        if key == "max_length":
            changes["max_length"] = int(value)
        elif key == "max_capacity":
            changes["max_capacity"] = int(value)
        elif key == cp.FIELD_DESCRIPTION_KEY:
            changes["description"] = value
        else:
            extra[key] = value
    for key in delete_keys:
        extra.pop(key, None)
    return replace(found, extra_params=tuple(extra.items()), **changes)
