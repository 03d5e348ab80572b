"""Reads fanned out to the querynodes serving a collection's shards, and the consistency rules.

The proxy asks the coordinator which querynodes lead each shard, one per replica (cached), sends
one call per node with the shards it picks there (replicas in turn, to spread load), moves a
failed node's shards to their other replicas at once, and fetches fresh leaders once when no
replica of a shard answers. A shard without a live replica fails the read: never partial hits.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from common import tso
from common.errors import Code, MilvusError
from services.proxy.context import ProxyContext
from services.proxy.meta_cache import CollectionMeta

STRONG, SESSION, BOUNDED, EVENTUALLY, CUSTOMIZED = 0, 1, 2, 3, 4
BOUNDED_STALENESS_SECONDS = 5.0
log = logging.getLogger(__name__)
_STALE_CODES = {Code.CHANNEL_NOT_AVAILABLE, Code.NODE_NOT_AVAILABLE, Code.SERVICE_UNAVAILABLE, Code.CHANNEL_NOT_FOUND}


class ShardReader:
    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="proxy-fanout")
        self._turn = itertools.count()  # round robin over replicas

    def guarantee_ts(self, meta: CollectionMeta, request: Any) -> int:
        """The timestamp a read must observe, per Milvus's consistency levels."""
        level = meta.consistency_level if request.use_default_consistency else int(request.consistency_level)
        if level == STRONG:
            ts = int(self.ctx.coord.call("alloc_timestamp"))
            self.ctx.ticker.report()  # tick now rather than at the next interval
            return ts
        if level == BOUNDED:
            return tso.compose(tso.now_ms() - int(BOUNDED_STALENESS_SECONDS * 1000))
        if level in (SESSION, CUSTOMIZED):
            return int(request.guarantee_timestamp) or 1
        return 1

    def fan_out(self, meta: CollectionMeta, method: str, **kwargs: Any) -> list[Any]:
        """One result per node asked; every vchannel is answered by exactly one replica, or this fails.

        Replicas take turns (round robin); when a node fails with a node-level error, its
        vchannels go to their other replicas at once. When no replica is left, the leaders are
        fetched again once (the coordinator may have moved the channel), then the error stands.
        """
        for attempt in range(2):
            leaders = self.ctx.cache.shard_leaders(meta.id)
            try:
                results, failed = self._fan_out_once(leaders, method, kwargs)
                if failed:
                    self.ctx.cache.drop_leaders(meta.id)  # ask again: the coordinator may know by now
                return results
            except MilvusError as exc:
                self.ctx.cache.drop_leaders(meta.id)
                if attempt == 1 or exc.code not in _STALE_CODES:
                    raise
        raise AssertionError("unreachable")

    def _fan_out_once(
        self, leaders: dict[str, list[str]], method: str, kwargs: dict[str, Any]
    ) -> tuple[list[Any], set[str]]:
        turn = next(self._turn)
        candidates = {v: eps[turn % len(eps) :] + eps[: turn % len(eps)] for v, eps in leaders.items() if eps}
        if len(candidates) != len(leaders):
            missing = sorted(set(leaders) - set(candidates))
            raise MilvusError(Code.CHANNEL_NOT_AVAILABLE, f"channel not available[channel={missing[0]}]")
        failed: set[str] = set()
        results: list[Any] = []
        pending = sorted(candidates)
        last: MilvusError | None = None
        while pending:
            by_node: dict[str, list[str]] = {}
            for v in pending:
                live = [e for e in candidates[v] if e not in failed]
                if not live:
                    detail = last.message if last is not None else "none"
                    raise MilvusError(
                        Code.CHANNEL_NOT_AVAILABLE,
                        f"channel not available[channel={v}]: no available shard leaders, "
                        f"all {len(candidates[v])} failed; last error: {detail}",
                    )
                by_node.setdefault(live[0], []).append(v)
            pending = []
            for endpoint, vchannels, outcome in self._call_all(by_node, method, kwargs):
                if isinstance(outcome, MilvusError):
                    if outcome.code not in _STALE_CODES:
                        raise outcome
                    log.info("%s on %s failed (%s); trying another replica", method, endpoint, outcome)
                    failed.add(endpoint)
                    last = outcome
                    pending.extend(vchannels)
                else:
                    results.append(outcome)
        return results, failed

    def _call_all(
        self, by_node: dict[str, list[str]], method: str, kwargs: dict[str, Any]
    ) -> list[tuple[str, list[str], Any]]:
        def one(endpoint: str, vchannels: list[str]) -> Any:
            try:
                return self.ctx.router.client(endpoint).call(method, vchannels=vchannels, **kwargs)
            except MilvusError as exc:
                return exc

        if len(by_node) == 1:
            ((endpoint, vchannels),) = by_node.items()
            return [(endpoint, vchannels, one(endpoint, vchannels))]
        # each call runs in a copy of this context, so the request id follows it to the querynodes
        futures = [(e, v, self._pool.submit(contextvars.copy_context().run, one, e, v)) for e, v in by_node.items()]
        return [(e, v, f.result()) for e, v, f in futures]

    def check_partitions_loaded(self, meta: CollectionMeta, partition_ids: list[int], names: list[str]) -> None:
        info = self.ctx.coord.call("get_load_info", collection_id=meta.id)
        if info is None:
            raise MilvusError(Code.COLLECTION_NOT_LOADED, f"collection not loaded[collection={meta.name}]")
        loaded = set(info["partition_ids"])
        for pid, name in zip(partition_ids, names, strict=True):
            if pid not in loaded:
                raise MilvusError(Code.PARTITION_NOT_LOADED, f"partition not loaded[partition={name}]")
