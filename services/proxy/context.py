"""What every proxy handler shares: the coordinator client, caches, queues and the stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.config import QuiverConfig
from common.msgstream.base import MsgStream
from common.rpc import Caller, Router
from services.proxy.meta_cache import MetaCache
from services.proxy.tasks import Scheduler
from services.proxy.ticker import DmlTicker

if TYPE_CHECKING:
    from services.proxy.auth import AuthGate


@dataclass
class ProxyContext:
    cfg: QuiverConfig
    node_id: int
    router: Router
    coord: Caller
    stream: MsgStream
    cache: MetaCache
    ticker: DmlTicker
    scheduler: Scheduler
    auth: AuthGate | None = None  # set when common.security.authorization_enabled


def db_of(request: Any, context: Any) -> str:
    """The database a request addresses: its db_name field, else the ``dbname`` header."""
    name = getattr(request, "db_name", "") or ""
    if not name and context is not None:
        for key, value in context.invocation_metadata() or ():
            if key == "dbname":
                name = value
                break
    return name or "default"
