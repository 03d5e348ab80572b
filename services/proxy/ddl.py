"""DDL handlers: databases, collections, partitions and aliases (run on the serial DDL queue)."""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from common import tso
from common.errors import Code, MilvusError
from services.proxy.context import ProxyContext, db_of
from services.proxy.status import guard, ok


def _kv(props: Any) -> dict[str, str]:
    return {p.key: p.value for p in props}


class DdlHandlers:
    ctx: ProxyContext

    # --- databases ----------------------------------------------------------------------
    @guard("ListDatabases")
    def ListDatabases(self, request: Any, context: Any) -> Any:
        dbs = self.ctx.coord.call("list_databases")
        return milvus_pb2.ListDatabasesResponse(
            status=ok(),
            db_names=[d["name"] for d in dbs],
            db_ids=[d["id"] for d in dbs],
            created_timestamp=[tso.physical_ms(d["created_ts"]) for d in dbs],
        )

    @guard("CreateDatabase")
    def CreateDatabase(self, request: Any, context: Any) -> Any:
        props = _kv(request.properties)
        self.ctx.scheduler.run_ddl(
            lambda: self.ctx.coord.call("create_database", name=request.db_name, properties=props)
        )
        return ok()

    @guard("DropDatabase")
    def DropDatabase(self, request: Any, context: Any) -> Any:
        self.ctx.scheduler.run_ddl(lambda: self.ctx.coord.call("drop_database", name=request.db_name))
        self.ctx.cache.invalidate()
        return ok()

    @guard("DescribeDatabase")
    def DescribeDatabase(self, request: Any, context: Any) -> Any:
        d = self.ctx.coord.call("describe_database", name=request.db_name or "default")
        return milvus_pb2.DescribeDatabaseResponse(
            status=ok(),
            db_name=d["name"],
            dbID=d["id"],
            created_timestamp=d["created_ts"],
            properties=[common_pb2.KeyValuePair(key=k, value=v) for k, v in d.get("properties", {}).items()],
        )

    # --- collections --------------------------------------------------------------------
    @guard("CreateCollection")
    def CreateCollection(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        props = _kv(request.properties)

        def create() -> None:
            self.ctx.coord.call(
                "create_collection",
                db_name=db,
                schema_proto=request.schema,
                shards_num=request.shards_num,
                consistency_level=int(request.consistency_level),
                properties=props,
                num_partitions=request.num_partitions,
            )

        self.ctx.scheduler.run_ddl(create)
        self.ctx.cache.invalidate(db, request.collection_name)
        return ok()

    @guard("DropCollection")
    def DropCollection(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        self.ctx.scheduler.run_ddl(
            lambda: self.ctx.coord.call("drop_collection", db_name=db, name=request.collection_name)
        )
        self.ctx.cache.invalidate()
        return ok()

    @guard("HasCollection")
    def HasCollection(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        try:
            self.ctx.coord.call("describe_collection", db_name=db, name=request.collection_name)
            found = True
        except MilvusError as exc:
            if exc.code != Code.COLLECTION_NOT_FOUND:
                raise
            found = False
        return milvus_pb2.BoolResponse(status=ok(), value=found)

    @guard("DescribeCollection")
    def DescribeCollection(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        d = self.ctx.coord.call(
            "describe_collection", db_name=db, name=request.collection_name, collection_id=request.collectionID
        )
        meta = self.ctx.cache.put(db, request.collection_name or d["name"], d)
        return milvus_pb2.DescribeCollectionResponse(
            status=ok(),
            schema=meta.schema.to_proto(),
            collectionID=meta.id,
            virtual_channel_names=meta.vchannels,
            physical_channel_names=meta.pchannels,
            created_timestamp=meta.created_ts,
            created_utc_timestamp=tso.physical_ms(meta.created_ts),
            shards_num=meta.shards_num,
            aliases=meta.aliases,
            consistency_level=meta.consistency_level,  # type: ignore[arg-type]
            collection_name=meta.name,
            properties=[common_pb2.KeyValuePair(key=k, value=v) for k, v in meta.properties.items()],
            db_name=meta.db_name,
            num_partitions=len(meta.partitions),
            db_id=d.get("db_id", 0),
        )

    @guard("ShowCollections")
    def ShowCollections(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        colls = self.ctx.coord.call("list_collections", db_name=db)
        if request.collection_names:
            by_name = {c["name"]: c for c in colls}
            for name in request.collection_names:
                if name not in by_name:
                    raise MilvusError(Code.COLLECTION_NOT_FOUND, f"collection not found[collection={name}]")
            colls = [by_name[n] for n in request.collection_names]
        percents = []
        for c in colls:
            info = self.ctx.coord.call("get_load_info", collection_id=c["id"])
            percents.append(info["progress"] if info else 0)
        return milvus_pb2.ShowCollectionsResponse(
            status=ok(),
            collection_names=[c["name"] for c in colls],
            collection_ids=[c["id"] for c in colls],
            created_timestamps=[c["created_ts"] for c in colls],
            created_utc_timestamps=[tso.physical_ms(c["created_ts"]) for c in colls],
            inMemory_percentages=percents,
            query_service_available=[p == 100 for p in percents],
        )

    @guard("GetCollectionStatistics")
    def GetCollectionStatistics(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        rows = self.ctx.coord.call("collection_row_count", collection_id=meta.id)
        return milvus_pb2.GetCollectionStatisticsResponse(
            status=ok(), stats=[common_pb2.KeyValuePair(key="row_count", value=str(rows))]
        )

    # --- partitions ---------------------------------------------------------------------
    @guard("CreatePartition")
    def CreatePartition(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        self.ctx.scheduler.run_ddl(
            lambda: self.ctx.coord.call(
                "create_partition", db_name=db, collection=request.collection_name, partition=request.partition_name
            )
        )
        self.ctx.cache.invalidate(db, request.collection_name)
        return ok()

    @guard("DropPartition")
    def DropPartition(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        self.ctx.scheduler.run_ddl(
            lambda: self.ctx.coord.call(
                "drop_partition", db_name=db, collection=request.collection_name, partition=request.partition_name
            )
        )
        self.ctx.cache.invalidate(db, request.collection_name)
        return ok()

    @guard("HasPartition")
    def HasPartition(self, request: Any, context: Any) -> Any:
        parts = self.ctx.coord.call(
            "show_partitions", db_name=db_of(request, context), collection=request.collection_name
        )
        return milvus_pb2.BoolResponse(status=ok(), value=any(p["name"] == request.partition_name for p in parts))

    @guard("ShowPartitions")
    def ShowPartitions(self, request: Any, context: Any) -> Any:
        parts = self.ctx.coord.call(
            "show_partitions", db_name=db_of(request, context), collection=request.collection_name
        )
        if request.partition_names:
            names = {p["name"] for p in parts}
            for n in request.partition_names:
                if n not in names:
                    raise MilvusError(Code.PARTITION_NOT_FOUND, f"partition not found[partition={n}]")
            parts = [p for p in parts if p["name"] in set(request.partition_names)]
        return milvus_pb2.ShowPartitionsResponse(
            status=ok(),
            partition_names=[p["name"] for p in parts],
            partitionIDs=[p["id"] for p in parts],
            created_timestamps=[p["created_ts"] for p in parts],
            created_utc_timestamps=[tso.physical_ms(p["created_ts"]) for p in parts],
            inMemory_percentages=[p["loaded_percent"] for p in parts],
        )

    @guard("GetPartitionStatistics")
    def GetPartitionStatistics(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        meta.partition_id(request.partition_name)
        rows = self.ctx.coord.call(
            "collection_row_count", collection_id=meta.id, partition_names=[request.partition_name]
        )
        return milvus_pb2.GetPartitionStatisticsResponse(
            status=ok(), stats=[common_pb2.KeyValuePair(key="row_count", value=str(rows))]
        )

    # --- aliases ------------------------------------------------------------------------
    @guard("CreateAlias")
    def CreateAlias(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        self.ctx.scheduler.run_ddl(
            lambda: self.ctx.coord.call(
                "create_alias", db_name=db, collection=request.collection_name, alias=request.alias
            )
        )
        self.ctx.cache.invalidate()
        return ok()

    @guard("AlterAlias")
    def AlterAlias(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        self.ctx.scheduler.run_ddl(
            lambda: self.ctx.coord.call(
                "alter_alias", db_name=db, collection=request.collection_name, alias=request.alias
            )
        )
        self.ctx.cache.invalidate()
        return ok()

    @guard("DropAlias")
    def DropAlias(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        self.ctx.scheduler.run_ddl(lambda: self.ctx.coord.call("drop_alias", db_name=db, alias=request.alias))
        self.ctx.cache.invalidate()
        return ok()

    @guard("DescribeAlias")
    def DescribeAlias(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        for a in self.ctx.coord.call("list_aliases", db_name=db):
            if a["alias"] == request.alias:
                return milvus_pb2.DescribeAliasResponse(
                    status=ok(), db_name=db, alias=a["alias"], collection=a["collection"]
                )
        raise MilvusError(Code.ALIAS_NOT_FOUND, f"alias not found[database={db}][alias={request.alias}]")

    @guard("ListAliases")
    def ListAliases(self, request: Any, context: Any) -> Any:
        db = db_of(request, context)
        found = self.ctx.coord.call("list_aliases", db_name=db, collection=request.collection_name)
        return milvus_pb2.ListAliasesResponse(
            status=ok(), db_name=db, collection_name=request.collection_name, aliases=[a["alias"] for a in found]
        )
