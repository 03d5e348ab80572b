"""The coordinator role: wires root, data, index and query coordination and runs their loops.

Operations that span several parts (dropping a collection or partition, collection
statistics) live here. Two coordinators may run: they campaign for an etcd-leased key and
only the active one serves; a standby takes over when the active one's lease expires.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Any

from common import metrics
from common.backends import open_storage
from common.config import QuiverConfig
from common.errors import Code, MilvusError, invalid
from common.kv.base import KV, LeaseNotFound
from common.msgstream.base import MsgStream
from common.rpc import Router, rpc
from common.storage.base import ObjectStorage
from services.coord.alter import AlterCoord
from services.coord.catalog import Catalog
from services.coord.compaction import CompactionManager
from services.coord.context import CoordContext
from services.coord.data import DataCoord
from services.coord.gc import GarbageCollector
from services.coord.imports import ImportManager
from services.coord.index import IndexCoord
from services.coord.keys import Keys, id_key, tso_key
from services.coord.proxy_cache import invalidates_proxy_cache
from services.coord.query import QueryCoord
from services.coord.rbac import RbacCoord
from services.coord.root import DEFAULT_PARTITION, RootCoord
from services.coord.timetick import TimeTicker
from services.coord.tso import IdAllocator, TimestampOracle

log = logging.getLogger(__name__)


class Coordinator:
    """The coordinator's cross-cutting RPCs plus start/stop of the background loops."""

    def __init__(
        self, cfg: QuiverConfig, kv: KV, stream: MsgStream, router: Router, storage: ObjectStorage | None = None
    ) -> None:
        """``storage`` is the object store garbage collection deletes from (default: opened from cfg)."""
        self.cfg = cfg
        self.kv = kv
        self.stream = stream
        self.router = router
        self.storage = storage
        self._own_storage = storage is None
        kv_root = cfg.kv.etcd.root_path
        self.meta_root = f"{kv_root}/meta"
        self._kv_root = kv_root
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()

    def activate(self) -> None:
        """Load the catalog and start serving (called once this coordinator is active)."""
        catalog = Catalog(self.kv, self.meta_root)
        catalog.load()
        self.ctx = CoordContext(
            cfg=self.cfg,
            kv=self.kv,
            meta_root=self.meta_root,
            catalog=catalog,
            tso=TimestampOracle(self.kv, tso_key(self._kv_root)),
            ids=IdAllocator(self.kv, id_key(self._kv_root)),
            router=self.router,
        )
        self.root = RootCoord(self.ctx)
        self.root.bootstrap()
        self.data = DataCoord(self.ctx)
        self.index = IndexCoord(self.ctx)
        self.query = QueryCoord(self.ctx, self.index)
        self.compaction = CompactionManager(self.ctx, self.data, self.index)
        self.alter = AlterCoord(self.ctx, self.root, self.data, self.index)  # schema/property changes
        self.imports = ImportManager(self.ctx, self.data, self.index, self.query)
        self.query.import_floor = self.imports.delete_floor
        self.gc = GarbageCollector(self.ctx, self._gc_storage, self.query.loaded_segment_ids, self.stream.compare)
        self.rbac = RbacCoord(self.kv, self.meta_root, self.cfg.security)
        self.ticker = TimeTicker(self.ctx, self.stream)
        self.ready.set()
        self._thread = threading.Thread(target=self._loop, name="coord-loop", daemon=True)
        self._thread.start()

    def _gc_storage(self) -> ObjectStorage:
        if self.storage is None:
            self.storage = open_storage(self.cfg)
        return self.storage

    def handlers(self) -> tuple[object, ...]:
        return (self, self.root, self.data, self.index, self.query, self.query.rg_service, self.compaction,
                self.ticker, self.rbac,
                self.imports, self.alter)

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            for step in (
                self.data.reconcile_channels,
                self.data.seal_by_policy,
                self.data.dispatch_flushes,
                self.index.schedule,
                self.query.reconcile,
                self.compaction.tick,
                self.imports.tick,
                self.gc.tick,
            ):
                try:
                    step()
                except Exception:
                    log.exception("coordinator step %s failed", step.__name__)
            with self.ctx.catalog.lock:
                metrics.observe_coord([s.state for s in self.ctx.catalog.segments.values()],
                                      [si.state for si in self.ctx.catalog.segment_indexes.values()])

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._own_storage and self.storage is not None:
            self.storage.close()

    # --- cross-cutting RPCs -------------------------------------------------------------
    @rpc
    @invalidates_proxy_cache
    def drop_collection(self, db_name: str, name: str) -> None:
        coll = self.root.find(db_name, name)
        if coll is None:
            self.root.db(db_name)  # a missing database is an error; a missing collection is not
            return
        with self.ctx.catalog.lock:
            self.ctx.catalog.drop_collection(coll)
        self.query.reconcile()
        self.data.reconcile_channels()

    @rpc
    @invalidates_proxy_cache
    def create_partition(self, db_name: str, collection: str, partition: str) -> None:
        """Create a partition; on a loaded collection it is served before this returns (as Milvus)."""
        self.root.create_partition(db_name, collection, partition)
        coll = self.root.get(db_name, collection)
        if coll.id in self.ctx.catalog.load_infos:
            self.query.reconcile()

    @rpc
    @invalidates_proxy_cache
    def drop_partition(self, db_name: str, collection: str, partition: str) -> None:
        if partition == DEFAULT_PARTITION:
            raise invalid("default partition cannot be deleted")
        coll = self.root.get(db_name, collection)
        with self.ctx.catalog.lock:
            try:
                part = self.root.partition(coll, partition)
            except MilvusError:
                return
            loaded = self.query.loaded_partitions(coll.id) or []
            if part.id in loaded:
                raise invalid("partition cannot be dropped, partition is loaded, please release it first")
            self.ctx.catalog.drop_partition(part)

    @rpc
    def show_partitions(self, db_name: str, collection: str) -> list[dict[str, Any]]:
        coll = self.root.get(db_name, collection)
        with self.ctx.catalog.lock:
            loaded = set(self.query.loaded_partitions(coll.id) or [])
            progress = self.query._progress(coll.id) if loaded else 0
            return [
                p.model_dump() | {"loaded_percent": progress if p.id in loaded else 0}
                for p in self.root.partitions_of(coll.id)
            ]

    @rpc
    def collection_row_count(self, collection_id: int, partition_names: list[str] | None = None) -> int:
        coll = self.root.by_id(collection_id)
        ids = [self.root.partition(coll, n).id for n in partition_names] if partition_names else None
        return int(self.data.get_statistics(collection_id, ids))

    @rpc
    def resolve_partitions(self, collection_id: int, names: list[str]) -> list[int]:
        coll = self.root.by_id(collection_id)
        return [self.root.partition(coll, n).id for n in names]

    @rpc
    def live_proxy_count(self) -> int:
        """How many proxies hold a session: each enforces its share of the cluster's rate limits."""
        return len(self.ctx.nodes("proxy"))

    @rpc
    def ping(self) -> dict[str, Any]:
        if not self.ready.is_set():
            raise MilvusError(Code.SERVICE_NOT_READY, "coordinator is not active yet")
        return {"ok": True}


