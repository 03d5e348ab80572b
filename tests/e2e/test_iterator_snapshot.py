"""Iterators read one snapshot (MVCC): rows inserted or deleted while an iteration runs do not
appear in, or vanish from, its later pages — as Milvus reads every page at the iterator's
timestamp. Covers MilvusClient.search_iterator (v2), the ORM Collection.search_iterator (v1)
and MilvusClient.query_iterator, over sealed and growing rows, standalone and cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pymilvus import Collection, DataType, MilvusClient, connections

from tests.e2e.server import StandaloneServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

DIM = 4
ROWS = 200
BATCH = 20


def _vec(x: float) -> list[float]:
    return [x / 10, 0.0, 0.0, 0.0]  # L2 to the zero query grows with x: row i ranks i-th


def _make(c: MilvusClient, name: str) -> None:
    schema = c.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    index = c.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    c.insert(name, [{"id": i, "v": _vec(i)} for i in range(120)])
    c.flush(name)  # 0..119 sealed
    c.insert(name, [{"id": i, "v": _vec(i)} for i in range(120, ROWS)])  # 120..199 growing
    c.load_collection(name)


def _mutate(c: MilvusClient, name: str, round_: int) -> None:
    """Rows the iteration has not reached yet: delete some (sealed and growing), insert new ones
    ranking among them, upsert one, then a Strong read so every later page is past these writes."""
    base = 1000 + 100 * round_
    c.insert(name, [{"id": base + j, "v": _vec(100.5 + j)} for j in range(20)])
    c.delete(name, ids=[100 + round_ * 2, 101 + round_ * 2, 150 + round_, 190 + round_])
    c.upsert(name, [{"id": 180 + round_, "v": _vec(500)}])  # moves to the end for a fresh read
    c.query(name, filter="id >= 0", output_fields=["count(*)"], consistency_level="Strong")


def _drain(it: Any, c: MilvusClient, name: str, key: Callable[[Any], int]) -> list[int]:
    got: list[int] = []
    round_ = 0
    while True:
        page = it.next()
        if not page:
            break
        got += [key(h) for h in page]
        if round_ < 3:  # writes between the first pages
            _mutate(c, name, round_)
            round_ += 1
    it.close()
    assert round_ == 3, "the iteration ended before the writes: the test would prove nothing"
    return got


def _check_writes_landed(c: MilvusClient, name: str) -> None:
    rows = c.query(name, filter="id >= 0", output_fields=["id"], consistency_level="Strong")
    ids = {int(r["id"]) for r in rows}
    assert {1000, 1119, 1219} <= ids and not {100, 150, 190} & ids  # a fresh read sees them


def _reset(c: MilvusClient, name: str) -> None:
    if c.has_collection(name):
        c.drop_collection(name)
    _make(c, name)


def test_search_iterator_v2_reads_its_start_snapshot(server: StandaloneServer) -> None:
    c = MilvusClient(uri=server.uri)
    _reset(c, "snap_v2")
    it = c.search_iterator("snap_v2", [[0.0] * DIM], batch_size=BATCH, anns_field="v",
                           search_params={"metric_type": "L2"}, output_fields=["id"])
    got = _drain(it, c, "snap_v2", lambda h: int(h["id"]))
    assert got == list(range(ROWS))
    _check_writes_landed(c, "snap_v2")


def test_search_iterator_v1_reads_its_start_snapshot(server: StandaloneServer) -> None:
    c = MilvusClient(uri=server.uri)
    _reset(c, "snap_v1")
    connections.connect("snap", uri=server.uri)
    try:
        coll = Collection("snap_v1", using="snap")
        it = coll.search_iterator([[0.0] * DIM], "v", {"metric_type": "L2", "params": {}}, batch_size=BATCH)
        got = _drain(it, c, "snap_v1", lambda h: int(h.id))
    finally:
        connections.disconnect("snap")
    assert got == list(range(ROWS))
    _check_writes_landed(c, "snap_v1")


def test_query_iterator_reads_its_start_snapshot(server: StandaloneServer) -> None:
    c = MilvusClient(uri=server.uri)
    _reset(c, "snap_q")
    it = c.query_iterator("snap_q", batch_size=BATCH, filter="id >= 0", output_fields=["id"])
    got = _drain(it, c, "snap_q", lambda r: int(r["id"]))
    assert got == list(range(ROWS))
    _check_writes_landed(c, "snap_q")
