"""Search and query handlers: parse the request, fan out to querynodes, merge, encode."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pymilvus.grpc_gen import milvus_pb2, schema_pb2

from common.errors import Code, MilvusError, invalid
from common.fielddata import decode_placeholder_group, empty_column, encode_ids
from common.index import metric_ascending, validate_search_params
from common.reduce import Hits, merge_hits, merge_rows
from services.proxy.context import ProxyContext, db_of
from services.proxy.meta_cache import CollectionMeta
from services.proxy.outputs import encode_outputs, plan_outputs
from services.proxy.reader import ShardReader
from services.proxy.status import guard, ok
from services.proxy.templates import expr_params

MAX_TOPK = 16384


def _int_param(params: dict[str, str], key: str, default: int | None = None) -> int | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(json.loads(raw)) if not raw.lstrip("-").isdigit() else int(raw)
    except (ValueError, TypeError, OverflowError) as exc:  # OverflowError: "Infinity" parses as a JSON float
        raise invalid(f"{key} [{raw}] is invalid") from exc


class DqlHandlers:
    ctx: ProxyContext
    reader: ShardReader

    def _partitions(self, meta: CollectionMeta, names: Any) -> list[int]:
        names = list(names)
        if not names:
            return []
        ids = [meta.partition_id(n) for n in names]
        self.reader.check_partitions_loaded(meta, ids, names)
        return ids

    @guard("Search")
    def Search(self, request: Any, context: Any) -> Any:
        return self.ctx.scheduler.dql.run(lambda: self._search(request, context))

    def _search(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        schema = meta.schema
        params = {kv.key: kv.value for kv in request.search_params}
        if "ids" in request.DESCRIPTOR.fields_by_name and request.HasField("ids"):
            raise MilvusError(Code.UNIMPLEMENTED, "search by primary keys is not supported by Quiver yet")
        vectors = schema.vector_fields
        anns = params.get("anns_field", "")
        if not anns:
            if len(vectors) != 1:
                raise invalid("multiple anns_fields exist, please specify a anns_field in search_params")
            anns = vectors[0].name
        field = schema.get(anns)
        if field is None or not field.is_vector:
            raise invalid(f"failed to get field schema by name: fieldName({anns}) not found")
        topk = _int_param(params, "topk")
        if topk is None or not 1 <= topk <= MAX_TOPK:
            raise invalid(
                f"topk [{params.get('topk')}] is invalid, it should be in range [1, {MAX_TOPK}], but got {topk}"
            )
        offset = _int_param(params, "offset", 0) or 0
        if offset < 0 or offset + topk > MAX_TOPK:
            raise invalid(f"top k + offset should be in range [1, {MAX_TOPK}], but got {offset + topk}")
        round_decimal = _int_param(params, "round_decimal", -1)
        if round_decimal is not None and not -1 <= round_decimal <= 6:
            raise invalid(f"round_decimal [{params.get('round_decimal')}] is invalid, should be -1 or in range [0, 6]")
        try:
            sp = json.loads(params.get("params") or "{}")
        except ValueError as exc:
            raise invalid(f"search params is not valid JSON: {params.get('params')}") from exc
        if not isinstance(sp, dict):
            raise invalid(f"search params must be a JSON object: {params.get('params')}")
        indexes = [i for i in self.ctx.cache.indexes(meta.id) if i["field_name"] == anns]
        if not indexes:
            raise MilvusError(Code.INDEX_NOT_FOUND, f"index not found[collection={meta.name}][field={anns}]")
        index_type = indexes[0]["params"].get("index_type", "")
        metric = indexes[0]["params"].get("metric_type", "")
        asked = params.get("metric_type") or sp.pop("metric_type", "")
        if asked and asked.upper() != metric.upper():
            raise invalid(f"metric type not match: invalid parameter[expected={metric}][actual={asked}]")
        inner = sp.pop("params", None)
        if isinstance(inner, dict):
            sp.update(inner)
        search_params = validate_search_params(index_type, sp, k=topk)
        queries = decode_placeholder_group(request.placeholder_group, field)
        nq = int(queries.shape[0])
        plan = plan_outputs(schema, list(request.output_fields), include_pk=False)
        partition_ids = self._partitions(meta, request.partition_names)
        gts = self.reader.guarantee_ts(meta, request)
        replies = self.reader.fan_out(
            meta,
            "search",
            partition_ids=partition_ids,
            field=anns,
            dtype=field.dtype,
            metric=metric,
            queries=queries,
            k=topk + offset,
            params=search_params,
            expr=request.dsl,
            expr_params=expr_params(request.expr_template_values),
            output_fields=plan.fetch,
            guarantee_ts=gts,
        )
        parts = [Hits.from_wire(r) for r in replies if not r.get("empty")]
        result = schema_pb2.SearchResultData(num_queries=nq, top_k=topk, primary_field_name=schema.primary.name)
        if parts:
            hits = merge_hits(parts, topk, metric_ascending(metric), offset=offset)
            filled = hits.filled
            counts = filled.sum(axis=1)
            scores = hits.scores[filled]
            if round_decimal is not None and round_decimal >= 0:
                scores = np.round(scores, round_decimal)
            result.scores.extend(scores.tolist())
            result.ids.CopyFrom(encode_ids(hits.pks[filled], schema.primary.dtype))
            result.topks.extend(counts.tolist())
            flat = filled.reshape(-1)
            cols = {name: col[flat] for name, col in hits.fields.items()}
            result.fields_data.extend(encode_outputs(schema, cols, plan))
        else:
            result.topks.extend([0] * nq)
            result.ids.CopyFrom(
                encode_ids(np.empty(0, dtype=np.int64 if schema.primary.dtype == 5 else object), schema.primary.dtype)
            )
        result.output_fields.extend(plan.names)
        return milvus_pb2.SearchResults(status=ok(), results=result, collection_name=meta.name)

    @guard("Query")
    def Query(self, request: Any, context: Any) -> Any:
        return self.ctx.scheduler.dql.run(lambda: self._query(request, context))

    def _query(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        schema = meta.schema
        params = {kv.key: kv.value for kv in request.query_params}
        limit = _int_param(params, "limit")
        offset = _int_param(params, "offset", 0) or 0
        expr = request.expr or ""
        requested = [f.strip() for f in request.output_fields]
        count_only = any(f.lower() == "count(*)" for f in requested)
        if count_only:
            if len(requested) > 1:
                raise invalid("count entities with other output fields is not allowed")
            if limit is not None or offset:
                raise invalid("count entities with pagination is not allowed")
        elif not expr.strip() and limit is None:
            raise invalid("empty expression should be used with limit")
        if limit is not None and (limit <= 0 or limit + offset > MAX_TOPK):
            raise invalid(
                "invalid max query result window, (offset+limit) should be in range "
                f"[1, {MAX_TOPK}], but got {limit + offset}"
            )
        partition_ids = self._partitions(meta, request.partition_names)
        gts = self.reader.guarantee_ts(meta, request)
        params_values = expr_params(request.expr_template_values)
        if count_only:
            replies = self.reader.fan_out(
                meta,
                "query",
                partition_ids=partition_ids,
                expr=expr,
                expr_params=params_values,
                output_fields=[],
                limit=None,
                guarantee_ts=gts,
                count_only=True,
            )
            total = sum(int(r["count"]) for r in replies)
            fd = schema_pb2.FieldData(type=schema_pb2.DataType.Int64, field_name="count(*)")
            fd.scalars.long_data.data.append(total)
            return milvus_pb2.QueryResults(
                status=ok(),
                fields_data=[fd],
                collection_name=meta.name,
                output_fields=["count(*)"],
                primary_field_name=schema.primary.name,
            )
        plan = plan_outputs(schema, requested, include_pk=True)
        window = None if limit is None else limit + offset
        replies = self.reader.fan_out(
            meta,
            "query",
            partition_ids=partition_ids,
            expr=expr,
            expr_params=params_values,
            output_fields=plan.fetch,
            limit=window,
            guarantee_ts=gts,
        )
        rows = merge_rows([r["rows"] for r in replies], schema.primary.name, limit, offset)
        if not rows:
            rows = {name: empty_column(schema.field(name), 0) for name in plan.fetch if not name.endswith(".valid")}
        return milvus_pb2.QueryResults(
            status=ok(),
            fields_data=encode_outputs(schema, rows, plan),
            collection_name=meta.name,
            output_fields=plan.names,
            primary_field_name=schema.primary.name,
        )
