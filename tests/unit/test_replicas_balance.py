"""The segment placement and balancer rules (services/coord/balance.py): memory budgets, row scores
with growing rows weighted, gradual moves that converge, and the load-fits check."""

from __future__ import annotations

from pymilvus import CollectionSchema, DataType, FieldSchema
from pymilvus.client.prepare import Prepare

from common.schema import Schema
from services.coord.balance import (
    GROWING_ROW_WEIGHT,
    NodeState,
    Placer,
    SegLoad,
    estimate_bytes,
    fits_in,
    row_bytes,
)


def nodes(budget: int, *names: str) -> dict[str, NodeState]:
    return {n: NodeState(n, budget) for n in names}


def test_row_bytes_and_estimate_follow_the_schema() -> None:
    fields = [FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=8),
              FieldSchema("f", DataType.FLOAT)]
    proto = Prepare.get_schema_from_collection_schema("c", CollectionSchema(fields))
    schema = Schema.from_bytes(proto.SerializeToString())
    assert row_bytes(schema) == 16 + 8 + 32 + 4  # ts + delete ts, pk, vector, float
    builds = [{"files": ["a"], "size": 1000}, {"files": [], "size": 5}]  # a scalar build has no files
    assert estimate_bytes(schema, 100, builds) == 100 * 60 + 1000


def test_segments_spread_by_score_and_never_beyond_a_budget() -> None:
    placer = Placer(nodes(250, "a", "b", "c"))
    segs = [SegLoad(i, 1000, 100) for i in range(6)]
    targets: dict[int, str] = {}
    assert placer.place(["a", "b", "c"], segs, targets, set()) == []
    per_node = {n: sorted(s for s, e in targets.items() if e == n) for n in "abc"}
    assert [len(v) for v in per_node.values()] == [2, 2, 2]
    assert all(placer.nodes[n].used <= 250 for n in "abc")
    # a seventh segment fits nowhere: it stays unplaced instead of overrunning a node
    assert placer.place(["a", "b", "c"], [SegLoad(9, 10, 100)], targets, set()) == [SegLoad(9, 10, 100)]
    # a node that refused a segment is avoided for it
    placer2 = Placer(nodes(1000, "a", "b"))
    t2: dict[int, str] = {}
    placer2.place(["a", "b"], [SegLoad(1, 10, 10)], t2, {("a", 1)})
    assert t2 == {1: "b"}


def test_keep_retains_targets_and_reuses_copies_held_in_the_replica() -> None:
    placer = Placer(nodes(10_000, "a", "b"))
    targets = {1: "a", 2: "gone"}
    segs = [SegLoad(1, 10, 10, {"a"}), SegLoad(2, 10, 10, {"b"}), SegLoad(3, 10, 10, set())]
    left = placer.keep(["a", "b"], segs, targets)
    assert targets == {1: "a", 2: "b"} and [s.sid for s in left] == [3]
    assert placer.nodes["a"].used == 0  # held already: no extra memory counted


def test_growing_rows_weigh_on_the_leader() -> None:
    ns = nodes(10_000, "leader", "worker")
    ns["leader"].score = GROWING_ROW_WEIGHT * 3000  # it leads a shard with 3000 growing rows
    placer = Placer(ns)
    targets: dict[int, str] = {}
    placer.place(["leader", "worker"], [SegLoad(i, 1000, 10) for i in range(4)], targets, set())
    assert sorted(targets.values()).count("worker") >= 3


def test_balancer_moves_one_segment_at_a_time_and_converges() -> None:
    placer = Placer(nodes(10_000, "a", "b", "c"))
    segs = [SegLoad(i, 1000, 10, {"a"}) for i in range(9)]
    targets = {s.sid: "a" for s in segs}
    placer.keep(["a", "b", "c"], segs, targets)
    moves = []
    for _ in range(20):
        move = placer.balance_move(["a", "b", "c"], segs, targets)
        if move is None:
            break
        moves.append(move)
        for s in segs:  # the move completed: the new node holds it, the old one released it
            if s.sid == move[0]:
                s.held_by = {move[2]}
    assert len(moves) == 6  # 9 segments over 3 nodes: 3 each
    assert sorted(list(targets.values()).count(n) for n in "abc") == [3, 3, 3]
    assert placer.balance_move(["a", "b", "c"], segs, targets) is None  # balanced: no ping-pong


def test_balancer_ignores_small_gaps_and_full_nodes() -> None:
    placer = Placer(nodes(100, "a", "b"))
    segs = [SegLoad(1, 600, 80, {"a"}), SegLoad(2, 500, 80, {"b"})]
    targets = {1: "a", 2: "b"}
    placer.keep(["a", "b"], segs, targets)
    assert placer.balance_move(["a", "b"], segs, targets) is None  # gap 100 rows: balanced enough
    big = Placer(nodes(100, "a", "b"))
    segs2 = [SegLoad(1, 5000, 80, {"a"}), SegLoad(2, 5000, 80, {"a"})]
    t2 = {1: "a", 2: "a"}
    big.nodes["b"].used = 50  # b cannot take an 80-byte segment
    big.keep(["a", "b"], segs2, t2)
    assert big.balance_move(["a", "b"], segs2, t2) is None


def test_fits_in_is_bin_packing_not_a_sum() -> None:
    assert fits_in([60, 60], [100, 100])
    assert not fits_in([60, 60], [119])  # the sum fits one node's room, the segments do not
    assert not fits_in([150], [100, 100])
    assert fits_in([], [])


def test_segments_stay_next_to_their_shard_leader_while_balanced() -> None:
    placer = Placer(nodes(10_000, "a", "b"))
    segs = [SegLoad(i, 1000, 10, leader="a" if i < 2 else "b") for i in range(4)]  # two shards, one per node
    targets: dict[int, str] = {}
    placer.place(["a", "b"], segs, targets, set())
    assert targets == {0: "a", 1: "a", 2: "b", 3: "b"}  # local to each leader: no extra hop per search
    # a third node joins and leads nothing: the balancer still evens rows out, one move at a time
    placer3 = Placer(nodes(10_000, "a", "b", "c"))
    segs3 = [SegLoad(i, 1000, 10, {targets[i]}, s.leader) for i, s in enumerate(segs)]
    placer3.keep(["a", "b", "c"], segs3, targets)
    move = placer3.balance_move(["a", "b", "c"], segs3, targets)
    assert move is not None and move[2] == "c"
