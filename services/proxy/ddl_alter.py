"""DDL that changes what exists: fields, properties, names, truncation (run on the serial DDL queue).

AddCollectionField (and pymilvus 3's AlterCollectionSchema, which it tries first),
AlterCollection, AlterCollectionField, RenameCollection, TruncateCollection, AlterDatabase and
AlterIndex. The coordinator validates and commits (services/coord/alter.py); the proxy drops
its cached metadata afterwards so its next request sees the change.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from pymilvus.grpc_gen import milvus_pb2

from common.errors import Code, MilvusError
from services.proxy.context import ProxyContext, db_of
from services.proxy.index_load import index_params
from services.proxy.meta_cache import CollectionMeta
from services.proxy.status import guard, ok, status_of

log = logging.getLogger(__name__)


def _kv(props: Any) -> dict[str, str]:
    return {p.key: p.value for p in props}


class AlterHandlers:
    ctx: ProxyContext

    def _run(self, method: str, **kwargs: Any) -> Any:
        return self.ctx.scheduler.run_ddl(lambda: self.ctx.coord.call(method, **kwargs))

    @contextlib.contextmanager
    def _changing(self, db: str, name: str) -> Iterator[CollectionMeta]:
        """A DDL on collection ``name``: its cached metadata is dropped afterwards, failed or not."""
        meta = self.ctx.cache.get(db, name)
        try:
            yield meta
        finally:
            self.ctx.cache.invalidate(db, name, collection_id=meta.id)

    # --- fields -------------------------------------------------------------------------
    @guard("AddCollectionField")
    def AddCollectionField(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        with self._changing(db, request.collection_name):
            self._run("add_collection_field", db_name=db, collection=request.collection_name,
                      field_schema=bytes(request.schema))
        return ok()

    @guard("AlterCollectionSchema")
    def AlterCollectionSchema(self, request: Any, context: Any) -> Any:
        """pymilvus 3 adds fields through this RPC; its response carries ``alter_status``."""
        try:
            self._alter_schema(request, context)
        except MilvusError as exc:
            return milvus_pb2.AlterCollectionSchemaResponse(alter_status=status_of(exc.code, exc.message))
        except Exception as exc:  # the guard's fallback has no alter_status to fill: answer here
            log.exception("AlterCollectionSchema failed")
            return milvus_pb2.AlterCollectionSchemaResponse(
                alter_status=status_of(Code.UNEXPECTED, f"{type(exc).__name__}: {exc}"))
        return milvus_pb2.AlterCollectionSchemaResponse(alter_status=ok())

    def _alter_schema(self, request: Any, context: Any) -> None:
        db = db_of(request, context)
        op = request.action.WhichOneof("op")
        if op == "drop_request":
            raise MilvusError(Code.UNIMPLEMENTED, "dropping a field or function is not supported by Quiver yet")
        if op is None:
            raise MilvusError(Code.PARAMETER_INVALID, "alter collection schema request has no action: "
                                                      "invalid parameter")
        add = request.action.add_request
        if len(add.func_schema):
            raise MilvusError(Code.UNIMPLEMENTED, "schema functions are not supported by Quiver yet")
        if len(add.field_infos) != 1:
            raise MilvusError(Code.PARAMETER_INVALID,
                              f"exactly one field must be added at a time, got {len(add.field_infos)}: "
                              "invalid parameter")
        info = add.field_infos[0]
        with self._changing(db, request.collection_name) as meta:
            self._run("add_collection_field", db_name=db, collection=request.collection_name,
                      field_schema=info.field_schema.SerializeToString())
            if info.index_name or len(info.extra_params):
                params = index_params(info.extra_params)
                self._run("create_index", collection_id=meta.id, field_name=info.field_schema.name,
                          index_name=info.index_name, params=params)

    @guard("AlterCollectionField")
    def AlterCollectionField(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        with self._changing(db, request.collection_name):
            self._run("alter_collection_field", db_name=db, collection=request.collection_name,
                      field_name=request.field_name, properties=_kv(request.properties),
                      delete_keys=list(request.delete_keys))
        return ok()

    # --- collections --------------------------------------------------------------------
    @guard("AlterCollection")
    def AlterCollection(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        try:
            self._run("alter_collection", db_name=db, collection=request.collection_name,
                      properties=_kv(request.properties), delete_keys=list(request.delete_keys))
        finally:
            self.ctx.cache.invalidate(db, request.collection_name)
        return ok()

    @guard("RenameCollection")
    def RenameCollection(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        try:
            self._run("rename_collection", db_name=db, old_name=request.oldName, new_name=request.newName,
                      new_db_name=request.newDBName or db)
        finally:
            self.ctx.cache.invalidate()
        return ok()

    @guard("TruncateCollection")
    def TruncateCollection(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        with self._changing(db, request.collection_name):
            self._run("truncate_collection", db_name=db, collection=request.collection_name)
        return milvus_pb2.TruncateCollectionResponse(status=ok())

    # --- databases and indexes ----------------------------------------------------------
    @guard("AlterDatabase")
    def AlterDatabase(self, request: Any, context: Any) -> Any:
        self._run("alter_database", name=request.db_name, properties=_kv(request.properties),
                  delete_keys=list(request.delete_keys))
        return ok()

    @guard("AlterIndex")
    def AlterIndex(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        try:
            self._run("alter_index", collection_id=meta.id, index_name=request.index_name,
                      properties=_kv(request.extra_params), delete_keys=list(request.delete_keys))
        finally:
            self.ctx.cache.invalidate(collection_id=meta.id)
        return ok()
