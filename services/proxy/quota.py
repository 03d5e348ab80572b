"""Quotas and limits in front of the Milvus RPCs (Milvus's RateLimitInterceptor and proxy checks).

Installed on the servicer like the auth guard (inside it, so only authenticated calls spend
tokens), it covers gRPC and REST alike. Per request, in Milvus's order:

* sizes and shapes: ``maxInsertSize`` for Insert/Upsert (code 1102), the proxy's receive limit for
  REST bodies (gRPC enforces it in the server), topK / nq / query result window, and the schema
  limits of CreateCollection (fields, vector fields, dimension, shards);
* ``limitWriting.forceDeny`` / ``limitReading.forceDeny``: code 9 "quota exceeded[reason=...]";
* token buckets: DML (bytes/s of Insert, Upsert, Delete) and DQL (search vectors/s, query
  requests/s), a cluster level and a per-collection level. The configured rates are cluster-wide;
  each proxy takes its share, the rate divided by the live proxies the coordinator counts (as
  Milvus's quota center does). A refusal is code 8 "rate limit exceeded[rate=...]", retriable.

Counts that span proxies (databases, collections, partitions) are the coordinator's to check
(common/limits.py).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
from pymilvus.grpc_gen import schema_pb2

from common.config import QuotaConfig
from common.errors import MilvusError, invalid
from common.limits import FORCE_DENY, MB, TokenBucket, quota_exceeded, rate_limited, too_large
from common.metrics import RATE_LIMITED, REQUESTS
from common.rpc import Caller
from services.proxy.context import db_of
from services.proxy.status import error_response

log = logging.getLogger(__name__)

WRITES = {"Insert": "DMLInsert", "Upsert": "DMLUpsert", "Delete": "DMLDelete", "Import": "DMLBulkLoad"}
READS = {"Search": "DQLSearch", "HybridSearch": "DQLSearch", "Query": "DQLQuery"}
_VECTOR_TYPES = {
    schema_pb2.DataType.FloatVector,
    schema_pb2.DataType.BinaryVector,
    schema_pb2.DataType.Float16Vector,
    schema_pb2.DataType.BFloat16Vector,
    schema_pb2.DataType.SparseFloatVector,
    schema_pb2.DataType.Int8Vector,
}
_COLLECTION_LIMITERS = 10_000  # forget per-collection buckets beyond this many (dropped collections)


def _rates(quota: QuotaConfig) -> dict[str, tuple[float, float]]:
    """Rate type -> (cluster rate, per-collection rate) in tokens per second (-1: none)."""
    def mb(v: float) -> float:
        return v * MB if v >= 0 else -1.0

    dml = quota.dml_enabled
    dql = quota.dql_enabled
    off = (-1.0, -1.0)
    return {
        "DMLInsert": (mb(quota.insert_rate), mb(quota.insert_rate_collection)) if dml else off,
        "DMLUpsert": (mb(quota.upsert_rate), mb(quota.upsert_rate_collection)) if dml else off,
        "DMLDelete": (mb(quota.delete_rate), mb(quota.delete_rate_collection)) if dml else off,
        "DMLBulkLoad": off,  # Milvus has no bulk-load rate yet; deny_writing still stops imports
        "DQLSearch": (quota.search_rate, quota.search_rate_collection) if dql else off,
        "DQLQuery": (quota.query_rate, quota.query_rate_collection) if dql else off,
    }


def _param(pairs: Any, key: str) -> int | None:
    for kv in pairs:
        if kv.key == key:
            try:
                return int(str(kv.value).strip())
            except ValueError:
                return None  # the handler reports the malformed value
    return None


class QuotaGate:
    """One proxy's limiters and checks; ``proxies`` counts the live proxies (for this proxy's share)."""

    def __init__(
        self, quota: QuotaConfig, proxies: Callable[[], int] | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.quota = quota
        self._proxies = proxies
        self._clock = clock
        self._cluster_rates = _rates(quota)
        self._share = 1
        self._counted_at = -1e18
        self._lock = threading.Lock()
        self._root = {rt: TokenBucket(r[0], clock) for rt, r in self._cluster_rates.items()}
        self._per_collection: dict[tuple[str, int], TokenBucket] = {}

    # --- this proxy's share of the cluster rates ----------------------------------------------
    def _per_proxy(self, rate: float) -> float:
        return rate / self._share if rate > 0 else rate

    def refresh_share(self) -> None:
        """Recount the live proxies every ``proxy_count_interval_seconds`` and rescale the buckets."""
        if self._proxies is None:
            return
        now = self._clock()
        if now - self._counted_at < self.quota.proxy_count_interval_seconds:
            return
        self._counted_at = now
        try:
            count = max(1, int(self._proxies()))
        except Exception:  # keep the last share while the coordinator is away
            log.debug("counting proxies failed", exc_info=True)
            return
        if count == self._share:
            return
        with self._lock:
            self._share = count
            for rt, bucket in self._root.items():
                bucket.set_rate(self._per_proxy(self._cluster_rates[rt][0]))
            for (rt, _), bucket in self._per_collection.items():
                bucket.set_rate(self._per_proxy(self._cluster_rates[rt][1]))

    def limits_collections(self, rate_type: str) -> bool:
        """Whether ``rate_type`` has a per-collection rate (only then is the collection looked up)."""
        return self.quota.enabled and self._cluster_rates[rate_type][1] >= 0

    def _collection_bucket(self, rate_type: str, collection_id: int) -> TokenBucket | None:
        rate = self._cluster_rates[rate_type][1]
        if rate < 0:
            return None
        key = (rate_type, collection_id)
        with self._lock:
            bucket = self._per_collection.get(key)
            if bucket is None:
                if len(self._per_collection) >= _COLLECTION_LIMITERS:
                    self._per_collection.clear()
                bucket = self._per_collection[key] = TokenBucket(self._per_proxy(rate), self._clock)
            return bucket

    # --- checks -------------------------------------------------------------------------------
    def check_shape(self, method: str, request: Any, context: Any) -> None:
        """Request size and shape limits (always on, as Milvus's proxy validations)."""
        q = self.quota
        if not isinstance(context, grpc.ServicerContext) and request.ByteSize() > q.server_max_recv_size:
            raise too_large(f"request size {request.ByteSize()} exceeds serverMaxRecvSize {q.server_max_recv_size}")
        if method in ("Insert", "Upsert") and 0 <= q.max_insert_size < request.ByteSize():
            raise too_large(f"{method.lower()} request size exceeds maxInsertSize")
        if method == "Search":
            self._check_search(request.nq, request.search_params)
        elif method == "HybridSearch":
            for sub in request.requests:
                self._check_search(sub.nq, sub.search_params)
            self._check_topk(_param(request.rank_params, "limit"))
        elif method == "Query":
            self._check_query(request)
        elif method == "CreateCollection":
            self._check_schema(request)

    def _check_topk(self, topk: int | None) -> None:
        limit = self.quota.top_k
        if topk is not None and topk > limit:
            raise invalid(f"topk [{topk}] is invalid, it should be in range [1, {limit}], but got {topk}")

    def _check_search(self, nq: int, params: Any) -> None:
        limit = self.quota.nq
        if nq > limit:
            raise invalid(f"nq (number of search vector per search request) should be in range [1, {limit}], "
                          f"but got {nq}")
        self._check_topk(_param(params, "topk"))

    def _check_query(self, request: Any) -> None:
        limit = _param(request.query_params, "limit")
        if limit is None:
            return
        depth = limit + (_param(request.query_params, "offset") or 0)
        window = self.quota.max_query_result_window
        if depth > window:
            raise invalid(f"invalid max query result window, (offset+limit) should be in range [1, {window}], "
                          f"but got {depth}")
        if limit > self.quota.top_k:
            raise invalid(f"limit [{limit}] is invalid, it should be in range [1, {self.quota.top_k}], but got {limit}")

    def _check_schema(self, request: Any) -> None:
        q = self.quota
        if request.shards_num > q.max_shard_num:
            raise invalid(f"maximum shards's number should be limited to {q.max_shard_num}")
        schema = schema_pb2.CollectionSchema()
        try:
            schema.ParseFromString(request.schema)
        except Exception:
            return  # the handler reports the broken schema
        fields = list(schema.fields)
        if len(fields) > q.max_field_num:
            raise invalid(f"maximum field's number should be limited to {q.max_field_num}")
        vectors = [f for f in fields if f.data_type in _VECTOR_TYPES]
        if len(vectors) > q.max_vector_field_num:
            raise invalid(f"maximum vector field's number should be limited to {q.max_vector_field_num}")
        for f in vectors:
            dim = _param(f.type_params, "dim")
            if dim is None:
                continue
            binary = f.data_type == schema_pb2.DataType.BinaryVector
            top = q.max_dimension * 8 if binary else q.max_dimension
            if dim > top:
                kind = "binary" if binary else "float"
                raise invalid(f"invalid dimension: {dim} of field {f.name}. {kind} vector dimension should be in "
                              f"range 2 ~ {top}: invalid parameter")

    def check_rate(self, rate_type: str, n: float, collection_id: int | None) -> None:
        """Deny switches, then the cluster bucket, then the collection's (giving back on refusal)."""
        if not self.quota.enabled or n <= 0:
            return
        if rate_type.startswith("DML") and self.quota.deny_writing:
            raise quota_exceeded(FORCE_DENY)
        if rate_type.startswith("DQL") and self.quota.deny_reading:
            raise quota_exceeded(FORCE_DENY)
        self.refresh_share()
        buckets = [self._root[rate_type]]
        if collection_id is not None:
            bucket = self._collection_bucket(rate_type, collection_id)
            if bucket is not None:
                buckets.append(bucket)
        taken: list[TokenBucket] = []
        for bucket in buckets:
            if bucket.unlimited:
                continue
            if bucket.rate == 0:
                failure = quota_exceeded(f"rate type: {rate_type}")
            elif bucket.allow(n):
                taken.append(bucket)
                continue
            else:
                failure = rate_limited(bucket.rate)
            for done in taken:
                done.cancel(n)
            RATE_LIMITED.labels(rate_type).inc()
            raise failure


def request_cost(method: str, request: Any) -> tuple[str, float] | None:
    """(rate type, tokens) of a limited RPC: bytes for DML, nq for search, 1 for query."""
    if method in WRITES:
        return WRITES[method], float(request.ByteSize())
    if method == "Search":
        return "DQLSearch", float(max(request.nq, 1))
    if method == "HybridSearch":
        return "DQLSearch", float(max(sum(r.nq for r in request.requests), 1))
    if method == "Query":
        return "DQLQuery", 1.0
    return None


def gate_of(servicer: Any) -> QuotaGate:
    """The servicer's gate, built on first use from its proxy's config."""
    gate: QuotaGate | None = servicer.__dict__.get("_quota_gate")
    if gate is None:
        with _BUILD_LOCK:
            gate = servicer.__dict__.get("_quota_gate")
            if gate is None:
                coord: Caller = servicer.ctx.coord
                gate = QuotaGate(servicer.ctx.cfg.quota, lambda: int(coord.call("live_proxy_count", timeout=2.0)))
                servicer.__dict__["_quota_gate"] = gate
    return gate


_BUILD_LOCK = threading.Lock()
LIMITED = frozenset(WRITES) | frozenset(READS) | {"CreateCollection"}


def limited(method: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a servicer method with the checks above; a refusal is the method's error response."""

    @functools.wraps(handler)
    def call(self: Any, request: Any, context: Any) -> Any:
        gate = gate_of(self)
        try:
            gate.check_shape(method, request, context)
            cost = request_cost(method, request)
            if cost is not None:
                per_collection = gate.limits_collections(cost[0])
                gate.check_rate(cost[0], cost[1], _collection_id(self, request, context) if per_collection else None)
        except MilvusError as exc:
            REQUESTS.labels(method, str(exc.code)).inc()  # refused before the handler's own accounting
            return error_response(method, exc.code, exc.message)
        return handler(self, request, context)

    return call


def _collection_id(servicer: Any, request: Any, context: Any) -> int | None:
    name = getattr(request, "collection_name", "")
    if not name:
        return None
    try:
        return int(servicer.ctx.cache.get(db_of(request, context), name).id)
    except MilvusError:
        return None  # unknown collection: the handler reports it


KEEPALIVE_OPTIONS = [
    # Milvus's proxy accepts a client's keepalive pings every 5 s, with or without calls in flight
    # (its keepalive.EnforcementPolicy); gRPC's defaults (5 min, only during calls) answer pymilvus's
    # 10 s pings on an idle connection with GOAWAY "too_many_pings", which breaks the channel that
    # pymilvus shares between the clients of one address
    ("grpc.http2.min_ping_interval_without_data_ms", 5000),
    ("grpc.keepalive_permit_without_calls", 1),
    # and it pings an idle client after 60 s, dropping it if no answer comes within 10 s
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 10_000),
]


def grpc_server_options(quota: QuotaConfig) -> list[tuple[str, int]]:
    """The Milvus gRPC server's message limits (proxy.grpc.serverMaxRecvSize / serverMaxSendSize)
    and its keepalive policy."""
    return [
        ("grpc.max_receive_message_length", quota.server_max_recv_size),
        ("grpc.max_send_message_length", quota.server_max_send_size),
        *KEEPALIVE_OPTIONS,
    ]


def install(servicer_class: type) -> None:
    """Put the quota checks in front of the limited RPCs (call before the auth guard is installed)."""
    for name in sorted(LIMITED):
        setattr(servicer_class, name, limited(name, getattr(servicer_class, name)))
