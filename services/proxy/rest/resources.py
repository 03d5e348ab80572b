"""REST v2 /partitions/*, /indexes/*, /aliases/* and /databases/*: one MilvusService call each."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pymilvus.grpc_gen import common_pb2, milvus_pb2

from common.errors import Code
from services.proxy.rest import models as m
from services.proxy.rest.envelope import Gateway, RestError, ok
from services.proxy.rest.params import index_extra_params, kv_json, kv_pairs
from services.proxy.rest.routing import RestContext, rest_context


def _row_count(stats: object) -> int:
    return int(next((p.value for p in stats if p.key == "row_count"), "0"))  # type: ignore[attr-defined]


def register_partitions(router: APIRouter, gw: Gateway) -> None:
    @router.post("/partitions/list", summary="List partitions")
    def list_partitions(req: m.CollectionNameReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.ShowPartitionsRequest(db_name=ctx.db(req.dbName), collection_name=req.collectionName)
        return ok(list(gw.call("ShowPartitions", request).partition_names))

    @router.post("/partitions/has", summary="Whether a partition exists")
    def has_partition(req: m.PartitionReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.HasPartitionRequest(
            db_name=ctx.db(req.dbName), collection_name=req.collectionName, partition_name=req.partitionName
        )
        return ok({"has": gw.call("HasPartition", request).value})

    @router.post("/partitions/get_stats", summary="Row count of a partition")
    def partition_stats(req: m.PartitionReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.GetPartitionStatisticsRequest(
            db_name=ctx.db(req.dbName), collection_name=req.collectionName, partition_name=req.partitionName
        )
        return ok({"rowCount": _row_count(gw.call("GetPartitionStatistics", request).stats)})

    @router.post("/partitions/create", summary="Create a partition")
    def create_partition(req: m.PartitionReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.CreatePartitionRequest(
            db_name=ctx.db(req.dbName), collection_name=req.collectionName, partition_name=req.partitionName
        )
        gw.call("CreatePartition", request)
        return ok()

    @router.post("/partitions/drop", summary="Drop a partition")
    def drop_partition(req: m.PartitionReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.DropPartitionRequest(
            db_name=ctx.db(req.dbName), collection_name=req.collectionName, partition_name=req.partitionName
        )
        gw.call("DropPartition", request)
        return ok()

    @router.post("/partitions/load", summary="Load partitions")
    def load_partitions(req: m.PartitionsReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.LoadPartitionsRequest(
            db_name=ctx.db(req.dbName), collection_name=req.collectionName, partition_names=req.partitionNames
        )
        gw.call("LoadPartitions", request)
        return ok()

    @router.post("/partitions/release", summary="Release partitions")
    def release_partitions(req: m.PartitionsReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.ReleasePartitionsRequest(
            db_name=ctx.db(req.dbName), collection_name=req.collectionName, partition_names=req.partitionNames
        )
        gw.call("ReleasePartitions", request)
        return ok()


def register_indexes(router: APIRouter, gw: Gateway) -> None:
    @router.post("/indexes/list", summary="List index names")
    def list_indexes(req: m.CollectionNameReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.DescribeIndexRequest(db_name=ctx.db(req.dbName), collection_name=req.collectionName)
        try:
            found = gw.call("DescribeIndex", request).index_descriptions
        except RestError as exc:
            if exc.code != Code.INDEX_NOT_FOUND:
                raise
            found = []
        return ok([d.index_name for d in found])

    @router.post("/indexes/describe", summary="Describe an index")
    def describe_index(req: m.IndexReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.DescribeIndexRequest(
            db_name=ctx.db(req.dbName), collection_name=req.collectionName, index_name=req.indexName
        )
        out = []
        for d in gw.call("DescribeIndex", request).index_descriptions:
            params = {p.key: p.value for p in d.params}
            out.append(
                {
                    "indexName": d.index_name,
                    "fieldName": d.field_name,
                    "indexType": params.get("index_type", ""),
                    "metricType": params.get("metric_type", ""),
                    "mmapEnabled": params.get("mmap.enabled", ""),
                    "totalRows": d.total_rows,
                    "pendingRows": d.pending_index_rows,
                    "indexedRows": d.indexed_rows,
                    "indexState": common_pb2.IndexState.Name(d.state),
                    "failReason": d.index_state_fail_reason,
                    "minIndexVersion": d.min_index_version,
                    "maxIndexVersion": d.max_index_version,
                }
            )
        return ok(out)

    @router.post("/indexes/create", summary="Create indexes")
    def create_index(req: m.IndexParamReq, ctx: RestContext = Depends(rest_context)) -> Response:
        for index in req.indexParams:
            request = milvus_pb2.CreateIndexRequest(
                db_name=ctx.db(req.dbName),
                collection_name=req.collectionName,
                field_name=index.fieldName,
                index_name=index.indexName,
                extra_params=index_extra_params(index),
            )
            gw.call("CreateIndex", request)
        return ok()

    @router.post("/indexes/drop", summary="Drop an index")
    def drop_index(req: m.IndexReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.DropIndexRequest(
            db_name=ctx.db(req.dbName), collection_name=req.collectionName, index_name=req.indexName
        )
        gw.call("DropIndex", request)
        return ok()

    @router.post("/indexes/alter_properties", summary="Set index properties")
    def alter_index(req: m.IndexPropertiesReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.AlterIndexRequest(
            db_name=ctx.db(req.dbName),
            collection_name=req.collectionName,
            index_name=req.indexName,
            extra_params=kv_pairs(req.properties),
        )
        gw.call("AlterIndex", request)
        return ok()

    @router.post("/indexes/drop_properties", summary="Remove index properties")
    def drop_index_properties(req: m.DropIndexPropertiesReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.AlterIndexRequest(
            db_name=ctx.db(req.dbName),
            collection_name=req.collectionName,
            index_name=req.indexName,
            delete_keys=req.propertyKeys,
        )
        gw.call("AlterIndex", request)
        return ok()


def register_aliases(router: APIRouter, gw: Gateway) -> None:
    @router.post("/aliases/list", summary="List aliases (of one collection, or of the database)")
    def list_aliases(
        req: m.OptionalCollectionNameReq | None = None, ctx: RestContext = Depends(rest_context)
    ) -> Response:
        req = req or m.OptionalCollectionNameReq()
        request = milvus_pb2.ListAliasesRequest(db_name=ctx.db(req.dbName), collection_name=req.collectionName)
        return ok(list(gw.call("ListAliases", request).aliases))

    @router.post("/aliases/describe", summary="Describe an alias")
    def describe_alias(req: m.AliasReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.DescribeAliasRequest(db_name=ctx.db(req.dbName), alias=req.aliasName)
        resp = gw.call("DescribeAlias", request)
        return ok({"dbName": resp.db_name, "collectionName": resp.collection, "aliasName": resp.alias})

    @router.post("/aliases/create", summary="Create an alias")
    def create_alias(req: m.AliasCollectionReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.CreateAliasRequest(
            db_name=ctx.db(req.dbName), collection_name=req.collectionName, alias=req.aliasName
        )
        gw.call("CreateAlias", request)
        return ok()

    @router.post("/aliases/alter", summary="Point an alias at another collection")
    def alter_alias(req: m.AliasCollectionReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.AlterAliasRequest(
            db_name=ctx.db(req.dbName), collection_name=req.collectionName, alias=req.aliasName
        )
        gw.call("AlterAlias", request)
        return ok()

    @router.post("/aliases/drop", summary="Drop an alias")
    def drop_alias(req: m.AliasReq, ctx: RestContext = Depends(rest_context)) -> Response:
        gw.call("DropAlias", milvus_pb2.DropAliasRequest(db_name=ctx.db(req.dbName), alias=req.aliasName))
        return ok()


def register_databases(router: APIRouter, gw: Gateway) -> None:
    @router.post("/databases/list", summary="List databases")
    def list_databases(req: m.EmptyReq | None = None) -> Response:
        return ok(list(gw.call("ListDatabases", milvus_pb2.ListDatabasesRequest()).db_names))

    @router.post("/databases/describe", summary="Describe a database")
    def describe_database(req: m.DatabaseNameReq) -> Response:
        resp = gw.call("DescribeDatabase", milvus_pb2.DescribeDatabaseRequest(db_name=req.dbName))
        return ok({"dbName": resp.db_name, "dbID": resp.dbID, "properties": kv_json(resp.properties)})

    @router.post("/databases/create", summary="Create a database")
    def create_database(req: m.DatabasePropertiesReq) -> Response:
        request = milvus_pb2.CreateDatabaseRequest(db_name=req.dbName, properties=kv_pairs(req.properties))
        gw.call("CreateDatabase", request)
        return ok()

    @router.post("/databases/drop", summary="Drop a database")
    def drop_database(req: m.DatabaseNameReq) -> Response:
        gw.call("DropDatabase", milvus_pb2.DropDatabaseRequest(db_name=req.dbName))
        return ok()

    @router.post("/databases/alter", summary="Set database properties")
    def alter_database(req: m.DatabasePropertiesReq) -> Response:
        request = milvus_pb2.AlterDatabaseRequest(db_name=req.dbName, properties=kv_pairs(req.properties))
        gw.call("AlterDatabase", request)
        return ok()

    @router.post("/databases/alter_properties", summary="Set database properties")
    def alter_database_properties(req: m.DatabasePropertiesReq) -> Response:
        return alter_database(req)

    @router.post("/databases/drop_properties", summary="Remove database properties")
    def drop_database_properties(req: m.DropDatabasePropertiesReq) -> Response:
        gw.call("AlterDatabase", milvus_pb2.AlterDatabaseRequest(db_name=req.dbName, delete_keys=req.propertyKeys))
        return ok()
