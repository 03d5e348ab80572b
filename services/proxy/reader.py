"""Reads fanned out to the querynodes serving a collection's shards, and the consistency rules.

The proxy asks the coordinator which querynode leads each shard (cached), sends one call per
node with the shards it leads, and retries once with fresh leaders when a node is gone.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from common import tso
from common.errors import Code, MilvusError
from services.proxy.context import ProxyContext
from services.proxy.meta_cache import CollectionMeta

STRONG, SESSION, BOUNDED, EVENTUALLY, CUSTOMIZED = 0, 1, 2, 3, 4
BOUNDED_STALENESS_SECONDS = 5.0
_STALE_CODES = {Code.CHANNEL_NOT_AVAILABLE, Code.NODE_NOT_AVAILABLE, Code.SERVICE_UNAVAILABLE, Code.CHANNEL_NOT_FOUND}


class ShardReader:
    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="proxy-fanout")

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
        for attempt in range(2):
            leaders = self.ctx.cache.shard_leaders(meta.id)
            by_node: dict[str, list[str]] = {}
            for vchannel, endpoints in leaders.items():
                by_node.setdefault(endpoints[0], []).append(vchannel)
            try:
                if len(by_node) == 1:
                    ((endpoint, vchannels),) = by_node.items()
                    return [self.ctx.router.client(endpoint).call(method, vchannels=vchannels, **kwargs)]
                futures = [
                    self._pool.submit(self.ctx.router.client(e).call, method, vchannels=v, **kwargs)
                    for e, v in by_node.items()
                ]
                return [f.result() for f in futures]
            except MilvusError as exc:
                self.ctx.cache.drop_leaders(meta.id)
                if attempt == 1 or exc.code not in _STALE_CODES:
                    raise
        raise AssertionError("unreachable")

    def check_partitions_loaded(self, meta: CollectionMeta, partition_ids: list[int], names: list[str]) -> None:
        info = self.ctx.coord.call("get_load_info", collection_id=meta.id)
        if info is None:
            raise MilvusError(Code.COLLECTION_NOT_LOADED, f"collection not loaded[collection={meta.name}]")
        loaded = set(info["partition_ids"])
        for pid, name in zip(partition_ids, names, strict=True):
            if pid not in loaded:
                raise MilvusError(Code.PARTITION_NOT_LOADED, f"partition not loaded[partition={name}]")
