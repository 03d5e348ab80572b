"""One ANN search as the proxy understands it, parsed and validated from a SearchRequest.

Search, every sub-request of HybridSearch, grouping searches and search iterators all start
from the same request shape (``search_params`` key/values, a placeholder group, a filter), so
their validation lives here once, with Milvus's wording for every bad value. Running the
search (fan-out to the querynodes and the top-k merge) is also here, so the callers only
decide how many candidates they need and what to do with them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.bm25 import query_terms
from common.errors import Code, MilvusError, invalid
from common.fielddata import decode_placeholder_group, decode_text_placeholder
from common.index import metric_ascending, validate_search_params, widen_candidate_lists
from common.reduce import Hits, merge_hits
from common.schema import Field
from common.timestamptz import with_request_zone
from services.proxy.context import ProxyContext
from services.proxy.meta_cache import CollectionMeta
from services.proxy.reader import ShardReader
from services.proxy.search_by_pk import requested_ids
from services.proxy.templates import expr_params

MAX_TOPK = 16384


def int_param(params: dict[str, str], key: str, default: int | None = None) -> int | None:
    """An integer search/rank parameter; JSON numbers ("10", "10.0") are accepted."""
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(json.loads(raw)) if not raw.lstrip("-").isdigit() else int(raw)
    except (ValueError, TypeError, OverflowError) as exc:  # OverflowError: "Infinity" parses as a JSON float
        raise invalid(f"{key} [{raw}] is invalid") from exc


def bool_param(params: dict[str, str], key: str) -> bool:
    """Go's strconv.ParseBool, with an unparsable value read as false (as Milvus does)."""
    return params.get(key, "").strip() in ("1", "t", "T", "true", "TRUE", "True")


def round_decimal_of(params: dict[str, str]) -> int:
    value = int_param(params, "round_decimal", -1)
    if value is None or not -1 <= value <= 6:
        raise invalid(
            f"round_decimal [{params.get('round_decimal')}] is invalid, should be -1 or an integer in range [0, 6]"
        )
    return value


@dataclass(frozen=True)
class SearchPlan:
    """What a request's ``search_params`` resolve to against one collection and its indexes."""

    anns: str
    field: Field
    metric: str
    index_type: str
    topk: int
    offset: int
    round_decimal: int
    search_params: dict[str, Any]


@dataclass(frozen=True)
class AnnSearch(SearchPlan):
    """A validated ANN search: its plan (field, metric, params), the queries and the filter."""

    queries: np.ndarray
    expr: str
    expr_params: dict[str, Any] | None
    params: dict[str, str] = dataclasses.field(default_factory=dict)  # the raw key/values, for later stages

    @property
    def nq(self) -> int:
        return int(self.queries.shape[0])

    @property
    def ascending(self) -> bool:
        return metric_ascending(self.metric)

    def with_params(self, **extra: Any) -> dict[str, Any]:
        """The search params plus ``extra`` (e.g. radius/range_filter), validated again."""
        merged = dict(self.search_params)
        merged.update(extra)
        return validate_search_params(self.index_type, merged, k=None)


# Validated plans by (collection meta, advanced, search_params key/values). A collection serves
# the same few parameter sets over and over; an entry is used only while the meta object and the
# cached index list it was made from are still the current ones (DDL replaces them).
_PLANS: dict[tuple[int, bool, tuple[tuple[str, str], ...]], tuple[CollectionMeta, Any, SearchPlan]] = {}
_MAX_PLANS = 1024


def _plan(ctx: ProxyContext, meta: CollectionMeta, params: dict[str, str], advanced: bool) -> SearchPlan:
    indexes = ctx.cache.indexes(meta.id)
    key = (meta.id, advanced, tuple(params.items()))
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is meta and hit[1] is indexes:
        return hit[2]
    plan = _validate_plan(meta, indexes, params, advanced)
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[key] = (meta, indexes, plan)
    return plan


