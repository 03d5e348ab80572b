"""After a DDL the coordinator tells every proxy to forget the collection (no stale schema anywhere)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pymilvus import DataType

from common.config import QuiverConfig
from common.kv.memory import MemoryKV
from common.msgstream.memory import MemoryStream
from common.rpc import Router
from common.session import Session, SessionInfo
from services.coord.server import Coordinator
from services.proxy.cache_control import ProxyControl
from services.proxy.meta_cache import MetaCache
from tests.unit.test_alter_coord import field_bytes, schema_bytes


@pytest.fixture
def env() -> Iterator[tuple[Coordinator, list[MetaCache]]]:
    cfg = QuiverConfig(kv={"backend": "memory"}, stream={"backend": "memory", "pchannel_count": 2})
    cfg.data.compaction_enabled = False
    cfg.data.gc_enabled = False
    kv, router = MemoryKV(), Router()
    coord = Coordinator(cfg, kv, MemoryStream(), router)
    coord.activate()
    coord.stop()  # no background loop
    client = router.client(router.register_local("coord", *coord.handlers()))
    caches = [MetaCache(client) for _ in range(2)]  # two proxies
    sessions = [
        Session(kv, coord.meta_root, SessionInfo("proxy", i, router.register_local(f"proxy-{i}", ProxyControl(c))))
        for i, c in enumerate(caches)
    ]
    yield coord, caches
    for s in sessions:
        s.stop()


def test_every_proxy_sees_an_added_field_at_once(env: tuple[Coordinator, list[MetaCache]]) -> None:
    coord, caches = env
    coord.root.create_collection("default", schema_bytes("c1"))
    before = [c.get("default", "c1") for c in caches]
    assert all(m.schema.get("extra") is None for m in before)
    coord.alter.add_collection_field("default", "c1", field_bytes("extra", DataType.INT64, nullable=True))
    after = [c.get("default", "c1") for c in caches]  # within the cache's TTL: only an invalidation refreshes
    assert all(m.schema.get("extra") is not None for m in after)


def test_a_renamed_collection_is_gone_from_every_proxy(env: tuple[Coordinator, list[MetaCache]]) -> None:
    coord, caches = env
    coord.root.create_collection("default", schema_bytes("c1"))
    for c in caches:
        c.get("default", "c1")
    coord.alter.rename_collection("default", "c1", "c2")
    for c in caches:
        assert ("default", "c1") not in c._by_name
        assert c.get("default", "c2").name == "c2"


def test_alias_changes_and_index_drops_reach_every_proxy(env: tuple[Coordinator, list[MetaCache]]) -> None:
    coord, caches = env
    coord.root.create_collection("default", schema_bytes("a"))
    coord.root.create_collection("default", schema_bytes("b"))
    coord.root.create_alias("default", "a", "al")
    assert all(c.get("default", "al").name == "a" for c in caches)
    coord.root.alter_alias("default", "b", "al")
    assert all(c.get("default", "al").name == "b" for c in caches)
    cid = caches[0].get("default", "b").id
    coord.index.create_index(cid, "v", "v", {"index_type": "FLAT", "metric_type": "L2"})
    assert all(len(c.indexes(cid)) == 1 for c in caches)
    coord.index.drop_index(cid, "v")
    assert all(c.indexes(cid) == [] for c in caches)
