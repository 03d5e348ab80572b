"""REST v2 /collections/*: each route one or a few MilvusService calls, shaped as Milvus shapes them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import Field
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from common.errors import Code
from services.proxy.rest import models as m
from services.proxy.rest.envelope import Gateway, RestError, ok
from services.proxy.rest.params import (
    DEFAULT_METRIC,
    DEFAULT_VECTOR,
    collection_options,
    field_proto,
    full_schema,
    index_extra_params,
    kv_json,
    kv_pairs,
    quick_schema,
)
from services.proxy.rest.routing import RestContext, rest_context

VECTOR_TYPES = {
    schema_pb2.BinaryVector,
    schema_pb2.FloatVector,
    schema_pb2.Float16Vector,
    schema_pb2.BFloat16Vector,
    schema_pb2.SparseFloatVector,
    schema_pb2.Int8Vector,
}


def field_json(f: schema_pb2.FieldSchema) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": f.name,
        "type": schema_pb2.DataType.Name(f.data_type),
        "primaryKey": f.is_primary_key,
        "partitionKey": f.is_partition_key,
        "clusteringKey": f.is_clustering_key,
        "autoId": f.autoID,
        "description": f.description,
        "nullable": f.nullable,
        "id": f.fieldID,
        "params": kv_json(f.type_params),
    }
    if f.data_type == schema_pb2.Array:
        out["elementType"] = schema_pb2.DataType.Name(f.element_type)
    if f.HasField("default_value") and f.default_value.WhichOneof("data"):
        out["defaultValue"] = getattr(f.default_value, f.default_value.WhichOneof("data"))
    if f.is_function_output:
        out["isFunctionOutput"] = True
    return out


def function_json(fn: schema_pb2.FunctionSchema) -> dict[str, Any]:
    return {
        "name": fn.name,
        "description": fn.description,
        "type": schema_pb2.FunctionType.Name(fn.type),
        "id": fn.id,
        "inputFieldNames": list(fn.input_field_names),
        "outputFieldNames": list(fn.output_field_names),
        "params": kv_json(fn.params),
    }


def _param(pairs: Any, key: str, default: str = "") -> str:
    return next((p.value for p in pairs if p.key == key), default)


class AddFieldReq(m.DatabaseReq):
    """/collections/fields/add (Milvus CollectionFieldReqWithSchema)."""

    collectionName: m.Required
    field_schema: m.FieldSchemaModel = Field(alias="schema")


class FieldPropertiesReq(m.DatabaseReq):
    """/collections/fields/alter_properties (Milvus CollectionFieldReqWithParams)."""

    collectionName: m.Required
    fieldName: m.Required
    fieldParams: dict[str, Any] = Field(default_factory=dict)


def register(router: APIRouter, gw: Gateway) -> None:
    def load_state(db: str, name: str, partitions: list[str] | None = None) -> int:
        req = milvus_pb2.GetLoadStateRequest(db_name=db, collection_name=name, partition_names=partitions or [])
        return int(gw.call("GetLoadState", req).state)

    @router.post("/collections/list", summary="List collections")
    def list_collections(req: m.DatabaseReq | None = None, ctx: RestContext = Depends(rest_context)) -> Response:
        req = req or m.DatabaseReq()
        resp = gw.call("ShowCollections", milvus_pb2.ShowCollectionsRequest(db_name=ctx.db(req.dbName)))
        return ok(list(resp.collection_names))

    @router.post("/collections/has", summary="Whether a collection exists")
    def has_collection(req: m.CollectionNameReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.HasCollectionRequest(db_name=ctx.db(req.dbName), collection_name=req.collectionName)
        return ok({"has": gw.call("HasCollection", request).value})

    @router.post("/collections/describe", summary="Describe a collection")
    def describe_collection(req: m.CollectionNameReq, ctx: RestContext = Depends(rest_context)) -> Response:
        db, name = ctx.db(req.dbName), req.collectionName
        coll = gw.call("DescribeCollection", milvus_pb2.DescribeCollectionRequest(db_name=db, collection_name=name))
        errors: list[str] = []
        state, err = gw.try_call("GetLoadState", milvus_pb2.GetLoadStateRequest(db_name=db, collection_name=name))
        errors += [err] if err else []
        vector = next((f.name for f in coll.schema.fields if f.data_type in VECTOR_TYPES), "")
        indexes, err = gw.try_call(
            "DescribeIndex", milvus_pb2.DescribeIndexRequest(db_name=db, collection_name=name, field_name=vector)
        )
        errors += [err] if err else []
        aliases, err = gw.try_call("ListAliases", milvus_pb2.ListAliasesRequest(db_name=db, collection_name=name))
        errors += [err] if err else []
        pk = next((f for f in coll.schema.fields if f.is_primary_key), None)
        data = {
            "collectionName": coll.collection_name,
            "collectionID": coll.collectionID,
            "description": coll.schema.description,
            "autoId": bool(pk and pk.autoID),
            "fields": [field_json(f) for f in coll.schema.fields if not f.is_dynamic],
            "functions": [function_json(fn) for fn in coll.schema.functions],
            "aliases": list(aliases.aliases) if aliases else [],
            "indexes": [
                {"indexName": d.index_name, "fieldName": d.field_name, "metricType": _param(d.params, "metric_type")}
                for d in (indexes.index_descriptions if indexes else [])
            ],
            "load": common_pb2.LoadState.Name(state.state) if state else "",
            "shardsNum": coll.shards_num,
            "partitionsNum": coll.num_partitions,
            "consistencyLevel": common_pb2.ConsistencyLevel.Name(coll.consistency_level),
            "enableDynamicField": coll.schema.enable_dynamic_field,
            "properties": kv_json(coll.properties),
        }
        return ok(data, message="".join(e + ";" for e in errors))

    @router.post("/collections/get_stats", summary="Row count of a collection")
    def collection_stats(req: m.CollectionNameReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.GetCollectionStatisticsRequest(
            db_name=ctx.db(req.dbName), collection_name=req.collectionName
        )
        stats = gw.call("GetCollectionStatistics", request).stats
        return ok({"rowCount": int(_param(stats, "row_count", "0"))})

    @router.post("/collections/get_load_state", summary="Load state and progress of a collection")
    def collection_load_state(req: m.CollectionNameReq, ctx: RestContext = Depends(rest_context)) -> Response:
        db = ctx.db(req.dbName)
        state = load_state(db, req.collectionName, req.partitionNames)
        if state == common_pb2.LoadStateNotExist:
            raise RestError(Code.COLLECTION_NOT_FOUND, f"collection not found[collection={req.collectionName}]")
        if state == common_pb2.LoadStateNotLoad:
            return ok({"loadState": common_pb2.LoadState.Name(state)})
        progress, err = gw.try_call(
            "GetLoadingProgress",
            milvus_pb2.GetLoadingProgressRequest(
                db_name=db, collection_name=req.collectionName, partition_names=req.partitionNames
            ),
        )
        percent = int(progress.progress) if progress else -1
        name = common_pb2.LoadState.Name(common_pb2.LoadStateLoaded if percent >= 100 else common_pb2.LoadStateLoading)
        return ok({"loadState": name, "loadProgress": percent}, message=err + "." if err else "")

    @router.post("/collections/create", summary="Create a collection (quick setup or full schema)")
    def create_collection(req: m.CreateCollectionReq, ctx: RestContext = Depends(rest_context)) -> Response:
        db = ctx.db(req.dbName)
        quick = not req.collection_schema.fields
        schema = quick_schema(req) if quick else full_schema(req)
        options = collection_options(req)
        gw.call(
            "CreateCollection",
            milvus_pb2.CreateCollectionRequest(
                db_name=db, collection_name=req.collectionName, schema=schema.SerializeToString(), **options
            ),
        )
        if quick:
            vector = req.vectorFieldName or DEFAULT_VECTOR
            indexes = [m.IndexParam(fieldName=vector, indexName=vector, metricType=req.metricType or DEFAULT_METRIC)]
        else:
            indexes = req.indexParams
        if not indexes:
            return ok()
        for index in indexes:
            gw.call(
                "CreateIndex",
                milvus_pb2.CreateIndexRequest(
                    db_name=db,
                    collection_name=req.collectionName,
                    field_name=index.fieldName,
                    index_name=index.indexName,
                    extra_params=index_extra_params(index),
                ),
            )
        gw.call("LoadCollection", milvus_pb2.LoadCollectionRequest(db_name=db, collection_name=req.collectionName))
        return ok()

    @router.post("/collections/drop", summary="Drop a collection")
    def drop_collection(req: m.CollectionNameReq, ctx: RestContext = Depends(rest_context)) -> Response:
        gw.call(
            "DropCollection",
            milvus_pb2.DropCollectionRequest(db_name=ctx.db(req.dbName), collection_name=req.collectionName),
        )
        return ok()

    @router.post("/collections/rename", summary="Rename a collection")
    def rename_collection(req: m.RenameCollectionReq, ctx: RestContext = Depends(rest_context)) -> Response:
        db = ctx.db(req.dbName)
        request = milvus_pb2.RenameCollectionRequest(
            db_name=db, oldName=req.collectionName, newName=req.newCollectionName, newDBName=req.newDbName or db
        )
        gw.call("RenameCollection", request)
        return ok()

    def load(req: m.CollectionNameReq, ctx: RestContext, refresh: bool) -> Response:
        request = milvus_pb2.LoadCollectionRequest(
            db_name=ctx.db(req.dbName), collection_name=req.collectionName, refresh=refresh
        )
        gw.call("LoadCollection", request)
        return ok()

    @router.post("/collections/load", summary="Load a collection")
    def load_collection(req: m.CollectionNameReq, ctx: RestContext = Depends(rest_context)) -> Response:
        return load(req, ctx, refresh=False)

    @router.post("/collections/refresh_load", summary="Reload a collection")
    def refresh_load_collection(req: m.CollectionNameReq, ctx: RestContext = Depends(rest_context)) -> Response:
        return load(req, ctx, refresh=True)

    @router.post("/collections/release", summary="Release a collection")
    def release_collection(req: m.CollectionNameReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.ReleaseCollectionRequest(db_name=ctx.db(req.dbName), collection_name=req.collectionName)
        gw.call("ReleaseCollection", request)
        return ok()

    @router.post("/collections/flush", summary="Flush a collection's growing data")
    def flush_collection(req: m.CollectionNameReq, ctx: RestContext = Depends(rest_context)) -> Response:
        gw.call("Flush", milvus_pb2.FlushRequest(db_name=ctx.db(req.dbName), collection_names=[req.collectionName]))
        return ok()

    @router.post("/collections/alter_properties", summary="Set collection properties")
    def alter_collection(req: m.CollectionPropertiesReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.AlterCollectionRequest(
            db_name=ctx.db(req.dbName), collection_name=req.collectionName, properties=kv_pairs(req.properties)
        )
        gw.call("AlterCollection", request)
        return ok()

    @router.post("/collections/drop_properties", summary="Remove collection properties")
    def drop_collection_properties(
        req: m.DropCollectionPropertiesReq, ctx: RestContext = Depends(rest_context)
    ) -> Response:
        request = milvus_pb2.AlterCollectionRequest(
            db_name=ctx.db(req.dbName), collection_name=req.collectionName, delete_keys=req.propertyKeys
        )
        gw.call("AlterCollection", request)
        return ok()

    @router.post("/collections/truncate", summary="Remove every entity, keep schema, indexes and load state")
    def truncate_collection(req: m.CollectionNameReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.TruncateCollectionRequest(db_name=ctx.db(req.dbName), collection_name=req.collectionName)
        gw.call("TruncateCollection", request)
        return ok()

    @router.post("/collections/fields/add", summary="Add a (nullable) field to a collection")
    def add_field(req: AddFieldReq, ctx: RestContext = Depends(rest_context)) -> Response:
        schema = field_proto(req.field_schema)
        request = milvus_pb2.AddCollectionFieldRequest(
            db_name=ctx.db(req.dbName), collection_name=req.collectionName, schema=schema.SerializeToString()
        )
        gw.call("AddCollectionField", request)
        return ok()

    @router.post("/collections/fields/alter_properties", summary="Set field properties (max_length, mmap.enabled)")
    def alter_field(req: FieldPropertiesReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.AlterCollectionFieldRequest(
            db_name=ctx.db(req.dbName),
            collection_name=req.collectionName,
            field_name=req.fieldName,
            properties=kv_pairs(req.fieldParams),
        )
        gw.call("AlterCollectionField", request)
        return ok()

    @router.post("/collections/compact", summary="Start a manual compaction")
    def compact(req: m.CompactReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.ManualCompactionRequest(
            db_name=ctx.db(req.dbName), collection_name=req.collectionName, majorCompaction=req.isClustering
        )
        return ok({"compactionID": gw.call("ManualCompaction", request).compactionID})

    @router.post("/collections/get_compaction_state", summary="State of a manual compaction")
    def compaction_state(req: m.CompactionStateReq) -> Response:
        resp = gw.call("GetCompactionState", milvus_pb2.GetCompactionStateRequest(compactionID=req.jobID))
        return ok(
            {
                "compactionID": req.jobID,
                "state": common_pb2.CompactionState.Name(resp.state),
                "executingPlanNumber": resp.executingPlanNo,
                "timeoutPlanNumber": resp.timeoutPlanNo,
                "completedPlanNumber": resp.completedPlanNo,
            }
        )
