"""After a DDL, every proxy drops what it cached about the collection (Milvus's InvalidateCollectionMetaCache).

Proxies cache schemas, aliases, indexes and shard leaders for a few seconds to keep reads fast.
The proxy that served a DDL drops its own entry, but in a cluster with several proxies the
others would keep serving the old schema (an added field unknown, a renamed collection still
found) until their entries expire. So the coordinator tells every live proxy, before the DDL
returns, which names and collection id to forget. A proxy that does not answer is logged and
skipped: its entries still expire on their own.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from common.errors import MilvusError
from services.coord.context import CoordContext

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
NOTIFY_TIMEOUT_SECONDS = 2.0
_NAME_PARAMS = ("collection", "name", "old_name", "alias")  # parameters that name what a proxy caches


def notify_proxies(
    ctx: CoordContext, db_name: str = "", names: list[str] | None = None, collection_id: int = 0
) -> None:
    """Ask every live proxy to forget ``names`` (in ``db_name``) and ``collection_id``."""
    for node in ctx.nodes("proxy"):
        if not node.endpoint:  # a proxy of an older version: nothing to call
            continue
        try:
            ctx.router.client(node.endpoint).call(
                "invalidate_collection_cache",
                timeout=NOTIFY_TIMEOUT_SECONDS,
                db_name=db_name,
                names=names or [],
                collection_id=collection_id,
            )
        except MilvusError as exc:
            log.warning("proxy %s did not drop its cache: %s", node.endpoint, exc.message)


def invalidates_proxy_cache(func: F) -> F:
    """Mark a coordinator DDL method: once it succeeds, every proxy forgets the collection it names."""
    sig = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = func(self, *args, **kwargs)
        bound = sig.bind(self, *args, **kwargs)
        names = [str(bound.arguments[p]) for p in _NAME_PARAMS if bound.arguments.get(p)]
        notify_proxies(
            self.ctx,
            db_name=str(bound.arguments.get("db_name") or ""),
            names=names,
            collection_id=int(bound.arguments.get("collection_id") or 0),
        )
        return result

    return wrapper  # type: ignore[return-value]