class CoordSession:
    """Active/standby: hold ``session/mixcoord-active`` on a lease; a standby waits for it."""

    def __init__(self, kv: KV, meta_root: str, endpoint: str, ttl: float) -> None:
        self.kv = kv
        self.key = Keys(meta_root).active_coord()
        self.endpoint = endpoint
        self.ttl = ttl
        self._stop = threading.Event()
        self.lease = 0

    def campaign(self, on_active: Any) -> None:
        """Block until this coordinator is active, then call ``on_active`` and keep the lease."""
        while not self._stop.is_set():
            self.lease = self.kv.grant_lease(self.ttl)
            if self.kv.compare_and_swap(self.key, None, self.endpoint.encode(), lease=self.lease):
                break
            self.kv.revoke(self.lease)
            self._stop.wait(min(1.0, self.ttl / 4))
        if self._stop.is_set():
            return
        on_active()
        threading.Thread(target=self._keepalive, name="coord-lease", daemon=True).start()

    def _keepalive(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.kv.keepalive(self.lease)
            except LeaseNotFound:
                log.error("coordinator lost its active lease; exiting to let a standby take over")
                self._stop.set()
                os._exit(3)  # a coordinator that lost leadership must not keep writing
            except Exception:  # the KV store may be restarting: keep trying within the TTL
                log.warning("coordinator lease keepalive failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):  # the store may already be gone at shutdown
            self.kv.revoke(self.lease)
