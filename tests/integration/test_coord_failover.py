"""Two coordinators: one active, one standby on the same etcd lease key. Killing the active one
hands over to the standby within seconds, and the cluster keeps every acknowledged write."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient

from common.errors import MilvusError
from common.rpc import Router
from quiver.devcluster import ClusterLayout, LocalCluster
from quiver.devcluster.cluster import RoleProcess
from tests.integration.load import Load, create_collection

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _health(role: RoleProcess) -> str:
    """What the role's internal ``health.status`` RPC says ("active", "standby", ...)."""
    port = int(role.args[role.args.index("--internal-port") + 1])
    router = Router()
    try:
        return str(router.client(f"tcp://127.0.0.1:{port}/health").call("status", timeout=2)["state"])
    finally:
        router.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(Path(tmp_path_factory.mktemp("failover")), ClusterLayout(coords=2, querynodes=1))
    c.start_servers()
    c.start_roles()
    yield c
    c.stop()


def test_standby_takes_over(cluster: LocalCluster) -> None:
    first, second = cluster.role("coord-1"), cluster.role("coord-2")
    deadline = time.monotonic() + 20
    while sorted([_health(first), _health(second)]) != ["active", "standby"]:
        assert time.monotonic() < deadline, (_health(first), _health(second))
        time.sleep(0.2)
    active, standby = (first, second) if _health(first) == "active" else (second, first)
    create_collection(cluster.uri, "failover")
    load = Load(cluster.uri, "failover")
    load.start()
    try:
        time.sleep(2)
        active.kill()
        killed_at = time.monotonic()
        while _health(standby) != "active":
            assert time.monotonic() - killed_at < 20, "standby did not take over"
            time.sleep(0.1)
        takeover = time.monotonic() - killed_at
        acked = len(load.acked)
        while len(load.acked) <= acked:
            assert time.monotonic() - killed_at < 60, "writes did not resume after the takeover"
            time.sleep(0.2)
    finally:
        load.stop()
    assert takeover < 15, f"takeover took {takeover:.1f}s"
    client = MilvusClient(uri=cluster.uri, timeout=60)
    count = client.query("failover", filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
    assert count == len(load.acked)
    active.start()  # the old active comes back as the standby
    deadline = time.monotonic() + 20
    while True:
        try:
            if _health(active) == "standby":
                break
        except MilvusError:
            pass
        assert time.monotonic() < deadline
        time.sleep(0.2)
