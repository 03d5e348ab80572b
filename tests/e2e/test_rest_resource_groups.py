"""REST v2 /resource_groups/* against a real server (standalone and local cluster), over HTTP.

Create, list, describe, alter (moving a query node into the group), transfer a loaded
collection's replica into it and back, and drop — checked against pymilvus's view of the same
groups — plus Milvus's envelopes for bad requests: a missing name, a zero ``node_num`` (Go's
``binding:"required"`` refuses zero values), a missing ``replicaNum``, an unknown group, and a
``node_filter`` with labels, which Quiver refuses instead of ignoring.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from pymilvus import DataType, MilvusClient
from pymilvus.client.types import ResourceGroupConfig

from tests.e2e.rest_call import post_v2

pytestmark = pytest.mark.e2e
DEFAULT = "__default_resource_group"
RG = "rest_rg"
COLL = "rest_rg_coll"


def ok(server: Any, path: str, body: dict[str, Any]) -> Any:
    reply = post_v2(server, path, body)
    assert reply["code"] == 0, reply
    return reply["data"]


def fails(server: Any, path: str, body: dict[str, Any], code: int) -> str:
    reply = post_v2(server, path, body)
    assert reply["code"] == code, reply
    return str(reply["message"])


def one_node(num: int) -> dict[str, Any]:
    return {"requests": {"node_num": num}, "limits": {"node_num": num}}


def wait_for(cond: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_resource_group_lifecycle_over_rest(server: Any, client: MilvusClient) -> None:
    milvus = client
    assert DEFAULT in ok(server, "resource_groups/list", {})
    assert ok(server, "resource_groups/create", {"name": RG}) == {}
    assert RG in ok(server, "resource_groups/list", {})
    assert RG in milvus.list_resource_groups()
    described = ok(server, "resource_groups/describe", {"name": RG})["resource_group"]
    assert described["name"] == RG
    assert "nodes" not in described and "capacity" not in described  # empty fields are left out, as Go's omitempty

    # a collection loaded in the default group; then a query node moves into the new group
    schema = milvus.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    index = milvus.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    milvus.create_collection(COLL, schema=schema, index_params=index, consistency_level="Strong")
    milvus.insert(COLL, [{"id": i, "v": [float(i), 0.0, 0.0, 1.0]} for i in range(20)])
    assert ok(server, "resource_groups/alter", {"resource_groups": {RG: one_node(1)}}) == {}

    def in_group() -> bool:
        rg = ok(server, "resource_groups/describe", {"name": RG})["resource_group"]
        return len(rg.get("nodes", [])) == 1 and rg.get("num_available_node") == 1

    wait_for(in_group, "a query node in the new group")
    rg = ok(server, "resource_groups/describe", {"name": RG})["resource_group"]
    assert rg["config"]["requests"] == {"node_num": 1} and rg["config"]["limits"] == {"node_num": 1}
    assert isinstance(rg["nodes"][0]["node_id"], int)  # a number, as Go renders int64
    assert milvus.describe_resource_group(RG).num_available_node == 1

    body = {"sourceRgName": DEFAULT, "targetRgName": RG, "collectionName": COLL, "replicaNum": 1}
    if not ok(server, "resource_groups/describe", {"name": DEFAULT})["resource_group"].get("nodes"):
        # the only query node went to the new group: the replica waits there for nodes; move it along
        milvus.release_collection(COLL)
        milvus.load_collection(COLL, resource_groups=[RG])
    else:
        assert ok(server, "resource_groups/transfer_replica", body) == {}
    wait_for(lambda: ok(server, "resource_groups/describe", {"name": RG})["resource_group"]
             .get("num_loaded_replica", {}).get(COLL) == 1, "the replica in the new group")
    hits = milvus.search(COLL, data=[[3.0, 0.0, 0.0, 1.0]], limit=1, consistency_level="Strong")
    assert hits[0][0]["id"] == 3

    # put everything back: the node home (node_num 0 only over gRPC: REST refuses a zero), the group gone
    milvus.release_collection(COLL)
    milvus.update_resource_groups({RG: ResourceGroupConfig(requests={"node_num": 0}, limits={"node_num": 0})})
    wait_for(lambda: not ok(server, "resource_groups/describe", {"name": RG})["resource_group"].get("nodes"),
             "the node back in the default group")
    assert ok(server, "resource_groups/drop", {"name": RG}) == {}
    assert RG not in ok(server, "resource_groups/list", {})
    milvus.drop_collection(COLL)


def test_bad_resource_group_requests_get_milvus_errors(server: Any) -> None:
    assert "name" in fails(server, "resource_groups/create", {}, 1802)
    assert "node_num" in fails(server, "resource_groups/alter", {"resource_groups": {"x": one_node(0)}}, 1802)
    assert "limits" in fails(
        server, "resource_groups/alter", {"resource_groups": {"x": {"requests": {"node_num": 1}}}}, 1802
    )
    body = {"sourceRgName": DEFAULT, "targetRgName": "x", "collectionName": "c"}
    assert "replicaNum" in fails(server, "resource_groups/transfer_replica", body, 1802)
    reply = post_v2(server, "resource_groups/describe", {"name": "no_such_group"})
    assert reply["code"] != 0 and "no_such_group" in reply["message"]
    labelled = dict(one_node(1), node_filter={"node_labels": {"zone": "a"}})
    assert "node_filter" in fails(server, "resource_groups/create", {"name": "labelled", "config": labelled}, 10)
    assert "labelled" not in post_v2(server, "resource_groups/list", {})["data"]
    assert "Invalid resource group name" in fails(server, "resource_groups/create", {"name": "1bad"}, 1100)
