"""Differences from Milvus found by Milvus's own L0 suite (docs/milvus-l0.md), each pinned by a test.

- a missing collection reads "collection not found[database=..][collection=..]" everywhere except
  DescribeCollection, which says "can't find collection[...]" (testcases: partition load/release
  after drop);
- an unparsable delete expression is reported as "failed to create delete plan: ...: invalid
  parameter" (testcases/test_delete.py::test_delete_invalid_expr);
- GetPersistentSegmentInfo and GetQuerySegmentInfo answer (truncate and compaction tests used to
  get "not supported").
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pymilvus import Collection, DataType, MilvusClient, MilvusException, connections

pytestmark = pytest.mark.e2e
DIM = 4
NB = 50



@pytest.fixture(scope="module")
def loaded(client: MilvusClient) -> Iterator[str]:
    name = "l0_regress"
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tag", DataType.VARCHAR, max_length=16)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2", index_name="vec_idx")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    client.insert(name, [{"id": i, "tag": f"t{i % 3}", "vec": [float(i)] * DIM} for i in range(NB)])
    client.flush(name)
    client.load_collection(name)
    yield name
    client.drop_collection(name)


def _error(call: object, *args: object, **kwargs: object) -> MilvusException:
    with pytest.raises(MilvusException) as err:
        call(*args, **kwargs)  # type: ignore[operator]
    return err.value


def test_missing_collection_messages(client: MilvusClient) -> None:
    err = _error(client.describe_collection, "no_such_coll")
    assert (err.code, err.message) == (100, "can't find collection[database=default][collection=no_such_coll]")
    for call, args in [
        (client.load_partitions, ("no_such_coll", ["p1"])),
        (client.release_partitions, ("no_such_coll", ["p1"])),
        (client.query, ("no_such_coll", "id > 0")),
        (client.list_persistent_segments, ("no_such_coll",)),
    ]:
        err = _error(call, *args)
        assert err.code == 100, (call, err)
        assert "collection not found[database=default][collection=no_such_coll]" in err.message, err.message


def test_bad_delete_expression_names_the_delete_plan(client: MilvusClient, loaded: str) -> None:
    err = _error(client.delete, loaded, filter="tag >= 0")
    assert err.code == 1100
    assert err.message.startswith("failed to create delete plan: cannot parse expression: tag >= 0, error: ")
    assert err.message.endswith(": invalid parameter")
    err = _error(client.delete, loaded, filter="id in [1,")
    assert err.message.startswith("failed to create delete plan: cannot parse expression: id in [1,")
    assert client.query(loaded, filter="", output_fields=["count(*)"])[0]["count(*)"] == NB


def test_query_window_and_negative_offset(client: MilvusClient, loaded: str) -> None:
    for kw in ({"limit": 16385}, {"limit": 1, "offset": 16384}, {"limit": 16384, "offset": 1}):
        err = _error(client.query, loaded, filter="", **kw)
        assert err.code == 1100
        assert "invalid max query result window, (offset+limit) should be in range [1, 16384]" in err.message
    err = _error(client.query, loaded, filter="", limit=10, offset=-1)
    assert err.code == 1100
    assert "invalid max query result window, offset [-1] is invalid, should be gte than 0" in err.message


def test_segment_info(client: MilvusClient, loaded: str) -> None:
    persistent = client.list_persistent_segments(loaded)
    assert persistent and sum(s.num_rows for s in persistent) == NB
    assert {s.collection_name for s in persistent} == {loaded}
    described = client.describe_collection(loaded)
    assert {s.collection_id for s in persistent} == {described["collection_id"]}
    loaded_segs = client.list_loaded_segments(loaded)
    assert {s.segment_id for s in loaded_segs} == {s.segment_id for s in persistent}
    assert sum(s.num_rows for s in loaded_segs) == NB
    for seg in loaded_segs:
        assert seg.node_ids and seg.mem_size > 0 and seg.index_name == "vec_idx"
    # a growing segment is not persistent yet; it becomes so after a flush
    client.insert(loaded, [{"id": NB + 1, "tag": "x", "vec": [0.5] * DIM}])
    assert sum(s.num_rows for s in client.list_persistent_segments(loaded)) == NB
    client.flush(loaded)
    assert sum(s.num_rows for s in client.list_persistent_segments(loaded)) == NB + 1
    client.delete(loaded, ids=[NB + 1])


def test_query_segment_info_needs_a_loaded_collection(client: MilvusClient, loaded: str) -> None:
    client.release_collection(loaded)
    try:
        err = _error(client.list_loaded_segments, loaded)
        assert err.code == 101 and loaded in err.message
    finally:
        client.load_collection(loaded)


def test_upsert_counts_and_auto_id_keys(client: MilvusClient, server: object) -> None:
    """testcases/test_insert.py: an upsert reports inserted and deleted rows; with auto_id it replaces
    the keys it was sent with new ones (Milvus checkUpsertPrimaryFieldData)."""
    name = "l0_upsert_auto"
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=True)
    schema.add_field("id", DataType.INT64, is_primary=True, auto_id=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    try:
        first = client.insert(name, [{"vec": [float(i)] * DIM} for i in range(3)])["ids"]
        res = client.upsert(name, [{"id": first[0], "vec": [9.0] * DIM}, {"id": 12345, "vec": [8.0] * DIM}])
        assert res["upsert_count"] == 2 and len(res["ids"]) == 2
        assert not {first[0], 12345} & set(res["ids"])
        rows = {r["id"]: r["vec"][0] for r in client.query(name, filter="id >= 0", output_fields=["vec"])}
        assert first[0] not in rows and 12345 not in rows  # the sent keys are gone ...
        assert sorted(rows.values()) == [1.0, 2.0, 8.0, 9.0]  # ... and the rows live under new keys
        assert {k for k, v in rows.items() if v >= 8.0} == set(res["ids"])
        connections.connect("l0_orm", uri=server.uri)  # type: ignore[attr-defined]
        try:
            mr = Collection(name, using="l0_orm").upsert([[res["ids"][0], 777], [[7.0] * DIM, [6.0] * DIM]])
            assert (mr.insert_count, mr.delete_count, mr.upsert_count) == (2, 2, 2)
        finally:
            connections.disconnect("l0_orm")
    finally:
        client.drop_collection(name)
