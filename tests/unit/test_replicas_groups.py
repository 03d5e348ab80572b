"""Resource groups: the manager's rules on an in-memory KV (Milvus's codes and messages, node
assignment by requests/limits, persistence), then the pymilvus API on an in-process Quiver with
three querynodes: load into a group, transfer a replica, describe, drop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusException
from pymilvus.client.types import ResourceGroupConfig

from common.errors import MilvusError
from common.kv.memory import MemoryKV
from services.coord.keys import Keys
from services.coord.resource_groups import DEFAULT_RG, ResourceManager, make_config
from tests.unit.test_replicas_delegator import Rig, create, start, stop, wait


def manager(kv: MemoryKV | None = None) -> ResourceManager:
    return ResourceManager(kv or MemoryKV(), Keys("root/meta"))


def code_of(fn: object, *args: object) -> int:
    with pytest.raises(MilvusError) as err:
        fn(*args)  # type: ignore[operator]
    return err.value.code


def test_default_group_exists_and_groups_persist() -> None:
    kv = MemoryKV()
    rm = manager(kv)
    assert list(rm.groups) == [DEFAULT_RG] and rm.groups[DEFAULT_RG].limits == 1_000_000
    rm.create("rg1", make_config(1, 2))
    rm.assign(["a", "b", "c"])
    again = manager(kv)  # a new coordinator reads the same groups and assignment back
    assert sorted(again.groups) == sorted(rm.groups)
    assert {n: g.nodes for n, g in again.groups.items()} == {n: g.nodes for n, g in rm.groups.items()}
    assert any(k.key.startswith("root/meta/querycoord-resource-group/") for k in kv.scan("root/meta/"))


def test_create_rules_and_errors() -> None:
    rm = manager()
    rm.create("rg1", make_config(1, 1))
    rm.create("rg1", make_config(1, 1))  # the same again is fine
    assert code_of(rm.create, "rg1", make_config(2, 2)) == 301
    assert code_of(rm.create, "1bad", None) == 1100
    assert code_of(rm.create, "bad-name", None) == 1100
    assert code_of(rm.create, "", None) == 1100
    assert code_of(rm.create, "rg2", make_config(3, 1)) == 303  # limits below requests
    assert code_of(rm.create, "rg2", make_config(-1, 1)) == 303
    assert code_of(rm.create, "rg2", make_config(0, 1, transfer_from=["nope"])) == 303
    assert code_of(rm.create, "rg2", {"limits": {"node_num": 1}}) == 303  # requests missing
    assert code_of(rm.update, {"nope": make_config(0, 0)}) == 300
    rm.create("rg2", None)  # no config: requests = limits = 0
    assert rm.groups["rg2"].limits == 0


def test_nodes_follow_requests_and_limits() -> None:
    rm = manager()
    rm.assign(["a", "b", "c"])
    assert sorted(rm.groups[DEFAULT_RG].nodes) == ["a", "b", "c"]
    rm.create("rg1", make_config(1, 1))
    rm.assign(["a", "b", "c"])
    assert len(rm.groups["rg1"].nodes) == 1 and len(rm.groups[DEFAULT_RG].nodes) == 2
    rm.assign(["a", "b", "c", "d"])  # a joining node goes to the default group (rg1 is at its limit)
    assert len(rm.groups["rg1"].nodes) == 1 and len(rm.groups[DEFAULT_RG].nodes) == 3
    rm.update({"rg1": make_config(3, 3)})
    rm.assign(["a", "b", "c", "d"])
    assert len(rm.groups["rg1"].nodes) == 3
    rm.update({"rg1": make_config(1, 1)})
    rm.assign(["a", "b", "c", "d"])  # over its limit: the extra nodes go back to the default group
    assert len(rm.groups["rg1"].nodes) == 1 and len(rm.groups[DEFAULT_RG].nodes) == 3
    gone = rm.groups["rg1"].nodes[0]
    rm.assign([n for n in "abcd" if n != gone])  # its node died: it takes one from the default group
    assert len(rm.groups["rg1"].nodes) == 1 and gone not in rm.groups["rg1"].nodes


def test_transfer_node_and_drop() -> None:
    rm = manager()
    rm.create("rg1", make_config(0, 0))
    rm.assign(["a", "b"])
    assert code_of(rm.transfer_node, DEFAULT_RG, "rg1", 3) == 304
    assert code_of(rm.transfer_node, "rg1", "rg1", 1) == 1100
    assert code_of(rm.transfer_node, DEFAULT_RG, "nope", 1) == 300
    assert code_of(rm.transfer_node, DEFAULT_RG, "rg1", 0) == 1100
    rm.transfer_node(DEFAULT_RG, "rg1", 1)
    assert rm.groups["rg1"].requests == 1 and len(rm.groups["rg1"].nodes) == 1
    assert code_of(rm.drop, DEFAULT_RG, 0) == 1100
    assert code_of(rm.drop, "rg1", 0) == 1100  # limits not 0
    rm.update({"rg1": make_config(0, 0)})
    assert code_of(rm.drop, "rg1", 1) == 1100  # a replica still lives there
    rm.drop("rg1", 0)
    assert "rg1" not in rm.groups and sorted(rm.groups[DEFAULT_RG].nodes) == ["a", "b"]
    rm.drop("rg1", 0)  # dropping a missing group is not an error


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = start(tmp_path, 512)
    r.add_querynode(512)
    r.add_querynode(512)
    yield r
    stop(r)


def test_resource_groups_through_pymilvus(rig: Rig) -> None:
    client = create(rig.uri, "rgc", batches=2, rows=300)
    cfg = ResourceGroupConfig(requests={"node_num": 1}, limits={"node_num": 1})
    client.create_resource_group("rg1", config=cfg)
    assert sorted(client.list_resource_groups()) == sorted([DEFAULT_RG, "rg1"])
    wait(lambda: client.describe_resource_group("rg1").num_available_node == 1, 30, "a node in rg1")
    with pytest.raises(MilvusException) as err:
        client.load_collection("rgc", replica_number=2, resource_groups=["rg1"])
    assert err.value.code == 304 and "resource group node not enough" in err.value.message
    with pytest.raises(MilvusException) as err:
        client.load_collection("rgc", replica_number=2, resource_groups=["rg1", DEFAULT_RG, "x"])
    assert "resource group num can only be 0, 1 or same as replica number" in err.value.message
    with pytest.raises(MilvusException) as err:
        client.load_collection("rgc", resource_groups=["missing_rg"])
    assert err.value.code == 300

    client.load_collection("rgc", replica_number=2, resource_groups=["rg1", DEFAULT_RG])
    rg1_node = client.describe_resource_group("rg1").nodes[0].node_id
    default_nodes = {n.node_id for n in client.describe_resource_group(DEFAULT_RG).nodes}
    replicas = rig.query.get_replicas(client.describe_collection("rgc")["collection_id"])
    by_group = {r["resource_group"]: set(r["node_ids"]) for r in replicas}
    assert by_group["rg1"] == {rg1_node} and by_group[DEFAULT_RG] <= default_nodes
    desc = client.describe_resource_group("rg1")
    assert desc.num_loaded_replica == {"rgc": 1} and desc.capacity == 1
    assert client.query("rgc", filter="", output_fields=["count(*)"])[0]["count(*)"] == 600

    with pytest.raises(MilvusException) as err:
        client.drop_resource_group("rg1")  # a replica still lives there
    assert "release it first" in err.value.message
    client.create_resource_group("rg2", config=ResourceGroupConfig(requests={"node_num": 1},
                                                                    limits={"node_num": 1}))
    client.transfer_replica("rg1", "rg2", "rgc", 1)
    rg2_node = client.describe_resource_group("rg2").nodes[0].node_id

    def moved() -> bool:
        reps = rig.query.get_replicas(client.describe_collection("rgc")["collection_id"])
        return any(r["resource_group"] == "rg2" and r["node_ids"] == [rg2_node] for r in reps)

    wait(moved, 30, "the replica to move to rg2's node")
    assert client.query("rgc", filter="", output_fields=["count(*)"])[0]["count(*)"] == 600
    with pytest.raises(MilvusException) as err:
        client.transfer_replica("rg1", "rg2", "rgc", 1)  # none left in rg1
    assert "only found [0] replicas" in err.value.message

    client.update_resource_groups({"rg1": ResourceGroupConfig(requests={"node_num": 0}, limits={"node_num": 0})})
    client.drop_resource_group("rg1")
    assert "rg1" not in client.list_resource_groups()
    with pytest.raises(MilvusException) as err:
        client.describe_resource_group("rg1")
    assert err.value.code == 300
    client.close()


def test_transfer_node_through_the_orm_utility(rig: Rig) -> None:
    from pymilvus import connections, utility

    connections.connect("rg-utility", uri=rig.uri)
    try:
        utility.create_resource_group("rg3", using="rg-utility")
        assert utility.describe_resource_group("rg3", using="rg-utility").num_available_node == 0
        utility.transfer_node(DEFAULT_RG, "rg3", 2, using="rg-utility")  # requests/limits move; nodes follow
        desc = utility.describe_resource_group("rg3", using="rg-utility")
        assert desc.num_available_node == 2 and desc.config.requests.node_num == 2
        assert utility.describe_resource_group(DEFAULT_RG, using="rg-utility").num_available_node == 1
        with pytest.raises(MilvusException) as err:
            utility.transfer_node(DEFAULT_RG, "rg3", 5, using="rg-utility")
        assert err.value.code == 304
        utility.transfer_node("rg3", DEFAULT_RG, 2, using="rg-utility")
        assert utility.describe_resource_group(DEFAULT_RG, using="rg-utility").num_available_node == 3
        utility.drop_resource_group("rg3", using="rg-utility")
        assert utility.list_resource_groups(using="rg-utility") == [DEFAULT_RG]
    finally:
        connections.disconnect("rg-utility")
