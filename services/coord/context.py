"""What every part of the coordinator shares: config, catalog, clocks, and the way to reach nodes."""

from __future__ import annotations

from dataclasses import dataclass

from common.config import QuiverConfig
from common.kv.base import KV
from common.rpc import Router
from common.session import SessionInfo, live_sessions
from services.coord.catalog import Catalog
from services.coord.tso import IdAllocator, TimestampOracle


@dataclass
class CoordContext:
    cfg: QuiverConfig
    kv: KV
    meta_root: str
    catalog: Catalog
    tso: TimestampOracle
    ids: IdAllocator
    router: Router

    def nodes(self, role: str) -> list[SessionInfo]:
        return live_sessions(self.kv, self.meta_root, role)
