"""Recovery of a local cluster under load: kill -9 each role and restart it, then restart etcd,
the S3 server and the broker one at a time. Afterwards every acknowledged insert is searchable
and counted, and none is counted twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pymilvus import MilvusClient

from quiver.devcluster import ClusterLayout, LocalCluster
from tests.integration.load import Load, vectors_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NAME = "recovery"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(Path(tmp_path_factory.mktemp("cluster")), ClusterLayout(querynodes=2))
    c.start_servers()
    c.start_roles()
    yield c
    c.stop()


def _settle(cluster: LocalCluster, load: Load, seconds: float = 4.0) -> None:
    """Let the load run a while after a disruption and make sure writes go through again."""
    acked = len(load.acked)
    deadline = time.monotonic() + 90
    time.sleep(seconds)
    while len(load.acked) <= acked:
        assert time.monotonic() < deadline, "inserts did not resume:\n" + "\n".join(
            f"--- {r.name}\n{r.log_tail(15)}" for r in cluster.roles
        )
        time.sleep(0.5)


def _verify(uri: str, acked: list[int]) -> None:
    client = MilvusClient(uri=uri, timeout=60)
    deadline = time.monotonic() + 90
    while True:
        try:
            count = client.query(NAME, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
            if count == len(acked) or time.monotonic() > deadline:
                break
        except Exception:
            if time.monotonic() > deadline:
                raise
        time.sleep(1)
    assert count == len(acked), f"count(*) {count} != {len(acked)} acknowledged"
    rows = client.query(NAME, filter="id >= 0", output_fields=["id"], limit=16384, consistency_level="Strong")
    got = [r["id"] for r in rows]
    assert len(got) == len(set(got)), "a row is served twice"
    if len(acked) <= 16384:
        assert set(got) == set(acked)
    probes = np.array(acked[:: max(1, len(acked) // 20)], dtype=np.int64)
    for pid, vec in zip(probes, vectors_for(probes), strict=True):
        vec_hits = client.search(NAME, data=[vec.tolist()], limit=1, consistency_level="Strong")
        assert vec_hits[0][0]["id"] == pid
    client.close()


def test_kill_each_role_under_load(cluster: LocalCluster) -> None:
    from tests.integration.load import create_collection

    create_collection(cluster.uri, NAME)
    load = Load(cluster.uri, NAME)
    load.start()
    try:
        _settle(cluster, load, 2)
        for name in ("datanode-1", "querynode-1", "proxy-1", "coord-1"):
            role = cluster.role(name)
            role.kill()
            time.sleep(1)
            role.start()
            _settle(cluster, load)
        MilvusClient(uri=cluster.uri).flush(NAME)  # sealed data written by the restarted datanode
        _settle(cluster, load, 1)
    finally:
        load.stop()
    assert load.searches > 0
    _verify(cluster.uri, load.acked)


def test_restart_each_external_server(cluster: LocalCluster) -> None:
    load = Load(cluster.uri, NAME)
    load._next = 10_000_000  # fresh ids, next to the first test's rows
    before = MilvusClient(uri=cluster.uri).query(NAME, filter="", output_fields=["count(*)"],
                                                consistency_level="Strong")[0]["count(*)"]
    load.start()
    try:
        _settle(cluster, load, 2)
        for server in ("etcd", "s3", "pulsar"):
            cluster.servers[server].restart()
            _settle(cluster, load)
    finally:
        load.stop()
    client = MilvusClient(uri=cluster.uri, timeout=60)
    client.flush(NAME)
    ids = sorted(set(load.acked))
    deadline = time.monotonic() + 90
    while True:
        count = client.query(NAME, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
        if count == before + len(ids) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert count == before + len(ids)
    got = client.query(NAME, filter=f"id >= {10_000_000}", output_fields=["id"], limit=16384,
                       consistency_level="Strong")
    assert sorted(r["id"] for r in got) == ids[:16384]
