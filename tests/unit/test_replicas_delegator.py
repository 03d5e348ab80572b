"""Shard delegators on the in-process backends: a standalone Quiver plus extra querynodes in the same
process (local RPC, local KV, log and storage), driven through pymilvus.

Covers what the query coordinator and the querynodes do together: sealed segments spread over
the nodes of a replica with one leader per shard fanning reads out, deletes forwarded to the
workers, a collection spread by memory budget and a load that cannot fit, the balancer moving
segments onto a joining node with every search exact during the move, and a drain.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient, MilvusException

from common.config import QuiverConfig
from common.errors import MilvusError
from common.session import Session, SessionInfo
from quiver.devcluster.servers import free_ports
from quiver.standalone import Standalone, start_standalone
from services.querynode.delete_log import DeleteLog
from services.querynode.server import QueryNode
from services.querynode.worker import SealedStore

DIM = 8
TOPK = 5


def vectors(ids: np.ndarray) -> np.ndarray:
    phases = np.arange(1, DIM + 1, dtype=np.float64)
    return np.sin(np.outer(ids.astype(np.float64) * 0.7311, phases)).astype(np.float32)


@dataclass
class Rig:
    sa: Standalone
    uri: str
    extra: list[tuple[QueryNode, Session, str]] = field(default_factory=list)

    def add_querynode(self, budget_mb: int) -> str:
        qn = QueryNode(self.sa.stream, self.sa.storage, budget_mb, self.sa.router)
        node_id = int(self.sa.coord.ctx.ids.alloc())
        endpoint = self.sa.router.register_local(f"querynode-{node_id}", qn)
        session = Session(self.sa.kv, self.sa.coord.meta_root, SessionInfo("querynode", node_id, endpoint), 10.0)
        self.extra.append((qn, session, endpoint))
        return endpoint

    def remove(self, endpoint: str) -> None:
        for qn, session, e in list(self.extra):
            if e == endpoint:
                session.stop()
                qn.stop()
                self.extra.remove((qn, session, e))

    @property
    def query(self):  # type: ignore[no-untyped-def]
        return self.sa.coord.query

    def held(self) -> dict[str, set[int]]:
        self.query.refresh_distribution()
        return {e: {int(s) for s in rep.get("segments", {})} for e, rep in self.query.distribution.items()}


def start(tmp: Path, budget_mb: int, sync_period_seconds: float | None = None) -> Rig:
    grpc, http = free_ports(2)
    cfg = QuiverConfig(data_dir=str(tmp / "data"), grpc_port=grpc, http_port=http)
    cfg.query.memory_budget_mb = budget_mb
    cfg.data.compaction_enabled = False
    if sync_period_seconds is not None:
        cfg.data.sync_period_seconds = sync_period_seconds
    sa = start_standalone(cfg)
    return Rig(sa, f"http://127.0.0.1:{grpc}")


def loaded_with_worker(rig: Rig, name: str, batches: int, rows: int) -> tuple[str, MilvusClient]:
    """A querynode added to ``rig`` and a collection (see ``create``) loaded with a segment on it."""
    worker = rig.add_querynode(512)
    client = create(rig.uri, name, batches=batches, rows=rows)
    client.load_collection(name)
    wait(lambda: bool(rig.held().get(worker)), 30, "a segment on the added querynode")
    return worker, client


def stop(rig: Rig) -> None:
    for qn, session, _ in rig.extra:
        session.stop()
        qn.stop()
    rig.sa.stop()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = start(tmp_path, 512)
    yield r
    stop(r)


def create(uri: str, name: str, batches: int, rows: int, shards: int = 2) -> MilvusClient:
    """A collection with ``batches`` flushed batches of ``rows`` rows (a segment per shard each),
    indexed (FLAT) and not loaded yet."""
    client = MilvusClient(uri=uri, timeout=60)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection(name, schema=schema, num_shards=shards, consistency_level="Strong")
    for b in range(batches):
        ids = np.arange(b * rows, (b + 1) * rows, dtype=np.int64)
        vecs = vectors(ids)
        client.insert(name, [{"id": int(i), "v": vecs[k].tolist()} for k, i in enumerate(ids)])
        client.flush(name)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_index(name, index)
    wait(lambda: client.describe_index(name, "v").get("pending_index_rows", 1) == 0
         and client.describe_index(name, "v").get("indexed_rows", 0) == batches * rows, 60, "the index")
    return client


def exact(ids: np.ndarray, queries: np.ndarray) -> list[list[float]]:
    """The exact top-k distances per query (ids can tie, distances cannot differ)."""
    data = vectors(ids).astype(np.float64)
    return [sorted(((data - q) ** 2).sum(axis=1))[:TOPK] for q in queries.astype(np.float64)]


def answers(got: list[list[int]], pool: np.ndarray, queries: np.ndarray) -> list[list[float]]:
    """The distances of the returned ids; every id must still exist (deleted rows must not come back)."""
    assert all(set(hits) <= set(pool.tolist()) for hits in got), "a deleted or unknown id came back"
    return [sorted(((vectors(np.array(hits)).astype(np.float64) - q) ** 2).sum(axis=1)) if hits else []
            for hits, q in zip(got, queries.astype(np.float64), strict=True)]


def same(a: list[list[float]], b: list[list[float]]) -> bool:
    return len(a) == len(b) and all(len(x) == len(y) and np.allclose(x, y, rtol=1e-5, atol=1e-5)
                                    for x, y in zip(a, b, strict=True))


def search_ids(client: MilvusClient, name: str, queries: np.ndarray) -> list[list[int]]:
    res = client.search(name, data=queries.tolist(), limit=TOPK, consistency_level="Strong")
    return [[h["id"] for h in hits] for hits in res]


def assert_gone(client: MilvusClient, name: str, gone: np.ndarray, left: np.ndarray) -> None:
    """No deleted row comes back: not in a query by id, nor in a search next to them."""
    assert client.query(name, filter=f"id in {gone.tolist()}", output_fields=["id"]) == []
    q = vectors(gone[:5])
    assert same(answers(search_ids(client, name, q), left, q), exact(left, q))


def wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


QUERY_IDS = np.array([3, 250, 777, 1111, 1599], dtype=np.int64)


def test_sealed_segments_spread_over_the_replica_and_reads_are_exact(rig: Rig) -> None:
    rig.add_querynode(512)
    rig.add_querynode(512)
    client = create(rig.uri, "spread", batches=4, rows=400)
    client.load_collection("spread")
    held = rig.held()
    assert len([e for e, segs in held.items() if segs]) >= 2, held  # sealed data on several nodes
    assert sum(len(s) for s in held.values()) == len(set().union(*held.values()))  # one copy each
    leaders = {v: e for v, e in rig.query.get_shard_leaders(client.describe_collection("spread")["collection_id"])
               .items()}
    assert len(leaders) == 2
    ids = np.arange(1600, dtype=np.int64)
    q = vectors(QUERY_IDS)
    assert same(answers(search_ids(client, "spread", q), ids, q), exact(ids, q))
    assert client.query("spread", filter="", output_fields=["count(*)"])[0]["count(*)"] == 1600
    got = client.query("spread", filter="id in [5, 405, 805, 1205]", output_fields=["id"])
    assert sorted(r["id"] for r in got) == [5, 405, 805, 1205]

    # deletes after the load reach the sealed copies on every worker (forwarded by the leaders)
    gone = [int(i) for i in QUERY_IDS] + [5, 405, 805, 1205]
    client.delete("spread", ids=gone)
    left = np.setdiff1d(ids, np.array(gone))
    assert same(answers(search_ids(client, "spread", q), left, q), exact(left, q))
    assert client.query("spread", filter="", output_fields=["count(*)"])[0]["count(*)"] == 1600 - len(gone)
    assert client.query("spread", filter="id in [5, 405, 805, 1205]", output_fields=["id"]) == []
    client.close()


def test_collection_larger_than_one_node_loads_across_its_budget(tmp_path: Path) -> None:
    rig = start(tmp_path, 1)  # 1 MB per query node
    try:
        rig.add_querynode(1)
        rig.add_querynode(1)
        client = create(rig.uri, "big", batches=6, rows=4000, shards=2)  # 24k rows x 56 B: 1.3 MB loaded
        with pytest.raises(MilvusException) as err:
            client.load_collection("big", replica_number=2)  # a replica of 1 node (1 MB) cannot hold it
        assert err.value.code == 3 and "memory limit exceeded" in err.value.message
        assert "replica" in err.value.message and "budget" in err.value.message
        client.load_collection("big")
        held = rig.held()
        assert len([e for e, s in held.items() if s]) >= 2
        ids = np.arange(24000, dtype=np.int64)
        q = vectors(QUERY_IDS)
        assert same(answers(search_ids(client, "big", q), ids, q), exact(ids, q))
        client.close()
    finally:
        stop(rig)


@dataclass
class Searcher:
    """Searches until stopped; each answer must equal the exact model."""

    uri: str
    name: str
    pool: np.ndarray
    ok: int = 0
    bad: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.expected = exact(self.pool, vectors(QUERY_IDS))

    def run(self) -> None:
        client = MilvusClient(uri=self.uri, timeout=30)
        while not self._stop.is_set():
            q = vectors(QUERY_IDS)
            try:
                got = answers(search_ids(client, self.name, q), self.pool, q)
            except Exception as exc:
                self.bad.append(str(exc))
                continue
            if same(got, self.expected):
                self.ok += 1
            else:
                self.bad.append(f"wrong answer {got}")
        client.close()

    def __enter__(self) -> Searcher:
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def test_joining_node_gets_segments_gradually_and_drain_moves_them_back(rig: Rig) -> None:
    client = create(rig.uri, "grow", batches=4, rows=400)
    client.load_collection("grow")
    with Searcher(rig.uri, "grow", np.arange(1600, dtype=np.int64)) as searcher:
        time.sleep(0.5)
        joined = rig.add_querynode(512)
        wait(lambda: len(rig.held().get(joined, set())) >= 2, 60, "segments balanced onto the new node")
        time.sleep(1)
        assert rig.query.drain_querynode(joined, wait_seconds=60)
        assert not rig.query.dispatch.uses(joined)
        rig.remove(joined)
        time.sleep(1)
    assert searcher.ok > 5
    assert searcher.bad == []
    client.close()


def test_a_worker_that_misses_a_delete_fails_reads_until_its_segments_move(rig: Rig) -> None:
    rig.add_querynode(512)
    rig.add_querynode(512)
    client = create(rig.uri, "lost", batches=4, rows=400)
    client.load_collection("lost")
    cid = client.describe_collection("lost")["collection_id"]
    leaders = {e for eps in rig.query.get_shard_leaders(cid).values() for e in eps}
    held = rig.held()
    extra = {e for _, _, e in rig.extra}
    victim = sorted(e for e, segs in held.items() if segs and e not in leaders and e in extra)[0]  # a worker only
    assert _count(client, "lost") == 1600
    rig.sa.router.local.unregister(victim.removeprefix("local://"))  # the worker process is gone
    gone = list(range(0, 1600, 7))
    client.delete("lost", ids=gone)
    with pytest.raises(MilvusException) as err:  # never an answer that misses the delete or a segment
        client.query("lost", filter="", output_fields=["count(*)"])
    assert "channel not available" in err.value.message
    rig.remove(victim)  # its session ends: the coordinator places its segments on the other nodes
    wait(lambda: _count(client, "lost") == 1600 - len(gone), 60, "reads to recover on the other nodes")
    q = vectors(QUERY_IDS)
    left = np.setdiff1d(np.arange(1600), np.array(gone))
    assert same(answers(search_ids(client, "lost", q), left, q), exact(left, q))
    client.close()


def _count(client: MilvusClient, name: str) -> int:
    try:
        return int(client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"])
    except MilvusException:
        return -1


def test_a_copy_lost_and_loaded_again_on_the_same_node_gets_the_buffered_deletes(tmp_path: Path) -> None:
    """A worker loses a sealed copy (as a restart on the same endpoint would) and the coordinator
    loads it there again: the route does not change, yet the fresh copy has only its delta logs,
    and the deletes since (no periodic sync here) are in the leader's buffer. It must serve no
    read until the leader sent them: no deleted row comes back, in count(*), queries or search."""
    rig = start(tmp_path, 512, sync_period_seconds=600.0)
    try:
        worker, client = loaded_with_worker(rig, "lost", 4, 400)
        ids = np.arange(1600, dtype=np.int64)
        gone = ids[::7]
        client.delete("lost", ids=gone.tolist())
        left = np.setdiff1d(ids, gone)
        assert client.query("lost", filter="", output_fields=["count(*)"])[0]["count(*)"] == len(left)

        qn = next(q for q, _, e in rig.extra if e == worker)
        lost = sorted(rig.held()[worker])
        qn.store.remove(lost)
        wait(lambda: set(lost) <= rig.held().get(worker, set()), 30, "the copies loaded again")
        counts = []
        deadline = time.monotonic() + 30
        while True:
            try:
                counts.append(client.query("lost", filter="", output_fields=["count(*)"])[0]["count(*)"])
            except MilvusException:
                counts.append(-1)  # a clear failure while it catches up is fine
            if counts[-1] == len(left) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert set(counts) - {-1} == {len(left)}, counts
        assert_gone(client, "lost", gone, left)
        client.close()
    finally:
        stop(rig)


def _querynodes(rig: Rig) -> list[QueryNode]:
    return [w for w in rig.sa.workers if isinstance(w, QueryNode)] + [qn for qn, _, _ in rig.extra]


def test_leaders_forget_deletes_every_copy_has_and_copies_loaded_later_keep_them(tmp_path: Path) -> None:
    """Once the datanode has written deletes to the segments' delta logs (a flush syncs them), the
    coordinator lets the shard leaders drop them from their buffers: a copy loaded from then on
    has them in its delta logs (its watermark). A copy with less (caught up again long after:
    here a worker marked as having missed a forward, its copy's watermark set back) is refused
    and loaded again, never served without them."""
    rig = start(tmp_path, 512, sync_period_seconds=600.0)  # the datanode syncs deletes at flushes only
    try:
        worker, client = loaded_with_worker(rig, "trim", 4, 400)
        cid = client.describe_collection("trim")["collection_id"]
        leaders = [d for qn in _querynodes(rig) for d in qn.delegators.values() if d.channel.collection_id == cid]
        assert len(leaders) == 2
        ids = np.arange(1600, dtype=np.int64)
        gone = ids[::7]
        client.delete("trim", ids=gone.tolist())
        left = np.setdiff1d(ids, gone)
        assert _count(client, "trim") == len(left)  # a Strong read: the leaders consumed the deletes
        time.sleep(1.0)  # a few coordinator passes: nothing synced, so nothing is forgotten
        assert all(d.channel.deletes.nbytes() > 0 for d in leaders)
        client.flush("trim")  # the deletes reach the delta logs; the next passes let the leaders forget them
        wait(lambda: all(d.channel.deletes.nbytes() == 0 for d in leaders), 30, "the leaders' buffers to empty")
        assert _count(client, "trim") == len(left)

        qn = next(q for q, _, e in rig.extra if e == worker)
        lost = sorted(rig.held()[worker])
        qn.store.remove(lost)  # loaded again from the delta logs: nothing left to catch up from
        wait(lambda: set(lost) <= rig.held().get(worker, set()), 30, "the copies loaded again")
        wait(lambda: _count(client, "trim") == len(left), 30, "reads over the reloaded copies")
        assert client.query("trim", filter=f"id in {gone.tolist()}", output_fields=["id"]) == []

        # the rare path: a copy that may lack deletes the buffer no longer has is refused and reloaded
        stale = next(qn.store.get(s) for s in rig.held()[worker])
        assert stale is not None
        stale.deltas_ts = 0
        leader = next(d for d in leaders if stale.segment_id in d.dist)
        with leader.channel._lock:
            leader.broken.add(worker)  # as after a failed forward: the coordinator syncs it in again
        wait(lambda: qn.store.get(stale.segment_id) is not stale and qn.store.is_ready(stale.segment_id), 30,
             "the stale copy replaced")
        wait(lambda: _count(client, "trim") == len(left), 30, "reads after the reload")
        assert_gone(client, "trim", gone, left)
        client.close()
    finally:
        stop(rig)


def record_refused_catch_ups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The messages of every delete catch-up a worker refuses from now on (the test's end)."""
    refused: list[str] = []
    real_apply = SealedStore.apply_deletes

    def apply(self: SealedStore, *args: Any, **kwargs: Any) -> int:
        try:
            return real_apply(self, *args, **kwargs)
        except MilvusError as exc:
            refused.append(exc.message)
            raise

    monkeypatch.setattr(SealedStore, "apply_deletes", apply)
    return refused


def test_deletes_survive_trims_reloads_and_compactions_under_churn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deletes, inserts, flushes, lost copies and compactions interleaved while the datanode syncs
    every few hundred milliseconds, so the leaders trim their buffers all along: every read equals
    the model (no deleted row comes back, none is lost), the buffers end up empty, and the
    coordinator never trimmed past a copy it was about to have caught up (no catch-up refused)."""
    trims: list[int] = []
    real_trim = DeleteLog.trim

    def trim(self: DeleteLog, upto: int) -> None:
        trims.append(upto)
        real_trim(self, upto)

    monkeypatch.setattr(DeleteLog, "trim", trim)
    refused = record_refused_catch_ups(monkeypatch)
    rig = start(tmp_path, 512, sync_period_seconds=0.3)
    try:
        worker, client = loaded_with_worker(rig, "churn", 2, 300)
        qn = next(q for q, _, e in rig.extra if e == worker)
        alive = set(range(600))
        rng = np.random.default_rng(11)
        next_id = 600
        for step in range(12):
            ids = np.arange(next_id, next_id + 100, dtype=np.int64)
            vecs = vectors(ids)
            client.insert("churn", [{"id": int(i), "v": vecs[k].tolist()} for k, i in enumerate(ids)])
            alive |= set(ids.tolist())
            next_id += 100
            gone = rng.choice(sorted(alive), size=40, replace=False).tolist()
            client.delete("churn", ids=gone)
            alive -= set(gone)
            if step % 3 == 1:
                client.flush("churn")
            if step % 4 == 2:
                held = sorted(rig.held().get(worker, set()))
                if held:
                    qn.store.remove(held[: max(1, len(held) // 2)])  # lost copies: loaded again from storage
            if step == 7:
                rig.sa.coord.compaction.manual_compaction(client.describe_collection("churn")["collection_id"])
            wait(lambda n=len(alive): _count(client, "churn") == n, 60, f"count(*) after step {step}")
            if step == 3:
                assert trims, "the leaders trimmed while the data kept changing"
            probe = rng.choice(next_id, size=60, replace=False).tolist()
            got = {r["id"] for r in client.query("churn", filter=f"id in {probe}", output_fields=["id"],
                                                  consistency_level="Strong")}
            assert got == set(probe) & alive, step
        client.flush("churn")
        cid = client.describe_collection("churn")["collection_id"]
        leaders = [d for q in _querynodes(rig) for d in q.delegators.values() if d.channel.collection_id == cid]
        wait(lambda: all(d.channel.deletes.nbytes() == 0 for d in leaders), 30, "the leaders' buffers to empty")
        assert refused == []
        pool = np.array(sorted(alive), dtype=np.int64)
        q = vectors(np.array([3, 650, 1400], dtype=np.int64))
        assert same(answers(search_ids(client, "churn", q), pool, q), exact(pool, q))
        client.close()
    finally:
        stop(rig)


def test_a_copy_routed_again_after_its_leader_trimmed_past_it_is_reloaded_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A segment moves to another node and back before its old copy was released (a balance move
    followed by a drain, as in a scale-out then scale-in). While the old copy was routed its leader
    trimmed its buffer past the copy's watermark (the copy got every delete since, forwarded), so a
    catch-up from that buffer would be refused and the copy dropped while another leader may still
    route to it. The coordinator loads such a copy again before routing to it: no read fails."""
    refused = record_refused_catch_ups(monkeypatch)
    monkeypatch.setattr("services.coord.dispatch.RELEASE_GRACE_SECONDS", 120.0)  # the old copy stays
    rig = start(tmp_path, 512, sync_period_seconds=0.2)
    try:
        rig.add_querynode(512)
        client = create(rig.uri, "back", batches=2, rows=300, shards=1)
        client.load_collection("back")
        cid = client.describe_collection("back")["collection_id"]
        leader = next(d for qn in _querynodes(rig) for d in qn.delegators.values() if d.channel.collection_id == cid)
        client.delete("back", ids=list(range(0, 600, 9)))
        left = np.setdiff1d(np.arange(600), np.arange(0, 600, 9))
        sid, home = sorted(leader.dist.items())[0]
        home_qn = next(qn for qn in _querynodes(rig) if qn.store.get(sid) is not None)
        copy = home_qn.store.get(sid)
        assert copy is not None
        wait(lambda: leader.channel.deletes.trimmed_to > copy.deltas_ts, 30, "the leader to trim past the copy")
        (rid, targets), = rig.query.dispatch.targets.items()
        with Searcher(rig.uri, "back", left) as searcher:
            away = rig.add_querynode(512)
            wait(lambda: away in rig.query.distribution, 30, "the new querynode")
            with rig.query._reconcile_lock:
                targets[sid] = away  # a balance move
            wait(lambda: leader.dist.get(sid) == away, 30, "the segment routed to the new node")
            with rig.query._reconcile_lock:
                targets[sid] = home  # and back (a drain), while the old copy is still loaded
            wait(lambda: leader.dist.get(sid) == home, 30, "the segment routed back")
            time.sleep(1.0)
        assert refused == []
        assert searcher.ok > 5 and searcher.bad == [], searcher.bad[:3]
        fresh = home_qn.store.get(sid)
        assert fresh is not copy and fresh is not None and fresh.deltas_ts > copy.deltas_ts  # loaded again
        assert_gone(client, "back", np.arange(0, 600, 9), left)
        client.close()
    finally:
        stop(rig)
