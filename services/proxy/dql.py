"""Search, hybrid search and query handlers: parse the request, fan out, merge, encode.

A Search is a plain top-k, a grouping search (services/proxy/grouping.py) or a page of a search
iterator v2 (services/proxy/iterators.py); HybridSearch runs its sub-requests as searches and
fuses them (services/proxy/hybrid.py). Iterator calls (``iterator=True``) read at the
client's session timestamp once it has one, and the first call returns that timestamp.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from pymilvus.grpc_gen import milvus_pb2, schema_pb2

from common.errors import Code, MilvusError, invalid
from common.fielddata import empty_column
from common.reduce import Hits, merge_rows
from common.schema import Field
from common.timestamptz import with_request_zone
from services.proxy.context import ProxyContext, db_of
from services.proxy.grouping import GroupSpec, grouped_hits, parse_group
from services.proxy.highlight import extend_fetch
from services.proxy.highlight import prepare as prepare_highlighter
from services.proxy.hybrid import parse_rank, rank_from_function, rerank
from services.proxy.iterators import iterator_page, parse_iterator_v2
from services.proxy.meta_cache import CollectionMeta
from services.proxy.outputs import encode_outputs, plan_outputs
from services.proxy.reader import ShardReader
from services.proxy.search_by_pk import PkQueries, fetch_queries, requested_ids
from services.proxy.search_results import Picked, encode, from_hits
from services.proxy.search_spec import MAX_TOPK, AnnSearch, bool_param, int_param, parse_ann, run_ann
from services.proxy.status import guard, ok
from services.proxy.templates import expr_params

_SUB_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="proxy-hybrid")


def _has_functions(request: Any) -> bool:
    """Whether a request carries a ``function_score`` reranker (a field of newer protos only)."""
    return "function_score" in request.DESCRIPTOR.fields_by_name and len(request.function_score.functions) > 0


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

    def _read_ts(self, meta: CollectionMeta, request: Any, iterator: bool) -> tuple[int, int]:
        """(guarantee ts, session ts to report): iterators pin the client's session ts once set."""
        if iterator and int(request.guarantee_timestamp) > 0:
            return int(request.guarantee_timestamp), 0
        gts = self.reader.guarantee_ts(meta, request)
        if not iterator:
            return gts, 0
        # an iterator's first call reads at a fresh timestamp, and every later page at the same one
        ts = max(gts, int(self.ctx.coord.call("alloc_timestamp")))
        self.ctx.ticker.report()
        return ts, ts

    def _searcher(
        self, meta: CollectionMeta, ann: AnnSearch, partition_ids: list[int], gts: int, read_ts: int = 0
    ) -> Any:
        def search(k: int, fetch: list[str], params: dict[str, Any] | None = None) -> Hits | None:
            return run_ann(self.reader, meta, ann, k, fetch, partition_ids, gts, search_params=params, read_ts=read_ts)

        return search

    @guard("Search")
    def Search(self, request: Any, context: Any) -> Any:
        return self.ctx.scheduler.dql.run(lambda: self._search(request, context))

    def _search(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        schema = meta.schema
        iterator = bool_param({kv.key: kv.value for kv in request.search_params}, "iterator")
        ids = requested_ids(request)
        by_pk: list[PkQueries] = []
        highlighter = prepare_highlighter(schema, request)  # Milvus checks it before the metric
        if ids is None:
            ann = parse_ann(self.ctx, meta, request)
            partition_ids = self._partitions(meta, request.partition_names)
            gts, session_ts = self._read_ts(meta, request, iterator)
        else:  # the vectors are the rows' own, read at the timestamp the search reads at
            partition_ids = self._partitions(meta, request.partition_names)
            gts, session_ts = self._read_ts(meta, request, iterator)

            def queries_of(field: Field) -> np.ndarray:
                by_pk.append(fetch_queries(self.reader, meta, field, ids, partition_ids, gts))
                return by_pk[0].vectors

            ann = parse_ann(self.ctx, meta, request, queries_of=queries_of)
        if _has_functions(request):
            raise MilvusError(Code.UNIMPLEMENTED, "rerank functions in a single search are not supported by Quiver yet")
        group = parse_group(schema, ann.params)
        it = parse_iterator_v2(ann.params, group is not None, ann.offset)
        tz = ann.params.get("timezone", "")
        plan = plan_outputs(schema, list(request.output_fields), include_pk=False, timezone=tz)
        if highlighter is not None:  # the highlighted texts are fetched, returned only if asked for
            extend_fetch(schema, plan.fetch, highlighter.fetch_fields())
        search = self._searcher(meta, ann, partition_ids, gts, gts if iterator else 0)  # iterators: MVCC at gts
        pk_type = schema.primary.dtype
        last_bound = None
        if ann.nq == 0:  # by primary keys, every one of them with a null vector
            picked = Picked.empty(0, pk_type)
        elif group is not None:
            picked = grouped_hits(
                lambda k, fetch: search(k, fetch), ann.nq, group, ann.offset, ann.topk, plan.fetch, pk_type
            )
        elif it is not None:
            picked, last_bound = iterator_page(
                lambda k, params: search(k, plan.fetch, params), ann, it, plan.fetch, pk_type
            )
        else:
            hits = search(ann.topk + ann.offset, plan.fetch)
            picked = (
                Picked.empty(ann.nq, pk_type) if hits is None else from_hits(hits, ann.offset, ann.topk, plan.fetch)
            )
        if ann.round_decimal >= 0:
            picked.scores = np.round(picked.scores, ann.round_decimal)
        nq = ann.nq
        if by_pk:
            picked, nq = by_pk[0].expand(picked), len(by_pk[0].present)
        reply = milvus_pb2.SearchResults(status=ok(), collection_name=meta.name, session_ts=session_ts)
        result = encode(schema, plan, nq, ann.topk, picked, group.field if group else None, into=reply.results)
        if highlighter is not None:
            result.highlight_results.extend(highlighter.results(picked.cols, picked.topks))
        if it is not None and last_bound is not None:
            result.search_iterator_v2_results.token = it.token
            result.search_iterator_v2_results.last_bound = last_bound
        return reply

    @guard("HybridSearch")
    def HybridSearch(self, request: Any, context: Any) -> Any:
        return self.ctx.scheduler.dql.run(lambda: self._hybrid_search(request, context))

    def _hybrid_search(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        schema = meta.schema
        params = {kv.key: kv.value for kv in request.rank_params}
        rank = parse_rank(params, len(request.requests))
        if _has_functions(request):
            rank = rank_from_function(request.function_score, rank, len(request.requests))
        group = parse_group(schema, params)
        anns = [parse_ann(self.ctx, meta, sub, advanced=True) for sub in request.requests]
        nq = anns[0].nq
        for ann in anns[1:]:
            if ann.nq != nq:
                raise invalid(
                    f"invalid parameter[expected={nq}][actual={ann.nq}]: sub search request nq should be the same"
                )
        tz = params.get("timezone", "")
        plan = plan_outputs(schema, list(request.output_fields), include_pk=False, timezone=tz)
        partition_ids = self._partitions(meta, request.partition_names)
        gts = self.reader.guarantee_ts(meta, request)
        pk_type = schema.primary.dtype

        def sub(ann: AnnSearch) -> Picked:
            return self._sub_search(meta, ann, partition_ids, gts, plan.fetch, group, pk_type)

        if len(anns) == 1:
            subs = [sub(anns[0])]
        else:  # sub-searches run side by side, each in a copy of this context (request id)
            futures = [_SUB_POOL.submit(contextvars.copy_context().run, sub, ann) for ann in anns]
            subs = [f.result() for f in futures]
        picked = rerank(rank, subs, [a.metric for a in anns], nq, plan.fetch, group)
        reply = milvus_pb2.SearchResults(status=ok(), collection_name=meta.name)
        encode(schema, plan, nq, rank.limit, picked, group.field if group else None, into=reply.results)
        return reply

    def _sub_search(
        self,
        meta: CollectionMeta,
        ann: AnnSearch,
        partition_ids: list[int],
        gts: int,
        fetch: list[str],
        group: GroupSpec | None,
        pk_type: int,
    ) -> Picked:
        search = self._searcher(meta, ann, partition_ids, gts)
        if group is not None:
            return grouped_hits(lambda k, f: search(k, f), ann.nq, group, 0, ann.topk, fetch, pk_type)
        hits = search(ann.topk, fetch)
        return Picked.empty(ann.nq, pk_type) if hits is None else from_hits(hits, 0, ann.topk, fetch)

    @guard("Query")
    def Query(self, request: Any, context: Any) -> Any:
        return self.ctx.scheduler.dql.run(lambda: self._query(request, context))

    def _query(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        schema = meta.schema
        params = {kv.key: kv.value for kv in request.query_params}
        limit = int_param(params, "limit")
        offset = int_param(params, "offset", 0) or 0
        if offset < 0:
            raise invalid(f"invalid max query result window, offset [{offset}] is invalid, should be gte than 0")
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
        gts, session_ts = self._read_ts(meta, request, bool_param(params, "iterator"))
        read_ts = gts if bool_param(params, "iterator") else 0  # iterator pages read at their snapshot
        params_values = with_request_zone(expr_params(request.expr_template_values), params.get("timezone", ""))
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
                read_ts=read_ts,
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
        plan = plan_outputs(schema, requested, include_pk=True, timezone=params.get("timezone", ""))
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
            read_ts=read_ts,
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
            session_ts=session_ts,
        )