def _validate_plan(
    meta: CollectionMeta, indexes: list[dict[str, Any]], params: dict[str, str], advanced: bool
) -> SearchPlan:
    schema = meta.schema
    vectors = schema.vector_fields
    anns = params.get("anns_field", "")
    if not anns:
        if len(vectors) != 1:
            raise invalid("multiple anns_fields exist, please specify a anns_field in search_params")
        anns = vectors[0].name
    fld = schema.get(anns)
    if fld is None or not fld.is_vector:
        raise invalid(f"failed to get field schema by name: fieldName({anns}) not found")
    topk = int_param(params, "topk")
    iterator = bool_param(params, "iterator")
    if iterator and topk is not None and topk > MAX_TOPK:
        topk = MAX_TOPK  # an iterator resolves a too-large topk itself, as Milvus allows
    if topk is None or not 1 <= topk <= MAX_TOPK:
        raise invalid(f"topk [{params.get('topk')}] is invalid, it should be in range [1, {MAX_TOPK}], but got {topk}")
    offset = 0 if advanced else (int_param(params, "offset", 0) or 0)
    if offset < 0 or offset + topk > MAX_TOPK:
        raise invalid(f"top k + offset should be in range [1, {MAX_TOPK}], but got {offset + topk}")
    round_decimal = round_decimal_of(params)
    try:
        sp = json.loads(params.get("params") or "{}")
    except ValueError as exc:
        raise invalid(f"search params is not valid JSON: {params.get('params')}") from exc
    if not isinstance(sp, dict):
        raise invalid(f"search params must be a JSON object: {params.get('params')}")
    found = [i for i in indexes if i["field_name"] == anns]
    if not found:  # loading needs an index on every vector field: this one came after the load
        raise MilvusError(
            Code.INDEX_NOT_FOUND,
            f"field {anns} is not loaded, please reload the collection: index not found[collection={meta.name}]"
            f"[field={anns}]",
        )
    index_type = found[0]["params"].get("index_type", "")
    metric = found[0]["params"].get("metric_type", "")
    asked = params.get("metric_type") or sp.pop("metric_type", "")
    if asked and asked.upper() != metric.upper():
        raise invalid(f"metric type not match: invalid parameter[expected={metric}][actual={asked}]")
    inner = sp.pop("params", None)
    if isinstance(inner, dict):
        sp.update(inner)
    search_params = validate_search_params(index_type, sp, k=topk)
    if metric.upper() == "BM25":  # unindexed (growing) segments score with the index's k1 and b
        built = found[0].get("build_params") or {}
        search_params.update({k: built[k] for k in ("bm25_k1", "bm25_b") if k in built})
    return SearchPlan(anns, fld, metric, index_type, topk, offset, round_decimal, search_params)


def parse_ann(
    ctx: ProxyContext, meta: CollectionMeta, request: Any, advanced: bool = False,
    queries_of: Callable[[Field], np.ndarray] | None = None,
) -> AnnSearch:
    """Validate one SearchRequest (or a HybridSearch sub-request) against the collection.

    ``advanced`` (a hybrid sub-request) ignores ``offset``, as Milvus does. ``queries_of``: the query
    vectors for the searched field when the request has none of its own (a search by primary keys).
    """
    params = {kv.key: kv.value for kv in request.search_params}
    if queries_of is None and requested_ids(request) is not None:
        raise MilvusError(Code.UNIMPLEMENTED, "search by primary keys in a hybrid search is not supported by Quiver")
    plan = _plan(ctx, meta, params, advanced)
    if queries_of is not None:
        queries = queries_of(plan.field)
    elif (fn := meta.schema.function_of_output(plan.anns)) is not None and fn.is_bm25:
        texts = decode_text_placeholder(request.placeholder_group)
        queries = query_terms(meta.schema.field(fn.input_names[0]), texts, params.get("analyzer_name") or None)
    else:
        queries = decode_placeholder_group(request.placeholder_group, plan.field)
    cached = {f.name: getattr(plan, f.name) for f in dataclasses.fields(SearchPlan)}
    return AnnSearch(
        **cached | {"search_params": dict(plan.search_params)},  # each search may adjust its own copy
        queries=queries,
        expr=request.dsl,
        expr_params=with_request_zone(expr_params(request.expr_template_values), params.get("timezone", "")),
        params=params,
    )


def _widened(ann: AnnSearch, k: int, params: dict[str, Any]) -> dict[str, Any]:
    """Grouping and iterators ask for more than the user's top-k: their ef/search list follow."""
    return params if k <= ann.topk + ann.offset else widen_candidate_lists(params, k)


def run_ann(
    reader: ShardReader,
    meta: CollectionMeta,
    ann: AnnSearch,
    k: int,
    output_fields: list[str],
    partition_ids: list[int],
    guarantee_ts: int,
    search_params: dict[str, Any] | None = None,
    read_ts: int = 0,
) -> Hits | None:
    """The best ``k`` distinct-pk hits per query over every shard (None: no segment answered);
    ``read_ts`` > 0 reads at that timestamp (an iterator's snapshot)."""
    replies = reader.fan_out(
        meta,
        "search",
        partition_ids=partition_ids,
        field=ann.anns,
        dtype=ann.field.dtype,
        metric=ann.metric,
        queries=ann.queries,
        k=k,
        params=_widened(ann, k, ann.search_params if search_params is None else search_params),
        expr=ann.expr,
        expr_params=ann.expr_params,
        output_fields=output_fields,
        guarantee_ts=guarantee_ts,
        read_ts=read_ts,
    )
    parts = [Hits.from_wire(r) for r in replies if not r.get("empty")]
    if not parts:
        return None
    if len(parts) == 1 and parts[0].k == k:
        return parts[0]  # one querynode's reply is merged already (the same merge_hits, same k)
    return merge_hits(parts, k, ann.ascending)
