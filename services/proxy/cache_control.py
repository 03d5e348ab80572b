"""The proxy's internal RPC: the coordinator's "forget this collection" after a DDL.

Milvus's rootcoord calls InvalidateCollectionMetaCache on every proxy when a collection, alias,
partition or index changes; Quiver's coordinator does the same through this handler
(services/coord/proxy_cache.py), so a proxy never serves a schema another proxy just changed.
"""

from __future__ import annotations

from common.rpc import rpc
from services.proxy.meta_cache import MetaCache


class ProxyControl:
    def __init__(self, cache: MetaCache) -> None:
        self.cache = cache

    @rpc
    def invalidate_collection_cache(
        self, db_name: str = "", names: list[str] | None = None, collection_id: int = 0
    ) -> None:
        """Drop the entries for ``names`` in ``db_name`` and for ``collection_id``; nothing given: drop all."""
        for name in names or []:
            self.cache.invalidate(db_name, name)
        if collection_id:
            self.cache.invalidate(collection_id=collection_id)
        if not names and not collection_id:
            self.cache.invalidate()
