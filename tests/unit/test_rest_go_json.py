"""REST v2 renders protobuf replies as Go's encoding/json renders Milvus's generated structs
(services/proxy/rest/resource_groups.py): proto field names, int64 as numbers, maps and nested
messages kept, unset and empty fields left out (omitempty)."""

from __future__ import annotations

from pymilvus.grpc_gen import common_pb2, milvus_pb2, rg_pb2

from services.proxy.rest.resource_groups import as_go_json


def test_a_resource_group_renders_as_go_does() -> None:
    rg = milvus_pb2.ResourceGroup(
        name="rg",
        num_available_node=1,
        num_loaded_replica={"coll": 1},
        config=rg_pb2.ResourceGroupConfig(
            requests=rg_pb2.ResourceGroupLimit(node_num=1),
            limits=rg_pb2.ResourceGroupLimit(node_num=0),
            transfer_from=[rg_pb2.ResourceGroupTransfer(resource_group="__default_resource_group")],
        ),
        nodes=[common_pb2.NodeInfo(node_id=470638536999567361, address="127.0.0.1:1", hostname="")],
    )
    assert as_go_json(rg) == {
        "name": "rg",
        "num_available_node": 1,
        "num_loaded_replica": {"coll": 1},
        "config": {
            "requests": {"node_num": 1},
            "limits": {},  # a set message with only zero fields: {} (a non-nil pointer in Go)
            "transfer_from": [{"resource_group": "__default_resource_group"}],
        },
        "nodes": [{"node_id": 470638536999567361, "address": "127.0.0.1:1"}],
    }
    assert as_go_json(milvus_pb2.ResourceGroup()) == {}
