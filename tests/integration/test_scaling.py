"""Scaling and failover of querynodes under a continuous search load, on a local cluster.

Every search is checked against an exact model (FLAT index, deterministic vectors, brute force
in numpy), so a search that answers from a partial or doubled placement counts as a failure
just like an error does.

* scale out 1 -> 3 querynodes, then back to 1 by SIGTERM (drain): 0 failed searches;
* 2 replicas, kill -9 one querynode: 0 failed searches;
* 1 replica, kill -9 one of its querynodes: searches fail with a clear error (never partial
  results) until the coordinator moved the channels; the recovery time is printed;
* a collection larger than one querynode's memory budget loads across the nodes of its replica
  (shard leaders fan out to the workers holding its sealed segments); a load that cannot fit a
  replica fails with the memory-budget error;
* resource groups place replicas on their nodes, and TransferReplica moves one under search load.

Every querynode runs with a 1 MB memory budget (the scaling collection takes ~0.35 MB).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from pymilvus import Collection, DataType, MilvusClient, connections

from quiver.devcluster import ClusterLayout, LocalCluster
from tests.integration.load import DIM, vectors_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NAME = "scaling"
ROWS = 4000
SHARDS = 4
TOPK = 5
QUERY_IDS = np.array([3, 777, 1500, 2222, 3999], dtype=np.int64)
BUDGET_MB = 1


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(Path(tmp_path_factory.mktemp("cluster")), ClusterLayout(querynodes=1),
                     extra_config={"query": {"memory_budget_mb": BUDGET_MB}})
    c.start_servers()
    c.start_roles()
    client = MilvusClient(uri=c.uri, timeout=60)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(NAME, schema=schema, index_params=index, num_shards=SHARDS, consistency_level="Strong")
    ids = np.arange(ROWS, dtype=np.int64)
    vecs = vectors_for(ids)
    for lo in range(0, ROWS, 1000):
        client.insert(NAME, [{"id": int(i), "v": vecs[i].tolist()} for i in range(lo, lo + 1000)])
    client.flush(NAME)
    client.close()
    connections.connect("scaling", uri=c.uri)
    yield c
    connections.disconnect("scaling")
    c.stop()


def _expected() -> list[list[int]]:
    data = vectors_for(np.arange(ROWS, dtype=np.int64)).astype(np.float64)
    out = []
    for q in vectors_for(QUERY_IDS).astype(np.float64):
        d = ((data - q) ** 2).sum(axis=1)
        out.append([int(i) for i in np.argsort(d, kind="stable")[:TOPK]])
    return out


@dataclass
class Searcher:
    """Searches until stopped; each answer is compared with the exact model."""

    uri: str
    expected: list[list[int]]
    ok: int = 0
    errors: list[tuple[float, str]] = field(default_factory=list)
    wrong: int = 0
    oks: list[float] = field(default_factory=list)  # when each correct answer came
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self, threads: int = 2) -> Searcher:
        for _ in range(threads):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def _run(self) -> None:
        client = MilvusClient(uri=self.uri, timeout=30)
        queries = vectors_for(QUERY_IDS).tolist()
        while not self._stop.is_set():
            try:
                res = client.search(NAME, data=queries, limit=TOPK, consistency_level="Strong")
            except Exception as exc:
                self.errors.append((time.monotonic(), str(exc)))
                time.sleep(0.05)
                continue
            got = [[h["id"] for h in hits] for hits in res]
            if got == self.expected:
                self.ok += 1
                self.oks.append(time.monotonic())
            else:
                self.wrong += 1
        client.close()


def _leaders() -> dict[int, set[str]]:
    """Replica id -> the querynode addresses leading its shards (pymilvus GetReplicas)."""
    replicas = Collection(NAME, using="scaling").get_replicas()
    return {g.id: {s.shard_leader for s in g.shards} for g in replicas.groups}


def _placement_or_none() -> dict[int, set[str]] | None:
    try:
        return _leaders()
    except Exception:
        return None


def _wait(cond: object, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not cond():  # type: ignore[operator]
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.2)
    return time.monotonic() - started


def _reload(replicas: int) -> None:
    """Release and load again; a querynode that just started may not have registered yet."""
    client = MilvusClient(uri=_URI[0], timeout=120)
    client.release_collection(NAME)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.load_collection(NAME, replica_number=replicas)
            break
        except Exception as exc:
            if "node not enough" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    client.close()


_URI: list[str] = []


def test_scale_out_and_in_under_search_load(cluster: LocalCluster) -> None:
    _URI[:] = [cluster.uri]
    searcher = Searcher(cluster.uri, _expected()).start()
    try:
        time.sleep(2)
        for _ in range(2):
            cluster.add_role("querynode")
        took = _wait(lambda: len(next(iter(_leaders().values()))) == 3, 90, "shards spread over 3 querynodes")
        print(f"\nrebalance after 2 querynodes joined: {took:.1f} s")
        time.sleep(2)
        for qn in cluster.live("querynode")[1:]:
            started = time.monotonic()
            qn.stop(timeout=90)
            print(f"drain + exit of {qn.name} on SIGTERM: {time.monotonic() - started:.1f} s")
        assert len(next(iter(_leaders().values()))) == 1
        time.sleep(2)
    finally:
        searcher.stop()
    print(f"searches: {searcher.ok} ok, {len(searcher.errors)} failed, {searcher.wrong} wrong")
    assert searcher.ok > 20
    assert not searcher.errors, searcher.errors[:3]
    assert searcher.wrong == 0


def test_two_replicas_survive_kill(cluster: LocalCluster) -> None:
    _URI[:] = [cluster.uri]
    cluster.add_role("querynode")
    _wait(lambda: len(cluster.live("querynode")) == 2, 30, "2 querynodes")
    _reload(2)
    client = MilvusClient(uri=cluster.uri, timeout=60)
    client.release_collection(NAME)
    with pytest.raises(Exception, match="resource group node not enough"):
        client.load_collection(NAME, replica_number=3)
    client.close()
    _reload(2)
    leaders = _leaders()
    assert len(leaders) == 2
    a, b = leaders.values()
    assert len(a) == 1 and len(b) == 1 and not a & b  # disjoint querynodes
    coord = cluster.role("coord-1")  # placement is in the catalog: a new coordinator keeps it
    coord.kill()
    coord.start()
    _wait(lambda: _placement_or_none() is not None, 90, "the restarted coordinator to answer")
    assert _placement_or_none() == leaders
    searcher = Searcher(cluster.uri, _expected()).start()
    try:
        time.sleep(2)
        cluster.live("querynode")[0].kill()
        time.sleep(6)
    finally:
        searcher.stop()
    print(f"\n2 replicas, kill -9: {searcher.ok} ok, {len(searcher.errors)} failed, {searcher.wrong} wrong")
    assert searcher.ok > 20
    assert not searcher.errors, searcher.errors[:3]
    assert searcher.wrong == 0


def test_one_replica_kill_fails_clearly_then_recovers(cluster: LocalCluster) -> None:
    _URI[:] = [cluster.uri]
    cluster.add_role("querynode")
    _wait(lambda: len(cluster.live("querynode")) == 2, 30, "2 querynodes")
    time.sleep(1)
    _reload(1)
    _wait(lambda: len(next(iter(_leaders().values()))) == 2, 60, "one replica over 2 querynodes")
    searcher = Searcher(cluster.uri, _expected()).start()
    try:
        time.sleep(2)
        killed = time.monotonic()
        cluster.live("querynode")[0].kill()
        _wait(lambda: searcher.errors and searcher.errors[-1][0] > killed and searcher.oks[-1] > searcher.errors[-1][0]
              and time.monotonic() - searcher.errors[-1][0] > 3, 90, "searches to recover")
        time.sleep(1)
    finally:
        searcher.stop()
    failed = [m for t, m in searcher.errors if t >= killed]
    last_error = max(t for t, _ in searcher.errors)
    first_ok_after = min(t for t in searcher.oks if t > last_error) - killed
    print(f"\n1 replica, kill -9: {len(failed)} failed searches, recovered within {first_ok_after:.1f} s")
    assert failed, "a search should have failed while the channels had no live querynode"
    assert all("channel not available" in m or "no available shard leaders" in m or "unavailable" in m.lower()
               for m in failed), failed[:3]
    assert searcher.wrong == 0
    assert first_ok_after < 60


def _querynodes(cluster: LocalCluster, count: int) -> None:
    while len(cluster.live("querynode")) < count:
        cluster.add_role("querynode")
    _wait(lambda: len(cluster.live("querynode")) >= count, 30, f"{count} querynodes")
    time.sleep(4)  # their sessions register (and the dead ones expire: TTL 3 s)


def test_collection_larger_than_a_node_spreads_by_budget(cluster: LocalCluster) -> None:
    _URI[:] = [cluster.uri]
    _querynodes(cluster, 3)
    client = MilvusClient(uri=cluster.uri, timeout=120)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection("big", schema=schema, num_shards=2)
    rows = 24_000  # ~56 B per row + a FLAT index of 32 B per row: ~2 MB, more than one 1 MB querynode
    ids = np.arange(rows, dtype=np.int64)
    vecs = vectors_for(ids)
    for lo in range(0, rows, 4000):
        client.insert("big", [{"id": int(i), "v": vecs[i].tolist()} for i in range(lo, lo + 4000)])
        client.flush("big")
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_index("big", index)
    _wait(lambda: client.describe_index("big", "v").get("indexed_rows", 0) == rows, 120, "the index")
    with pytest.raises(Exception, match="memory limit exceeded") as err:
        client.load_collection("big", replica_number=3)  # a replica of one 1 MB querynode cannot hold it
    print(f"\nload that cannot fit: {err.value}")
    client.load_collection("big")
    groups = Collection("big", using="scaling").get_replicas().groups
    serving = {n for g in groups for s in g.shards for n in s.shard_nodes}
    print(f"one replica of ~2 MB over querynodes {sorted(serving)}")
    assert len(serving) >= 2
    data = vecs.astype(np.float64)
    res = client.search("big", data=vectors_for(QUERY_IDS).tolist(), limit=TOPK, consistency_level="Strong")
    for hits, q in zip(res, vectors_for(QUERY_IDS).astype(np.float64), strict=True):
        best = np.sort(((data - q) ** 2).sum(axis=1))[:TOPK]
        got = [float(((data[h["id"]] - q) ** 2).sum()) for h in hits]
        assert np.allclose(sorted(got), best, rtol=1e-5, atol=1e-6)
    assert client.query("big", filter="", output_fields=["count(*)"])[0]["count(*)"] == rows
    client.release_collection("big")
    client.drop_collection("big")
    client.close()


def test_resource_groups_place_replicas_and_transfer_under_load(cluster: LocalCluster) -> None:
    from pymilvus.client.types import ResourceGroupConfig

    _URI[:] = [cluster.uri]
    _querynodes(cluster, 3)
    client = MilvusClient(uri=cluster.uri, timeout=120)
    one = ResourceGroupConfig(requests={"node_num": 1}, limits={"node_num": 1})
    client.create_resource_group("rg_a", config=one)
    client.create_resource_group("rg_b", config=one)
    _wait(lambda: all(client.describe_resource_group(g).num_available_node == 1 for g in ("rg_a", "rg_b")),
          30, "one querynode in each group")
    client.release_collection(NAME)
    client.load_collection(NAME, replica_number=2, resource_groups=["rg_a", "__default_resource_group"])
    node_a = client.describe_resource_group("rg_a").nodes[0].node_id
    node_b = client.describe_resource_group("rg_b").nodes[0].node_id
    groups = Collection(NAME, using="scaling").get_replicas().groups
    by_rg = {g.resource_group: set(g.group_nodes) for g in groups}
    assert by_rg["rg_a"] == {node_a} and node_b not in by_rg["__default_resource_group"]
    searcher = Searcher(cluster.uri, _expected()).start()
    try:
        time.sleep(2)
        started = time.monotonic()
        client.transfer_replica("rg_a", "rg_b", NAME, 1)

        def moved() -> bool:
            gs = Collection(NAME, using="scaling").get_replicas().groups
            return any(g.resource_group == "rg_b" and set(g.group_nodes) == {node_b}
                       and {s.shard_leader for s in g.shards} == {node_b} for g in gs)

        took = _wait(moved, 60, "the replica to move to rg_b")
        print(f"\nTransferReplica rg_a -> rg_b: {took:.1f} s (from {started:.0f})")
        time.sleep(4)  # the old copies are released after the move
    finally:
        searcher.stop()
    print(f"searches during the transfer: {searcher.ok} ok, {len(searcher.errors)} failed, {searcher.wrong} wrong")
    assert searcher.ok > 10
    assert not searcher.errors, searcher.errors[:3]
    assert searcher.wrong == 0
    assert client.describe_resource_group("rg_b").num_loaded_replica == {NAME: 1}
    client.release_collection(NAME)
    for g in ("rg_a", "rg_b"):
        client.update_resource_groups({g: ResourceGroupConfig(requests={"node_num": 0}, limits={"node_num": 0})})
        client.drop_resource_group(g)
    assert client.list_resource_groups() == ["__default_resource_group"]
    client.close()
