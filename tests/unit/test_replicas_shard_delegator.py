"""The shard delegator on its own (services/querynode/delegator.py), with recording fake workers:
search options pass through to the workers unchanged, deletes reach the workers (buffered ones at
sync, later ones forwarded before tsafe passes them) whose segments may hold their keys, and a
worker that misses one makes reads fail clearly until a re-sync."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from pymilvus import CollectionSchema, DataType, FieldSchema
from pymilvus.client.prepare import Prepare

from common import msgs
from common.binlog import PkStats
from common.channels import pchannel_of
from common.errors import Code, MilvusError
from common.msgstream.memory import MemoryStream
from common.rpc import Router, rpc
from common.schema import Schema
from common.storage.memory import MemoryStorage
from services.querynode.channel import ChannelServer
from services.querynode.delegator import ShardDelegator
from services.querynode.worker import SealedStore, search_segments

VCH = "dml_0_7v0"


class FakeWorker:
    def __init__(self) -> None:
        self.searches: list[dict[str, Any]] = []
        self.deletes: list[tuple[list[int], int]] = []
        self.ready: list[int] = []

    @rpc
    def search_segments(self, **kwargs: Any) -> dict[str, Any]:
        self.searches.append(kwargs)
        return {"empty": True}

    @rpc
    def apply_deletes(
        self, vchannel: str, deletes: list[list[Any]], ready: list[int] | None = None, trimmed_to: int = 0
    ) -> int:
        self.deletes += [(sorted(int(p) for p in pks), int(ts)) for pks, ts in deletes]
        self.ready += ready or []
        return 0


@pytest.fixture
def env() -> Iterator[tuple[ShardDelegator, MemoryStream, Router, FakeWorker]]:
    fields = [FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=2)]
    schema = Schema.from_bytes(
        Prepare.get_schema_from_collection_schema("c", CollectionSchema(fields)).SerializeToString()
    )
    stream, router, worker = MemoryStream(), Router(), FakeWorker()
    router.register_local("w1", worker)
    ch = ChannelServer(7, VCH, schema, stream, None, [], [1])
    pool = ThreadPoolExecutor(4)
    yield ShardDelegator(ch, SealedStore(), router, pool, MemoryStorage()), stream, router, worker
    ch.stop()
    pool.shutdown()


def produce(stream: MemoryStream, msg: msgs.Message) -> None:
    stream.produce(pchannel_of(VCH), msgs.encode(msg))


def delete(stream: MemoryStream, pks: list[int], ts: int) -> None:
    produce(stream, msgs.DeleteMsg(VCH, 7, -1, ts, np.array(pks, dtype=np.int64)))
    produce(stream, msgs.TimeTickMsg(ts))


def wait_tsafe(d: ShardDelegator, ts: int) -> None:
    d.channel.wait_tsafe(ts, 5.0)


def no_filter(expr: str, params: dict[str, Any] | None) -> None:
    return None


def search_kwargs(**extra: Any) -> dict[str, Any]:
    return {"field": "v", "dtype": int(DataType.FLOAT_VECTOR), "metric": "L2", "queries": np.zeros((1, 2), np.float32),
            "k": 3, "params": {}, "expr": "", "expr_params": None, "output_fields": [], **extra}


def test_deletes_reach_workers_buffered_at_sync_and_forwarded_after(env: Any) -> None:
    d, stream, _, worker = env
    delete(stream, [1, 2], 10)
    wait_tsafe(d, 10)
    d.sync("local://leader", {100: "local://w1"})
    assert worker.deletes == [([1, 2], 10)]  # the buffered delete, before the segment serves reads
    delete(stream, [3], 20)
    wait_tsafe(d, 20)  # tsafe passed the delete only after it was forwarded
    assert worker.deletes == [([1, 2], 10), ([3], 20)]
    assert d.report() == {"100": "local://w1"}


def test_a_copy_reloaded_on_the_same_endpoint_gets_the_buffered_deletes_again(env: Any) -> None:
    d, stream, _, worker = env
    delete(stream, [1, 2], 10)
    wait_tsafe(d, 10)
    d.sync("local://leader", {100: "local://w1"})
    assert worker.deletes == [([1, 2], 10)] and worker.ready == [100]
    d.sync("local://leader", {100: "local://w1"})  # the same routes: nothing to send
    assert worker.deletes == [([1, 2], 10)]
    d.sync("local://leader", {100: "local://w1"}, reloaded=[100])  # its copy there is fresh
    assert worker.deletes == [([1, 2], 10), ([1, 2], 10)] and worker.ready == [100, 100]


def test_search_options_reach_the_workers_unchanged(env: Any) -> None:
    d, stream, _, worker = env
    produce(stream, msgs.TimeTickMsg(5))
    d.sync("local://leader", {100: "local://w1", 101: "local://w1"})
    kwargs = search_kwargs(some_new_option={"x": 1})
    with pytest.raises(MilvusError) as err:  # the leader's own growing data cannot honour it here...
        d.search(5, 5.0, [], no_filter, kwargs)
    assert err.value.code == Code.UNIMPLEMENTED and "some_new_option" in err.value.message
    deadline = time.monotonic() + 5
    while not worker.searches and time.monotonic() < deadline:  # the worker call runs in the fan-out pool
        time.sleep(0.01)
    assert worker.searches[0]["some_new_option"] == {"x": 1}  # ...but the workers got it as sent
    assert worker.searches[0]["segment_ids"] == [100, 101] and worker.searches[0]["query_ts"] == 5
    worker.searches.clear()
    assert d.search(5, 5.0, [], no_filter, search_kwargs()) == []
    assert worker.searches[0]["k"] == 3 and worker.searches[0]["partition_ids"] == [1]


def test_a_worker_that_misses_a_delete_is_unavailable_until_resynced(env: Any) -> None:
    d, stream, router, worker = env
    produce(stream, msgs.TimeTickMsg(5))
    d.sync("local://leader", {100: "local://w1"})
    router.local.unregister("w1")
    delete(stream, [4], 30)
    wait_tsafe(d, 30)
    with pytest.raises(MilvusError) as err:
        d.search(30, 5.0, [], no_filter, search_kwargs())
    assert err.value.code == Code.CHANNEL_NOT_AVAILABLE and "missed deletes" in err.value.message
    assert d.report() == {}  # the coordinator sees the route missing and syncs again
    router.register_local("w1", worker)
    d.sync("local://leader", {100: "local://w1"})
    assert ([4], 30) in worker.deletes  # caught up on what it missed
    assert d.search(30, 5.0, [], no_filter, search_kwargs()) == []


def test_unknown_search_option_is_refused_not_ignored() -> None:
    with pytest.raises(MilvusError) as err:
        search_segments([], 1, None, search_kwargs(group_by_field="x"))
    assert err.value.code == Code.UNIMPLEMENTED
    assert search_segments([], 1, None, search_kwargs()) == []


def test_tsafe_waits_for_forwarding(env: Any) -> None:
    d, stream, _, worker = env
    produce(stream, msgs.TimeTickMsg(5))
    d.sync("local://leader", {100: "local://w1"})
    started = time.monotonic()
    delete(stream, [9], 40)
    wait_tsafe(d, 40)
    assert ([9], 40) in worker.deletes and time.monotonic() - started < 5


@pytest.fixture
def routed() -> Iterator[tuple[ShardDelegator, MemoryStream, MemoryStorage, FakeWorker, FakeWorker]]:
    """A leader with two workers and a storage holding stats logs the tests write."""
    fields = [FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=2)]
    schema = Schema.from_bytes(
        Prepare.get_schema_from_collection_schema("c", CollectionSchema(fields)).SerializeToString()
    )
    stream, router, storage = MemoryStream(), Router(), MemoryStorage()
    w1, w2 = FakeWorker(), FakeWorker()
    router.register_local("w1", w1)
    router.register_local("w2", w2)
    ch = ChannelServer(7, VCH, schema, stream, None, [], [1])
    pool = ThreadPoolExecutor(4)
    yield ShardDelegator(ch, SealedStore(), router, pool, storage), stream, storage, w1, w2
    ch.stop()
    pool.shutdown()


def stats_of(storage: MemoryStorage, sid: int, pks: np.ndarray) -> tuple[list[str], int]:
    key = f"stats_log/7/1/{sid}/100/1"
    storage.put(key, PkStats.build(pks).to_bytes())
    return [key], len(pks)


def test_deletes_go_only_to_the_workers_whose_segments_may_hold_their_keys(routed: Any) -> None:
    d, stream, storage, w1, w2 = routed
    produce(stream, msgs.TimeTickMsg(5))
    stats = {100: stats_of(storage, 100, np.arange(0, 100)), 200: stats_of(storage, 200, np.arange(1000, 1100))}
    d.sync("local://leader", {100: "local://w1", 200: "local://w2"}, stats=stats)
    assert w1.ready == [100] and w2.ready == [200]
    delete(stream, [5], 10)
    delete(stream, [1050], 20)
    delete(stream, [7, 1077, 5000], 30)
    delete(stream, [5000], 40)  # in no segment: nobody is asked
    wait_tsafe(d, 40)
    assert w1.deletes == [([5], 10), ([7], 30)]
    assert w2.deletes == [([1050], 20), ([1077], 30)]


def test_catch_up_sends_a_joining_worker_only_what_its_segments_may_hold(routed: Any) -> None:
    d, stream, storage, w1, w2 = routed
    delete(stream, [5], 10)
    delete(stream, [1050], 20)
    wait_tsafe(d, 20)
    stats = {100: stats_of(storage, 100, np.arange(0, 100)), 200: stats_of(storage, 200, np.arange(1000, 1100))}
    d.sync("local://leader", {100: "local://w1"}, stats=stats)
    assert w1.deletes == [([5], 10)]
    d.sync("local://leader", {100: "local://w1", 200: "local://w2"}, stats=stats)
    assert w2.deletes == [([1050], 20)] and w2.ready == [200]
    assert w1.deletes == [([5], 10)]  # its route did not change: nothing again


def test_a_segment_without_known_stats_gets_every_delete(routed: Any) -> None:
    d, stream, storage, w1, w2 = routed
    produce(stream, msgs.TimeTickMsg(5))
    stats = {100: stats_of(storage, 100, np.arange(0, 100)), 200: (["stats_log/7/1/200/100/404"], 100)}
    d.sync("local://leader", {100: "local://w1", 200: "local://w2", 300: "local://w2"}, stats=stats)
    delete(stream, [5], 10)
    delete(stream, [5000], 20)
    wait_tsafe(d, 20)
    assert w1.deletes == [([5], 10)]
    assert w2.deletes == [([5], 10), ([5000], 20)]  # 200's stats are unreadable, 300's never named
    storage.put("stats_log/7/1/200/100/404", PkStats.build(np.arange(1000, 1100)).to_bytes())
    stats[300] = stats_of(storage, 300, np.arange(2000, 2100))
    d.sync("local://leader", {100: "local://w1", 200: "local://w2", 300: "local://w2"}, stats=stats)
    delete(stream, [6], 30)  # now known: w2 holds no 6
    wait_tsafe(d, 30)
    assert w2.deletes == [([5], 10), ([5000], 20)]


def test_a_delete_during_a_move_reaches_the_old_and_the_new_worker(routed: Any) -> None:
    """Between the catch-up snapshot and the switch, deletes go to both placements."""
    d, stream, storage, w1, w2 = routed
    produce(stream, msgs.TimeTickMsg(5))
    stats = {100: stats_of(storage, 100, np.arange(0, 100))}
    d.sync("local://leader", {100: "local://w1"}, stats=stats)
    sent = threading.Event()

    class Slow(FakeWorker):
        @rpc
        def apply_deletes(
            self, vchannel: str, deletes: list[list[Any]], ready: list[int] | None = None, trimmed_to: int = 0
        ) -> int:
            if ready:  # the catch-up of the move: a delete arrives meanwhile
                delete(stream, [8], 50)
                assert sent.wait(5)
            return super().apply_deletes(vchannel, deletes, ready)

    w3 = Slow()
    d.router.register_local("w3", w3)
    original = d._forward_delete

    def forward(pks: np.ndarray, ts: int, placement: dict[str, frozenset[int]]) -> None:
        original(pks, ts, placement)
        sent.set()

    d.channel.on_delete = forward
    d.sync("local://leader", {100: "local://w3"}, stats=stats)
    wait_tsafe(d, 50)
    assert ([8], 50) in w1.deletes and ([8], 50) in w3.deletes
