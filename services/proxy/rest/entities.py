"""REST v2 /entities/*: insert, upsert, delete, query, get, search and hybrid search.

Writes describe the collection first (the schema drives the row-to-column conversion and the
``id`` filter of get/delete); reads build a Query or Search request and flatten its columns
into JSON rows. Consistency defaults to the collection's own level, as Milvus's REST API does.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pymilvus.client.prepare import Prepare
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from services.proxy.rest import models as m
from services.proxy.rest.envelope import MISSING_PARAMETERS, Gateway, ok, rest_error
from services.proxy.rest.inputs import anns_field, pk_filter, placeholder_group, write_request
from services.proxy.rest.params import consistency, go_format, search_params
from services.proxy.rest.results import rows_of, search_rows
from services.proxy.rest.routing import RestContext, rest_context

COUNT = "count(*)"


def _templates(values: dict[str, Any]) -> Any:
    return Prepare.prepare_expression_template(values) if values else {}


def _ids(result: milvus_pb2.MutationResult, allow_int64: bool) -> list[Any]:
    if result.IDs.WhichOneof("id_field") == "str_id":
        return list(result.IDs.str_id.data)
    ints = list(result.IDs.int_id.data)
    return ints if allow_int64 else [str(v) for v in ints]


def _search_reply(resp: milvus_pb2.SearchResults, allow_int64: bool) -> Response:
    results = resp.results
    if results.top_k == 0:
        return ok([], topks=list(results.topks))
    extra: dict[str, Any] = {"topks": list(results.topks)}
    if len(results.recalls):
        extra["recalls"] = list(results.recalls)
    return ok(search_rows(results, allow_int64), **extra)


def register(router: APIRouter, gw: Gateway) -> None:
    def describe(db: str, name: str) -> milvus_pb2.DescribeCollectionResponse:
        request = milvus_pb2.DescribeCollectionRequest(db_name=db, collection_name=name)
        return gw.call("DescribeCollection", request)  # type: ignore[no-any-return]

    def write(req: m.InsertReq, ctx: RestContext, upsert: bool) -> Response:
        db = ctx.db(req.dbName)
        request = write_request(describe(db, req.collectionName), db, req.partitionName, req.data, upsert)
        result = gw.call("Upsert" if upsert else "Insert", request)
        if upsert:
            return ok({"upsertCount": result.upsert_cnt, "upsertIds": _ids(result, ctx.allow_int64)})
        return ok({"insertCount": result.insert_cnt, "insertIds": _ids(result, ctx.allow_int64)})

    @router.post("/entities/insert", summary="Insert entities (JSON rows)")
    def insert_entities(req: m.InsertReq, ctx: RestContext = Depends(rest_context)) -> Response:
        return write(req, ctx, upsert=False)

    @router.post("/entities/upsert", summary="Insert or replace entities (JSON rows)")
    def upsert_entities(req: m.InsertReq, ctx: RestContext = Depends(rest_context)) -> Response:
        return write(req, ctx, upsert=True)

    @router.post("/entities/delete", summary="Delete entities by filter (or by id)")
    def delete_entities(req: m.DeleteReq, ctx: RestContext = Depends(rest_context)) -> Response:
        db = ctx.db(req.dbName)
        expr = req.filter
        if not expr:
            if req.id is None:
                raise rest_error(MISSING_PARAMETERS, "required parameter(s) not set: filter")
            expr = pk_filter(describe(db, req.collectionName).schema, req.id)
        request = milvus_pb2.DeleteRequest(
            db_name=db,
            collection_name=req.collectionName,
            partition_name=req.partitionName,
            expr=expr,
            expr_template_values=_templates(req.exprParams),
        )
        return ok({"deleteCount": gw.call("Delete", request).delete_cnt})

    def query(req: m.QueryReq | m.GetReq, ctx: RestContext, expr: str, params: dict[str, int]) -> Response:
        cl, use_default = consistency(req.consistencyLevel)
        request = milvus_pb2.QueryRequest(
            db_name=ctx.db(req.dbName),
            collection_name=req.collectionName,
            expr=expr,
            output_fields=req.outputFields,
            partition_names=req.partitionNames,
            query_params=[common_pb2.KeyValuePair(key=k, value=str(v)) for k, v in params.items()],
            consistency_level=cl,  # type: ignore[arg-type]
            use_default_consistency=use_default,
        )
        if isinstance(req, m.QueryReq):
            for key, value in dict(_templates(req.exprParams)).items():
                request.expr_template_values[key].CopyFrom(value)
        resp = gw.call("Query", request)
        return ok(rows_of(resp.fields_data, resp.output_fields, ctx.allow_int64))

    @router.post("/entities/query", summary="Query entities by a filter expression")
    def query_entities(req: m.QueryReq, ctx: RestContext = Depends(rest_context)) -> Response:
        params: dict[str, int] = {}
        if req.offset > 0:
            params["offset"] = req.offset
        counting = len(req.outputFields) == 1 and req.outputFields[0].strip().lower() == COUNT
        if req.limit > 0 and not counting:
            params["limit"] = req.limit
        return query(req, ctx, req.filter, params)

    @router.post("/entities/get", summary="Get entities by primary key")
    def get_entities(req: m.GetReq, ctx: RestContext = Depends(rest_context)) -> Response:
        db = ctx.db(req.dbName)
        return query(req, ctx, pk_filter(describe(db, req.collectionName).schema, req.id), {})

    def sub_search(
        schema: schema_pb2.CollectionSchema, db: str, name: str, sub: m.SubSearchReq
    ) -> milvus_pb2.SearchRequest:
        field = anns_field(schema, sub.annsField)
        raw = dict(sub.params)
        if sub.metricType:
            raw.setdefault("metricType", sub.metricType)
        request = milvus_pb2.SearchRequest(
            db_name=db,
            collection_name=name,
            placeholder_group=placeholder_group(field, sub.data, function_output=field.is_function_output),
            dsl=sub.filter,
            dsl_type=common_pb2.BoolExprV1,
            nq=len(sub.data),
            search_params=search_params(raw),
        )
        extra = {"topk": sub.limit, "offset": sub.offset, "anns_field": field.name}
        request.search_params.extend(common_pb2.KeyValuePair(key=k, value=go_format(v)) for k, v in extra.items())
        for key, value in dict(_templates(sub.exprParams)).items():
            request.expr_template_values[key].CopyFrom(value)
        return request

    @router.post("/entities/search", summary="Vector similarity search")
    def search_entities(req: m.SearchReq, ctx: RestContext = Depends(rest_context)) -> Response:
        db = ctx.db(req.dbName)
        cl, use_default = consistency(req.consistencyLevel)
        schema = describe(db, req.collectionName).schema
        sub = m.SubSearchReq(
            data=req.data,
            annsField=req.annsField,
            filter=req.filter,
            limit=req.limit,
            offset=req.offset,
            params=req.searchParams,
            exprParams=req.exprParams,
        )
        request = sub_search(schema, db, req.collectionName, sub)
        extra: dict[str, Any] = {}
        if req.groupingField:
            extra["group_by_field"] = req.groupingField
            if req.groupSize > 0:
                extra["group_size"] = req.groupSize
                extra["strict_group_size"] = req.strictGroupSize
        request.search_params.extend(common_pb2.KeyValuePair(key=k, value=go_format(v)) for k, v in extra.items())
        request.output_fields.extend(req.outputFields)
        request.partition_names.extend(req.partitionNames)
        request.consistency_level = cl  # type: ignore[assignment]
        request.use_default_consistency = use_default
        return _search_reply(gw.call("Search", request), ctx.allow_int64)

    def hybrid(req: m.HybridSearchReq, ctx: RestContext) -> Response:
        db = ctx.db(req.dbName)
        cl, use_default = consistency(req.consistencyLevel)
        schema = describe(db, req.collectionName).schema
        request = milvus_pb2.HybridSearchRequest(
            db_name=db,
            collection_name=req.collectionName,
            partition_names=req.partitionNames,
            output_fields=req.outputFields,
            consistency_level=cl,  # type: ignore[arg-type]
            use_default_consistency=use_default,
        )
        for sub in req.search:
            one = sub_search(schema, db, req.collectionName, sub)
            one.partition_names.extend(req.partitionNames)
            one.output_fields.extend(req.outputFields)
            request.requests.append(one)
        rank: dict[str, Any] = {
            "strategy": req.rerank.strategy,
            "params": go_format(req.rerank.params),
            "limit": req.limit,
            "round_decimal": -1,
        }
        if req.groupingField:
            rank["group_by_field"] = req.groupingField
            if req.groupSize > 0:
                rank["group_size"] = req.groupSize
                rank["strict_group_size"] = req.strictGroupSize
        request.rank_params.extend(common_pb2.KeyValuePair(key=k, value=go_format(v)) for k, v in rank.items())
        return _search_reply(gw.call("HybridSearch", request), ctx.allow_int64)

    @router.post("/entities/hybrid_search", summary="Several searches merged by a reranker")
    def hybrid_search_entities(req: m.HybridSearchReq, ctx: RestContext = Depends(rest_context)) -> Response:
        return hybrid(req, ctx)

    @router.post("/entities/advanced_search", summary="Alias of hybrid_search (older clients)")
    def advanced_search_entities(req: m.HybridSearchReq, ctx: RestContext = Depends(rest_context)) -> Response:
        return hybrid(req, ctx)
