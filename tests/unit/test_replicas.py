"""Replica placement rules (services/coord/replicas.py): disjoint node sets, channel targets that
follow nodes leaving and joining, and the balance step that spreads channels."""

from __future__ import annotations

import pytest

from common.errors import MilvusError
from services.coord.replicas import Replica, balance_move, check_enough, place, split_nodes

CHANNELS = ["dml_0_1v0", "dml_1_1v1", "dml_2_1v2", "dml_3_1v3"]


def _load(replicas: list[Replica]) -> dict[str, int]:
    load: dict[str, int] = {}
    for r in replicas:
        for e in r.channels.values():
            load[e] = load.get(e, 0) + 1
    return load


def test_not_enough_nodes_is_milvus_error() -> None:
    with pytest.raises(MilvusError) as err:
        check_enough(3, 2)
    assert err.value.code == 304  # merr.ErrResourceGroupNodeNotEnough
    assert "resource group node not enough" in err.value.message
    check_enough(2, 2)


def test_split_is_disjoint_and_even() -> None:
    sets = split_nodes(["c", "a", "e", "b", "d"], 2)
    assert sets == [["a", "c", "e"], ["b", "d"]]
    assert not set(sets[0]) & set(sets[1])


def test_every_replica_serves_every_channel_on_its_own_nodes() -> None:
    reps = [Replica(1, nodes) for nodes in split_nodes(["a", "b", "c", "d"], 2)]
    load: dict[str, int] = {}
    assert place(reps, CHANNELS, ["a", "b", "c", "d"], load, set())
    for r in reps:
        assert sorted(r.channels) == CHANNELS
        assert set(r.channels.values()) <= set(r.nodes)
        assert sorted(_load([r]).values()) == [2, 2]  # spread over both of its nodes
    assert not place(reps, CHANNELS, ["a", "b", "c", "d"], load, set())  # stable: nothing to change


def test_dead_node_channels_move_within_replica_and_free_node_refills_empty_replica() -> None:
    reps = [Replica(1, ["a", "c"]), Replica(2, ["b"])]
    load: dict[str, int] = {}
    place(reps, CHANNELS, ["a", "b", "c"], load, set())
    assert place(reps, CHANNELS, ["a", "b"], _load(reps), set())  # c died
    assert set(reps[0].channels.values()) == {"a"}
    assert place(reps, CHANNELS, ["a", "d"], _load(reps), set())  # b died, d joined: replica 2 takes d
    assert reps[1].nodes == ["d"] and set(reps[1].channels.values()) == {"d"}
    assert not set(reps[0].nodes) & set(reps[1].nodes)


def test_replica_without_nodes_has_no_targets() -> None:
    reps = [Replica(1, ["a"]), Replica(2, ["b"])]
    place(reps, CHANNELS, ["a", "b"], {}, set())
    place(reps, CHANNELS, ["a"], _load(reps), set())
    assert reps[1].nodes == [] and reps[1].channels == {}
    assert len(reps[0].channels) == len(CHANNELS)


def test_draining_node_is_left_and_joining_node_is_balanced_onto() -> None:
    reps = [Replica(1, ["a"])]
    place(reps, CHANNELS, ["a"], {}, set())
    load = _load(reps)
    assert place(reps, CHANNELS, ["a", "b"], load, set())  # b joins the only replica
    assert reps[0].nodes == ["a", "b"]
    moves = []
    while (move := balance_move(reps[0], load)) is not None:
        moves.append(move)
    assert [m[1:] for m in moves] == [("a", "b"), ("a", "b")]
    assert sorted(_load(reps).values()) == [2, 2]
    place(reps, CHANNELS, ["a", "b"], _load(reps), {"b"})  # b drains
    assert reps[0].nodes == ["a"] and set(reps[0].channels.values()) == {"a"}


def test_round_trip_through_catalog_dict() -> None:
    r = Replica(7, ["a"], {"v": "a"})
    assert Replica.from_dict(r.to_dict()) == r
