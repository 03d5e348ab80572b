"""A querynode that is a worker (not its shard's leader) is killed and restarted on its port.

The deletes its shard leader forwarded to it before the crash died with it, and the delta logs
do not have them yet (no flush, no periodic sync). Whatever serves those segments afterwards —
the leader itself, or the restarted worker (a new session: its endpoint names the new node id)
— must have the leader's buffered deletes before it answers a read: count(*), queries and
searches never bring a deleted row back, reads at worst fail clearly meanwhile. (A fresh copy
on an endpoint the leader already routes to is covered in tests/unit/test_sealed_store.py.)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from pymilvus import DataType, MilvusClient, connections, utility
from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc

from quiver.devcluster import ClusterLayout, LocalCluster
from tests.integration.load import DIM, vectors_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NAME = "worker_restart"
BATCHES, BATCH = 4, 1000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    # no periodic sync: the deletes stay out of the delta logs unless a flush writes them
    c = LocalCluster(Path(tmp_path_factory.mktemp("cluster")), ClusterLayout(querynodes=2),
                     extra_config={"data": {"sync_period_seconds": 600}})
    c.start_servers()
    c.start_roles()
    yield c
    c.stop()


def _count(client: MilvusClient) -> int:
    return int(client.query(NAME, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"])


def _placement(uri: str) -> tuple[str, int, set[int]]:
    """(leader endpoint, leader node id, node ids holding sealed segments)."""
    with grpc.insecure_channel(uri.removeprefix("http://")) as channel:
        reply = milvus_pb2_grpc.MilvusServiceStub(channel).GetReplicas(
            milvus_pb2.GetReplicasRequest(collection_name=NAME, with_shard_nodes=True), timeout=30
        )
    shard = reply.replicas[0].shard_replicas[0]
    connections.connect("restart", uri=uri)
    try:
        nodes = {n for s in utility.get_query_segment_info(NAME, using="restart") for n in s.nodeIds}
    finally:
        connections.disconnect("restart")
    return shard.leader_addr, int(shard.leaderID), nodes


def test_a_restarted_worker_serves_no_row_its_leader_saw_deleted(cluster: LocalCluster) -> None:
    client = MilvusClient(uri=cluster.uri, timeout=60)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(NAME, schema=schema, index_params=index, num_shards=1, consistency_level="Strong")
    ids = np.arange(BATCHES * BATCH, dtype=np.int64)
    vecs = vectors_for(ids)
    for lo in range(0, len(ids), BATCH):  # one sealed segment per batch
        client.insert(NAME, [{"id": int(i), "v": vecs[i].tolist()} for i in range(lo, lo + BATCH)])
        client.flush(NAME)

    deadline = time.monotonic() + 90
    while True:  # the balancer spreads the sealed segments over both querynodes
        leader, leader_id, holders = _placement(cluster.uri)
        if holders - {leader_id} and _count(client) == len(ids):
            break
        assert time.monotonic() < deadline, f"segments never reached a worker: leader {leader_id}, on {holders}"
        time.sleep(0.5)
    port = leader.split("//", 1)[-1].split("/", 1)[0].rsplit(":", 1)[-1]
    worker = next(r for r in cluster.live("querynode") if f"--internal-port {port}" not in " ".join(r.args))

    gone = ids[::10]  # in every segment, the worker's included; buffered by the leader, not flushed
    client.delete(NAME, ids=gone.tolist())
    left = len(ids) - len(gone)
    assert _count(client) == left

    worker.kill()
    worker.start()  # same endpoint: the leader still routes the worker's segments to it

    deadline = time.monotonic() + 90
    counts: list[int] = []
    while True:  # reads may fail clearly while it comes back; they must never count deleted rows
        with contextlib.suppress(Exception):
            counts.append(_count(client))
        if counts and counts[-1] == left and _placement(cluster.uri)[2] - {leader_id}:
            break
        assert time.monotonic() < deadline, f"no recovery: counts {counts[-10:]}"
        time.sleep(0.3)
    assert set(counts) == {left}, f"deleted rows came back: counts seen {sorted(set(counts))}"
    back = client.query(NAME, filter=f"id in {gone.tolist()}", output_fields=["id"], consistency_level="Strong")
    assert back == []
    for i in (7, 1234, 3999):
        hit = client.search(NAME, data=[vecs[i].tolist()], limit=1, consistency_level="Strong")[0][0]
        assert hit["id"] == i
    client.close()
