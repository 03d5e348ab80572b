"""The sealed store (services/querynode/worker.py) when a segment is reloaded at a new index version:
the new copy takes over every delete the old copy got (the leader forwards deletes to the node, once,
so a copy loaded from the delta logs alone would bring deleted rows back), also under concurrent
deletes, and a copy with different rows is refused rather than swapped in."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from pymilvus import CollectionSchema, DataType, FieldSchema
from pymilvus.client.prepare import Prepare

from common.errors import Code, MilvusError
from common.schema import Schema
from services.querynode.columns import ColumnStore
from services.querynode.segment import DELETED, TS, Segment
from services.querynode.worker import SealedStore

VCH = "dml_0_7v0"


def _schema() -> Schema:
    fields = [FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=2)]
    return Schema.from_bytes(
        Prepare.get_schema_from_collection_schema("c", CollectionSchema(fields)).SerializeToString()
    )


def _copy(n: int, version: str, first_pk: int = 0) -> Segment:
    cols: dict[str, np.ndarray] = {
        "id": np.arange(first_pk, first_pk + n, dtype=np.int64),
        "v": np.ones((n, 2), dtype=np.float32),
        TS: np.full(n, 10, dtype=np.int64),
        DELETED: np.zeros(n, dtype=np.int64),
    }
    return Segment(1, 1, VCH, _schema(), True, ColumnStore.of(cols, n), version=version, max_ts=10)


def test_a_new_version_keeps_the_deletes_of_the_copy_it_replaces() -> None:
    store = SealedStore()
    store.add(_copy(100, "v1"))
    store.apply_deletes(VCH, [(np.array([3, 4, 5]), 20), (np.array([7]), 30)])
    new = _copy(100, "v2")
    new.apply_delete(np.array([5]), 15)  # from a delta log: an earlier delete of the same row wins
    store.add(new)
    assert store.get(1) is new
    assert new.count(None, 100) == 96
    assert new.count(None, 25) == 97  # row 7 (deleted at 30) still there; 3, 4 (at 20) and 5 (at 15) gone
    assert new.count(None, 17) == 99  # only row 5 gone: the delta log's earlier delete won
    deleted = new.store.column(DELETED)
    assert deleted[3] == deleted[4] == 20 and deleted[5] == 15 and deleted[7] == 30


def test_no_delete_is_lost_while_copies_are_swapped() -> None:
    store = SealedStore()
    store.add(_copy(2000, "v0"))
    stop = threading.Event()
    sent: list[int] = []

    def deleter() -> None:
        pk = 0
        while not stop.is_set() and pk < 2000:
            store.apply_deletes(VCH, [(np.array([pk]), 20 + pk)])
            sent.append(pk)
            pk += 1

    t = threading.Thread(target=deleter)
    t.start()
    for version in range(1, 30):
        store.add(_copy(2000, f"v{version}"))
    stop.set()
    t.join()
    served = store.get(1)
    assert served is not None
    assert served.count(None, 1 << 40) == 2000 - len(sent)


def test_a_copy_with_other_rows_is_refused() -> None:
    store = SealedStore()
    old = _copy(10, "v1")
    store.add(old)
    with pytest.raises(MilvusError) as err:
        store.add(_copy(11, "v2"))
    assert err.value.code == Code.SEGMENT_LOAD_FAILED
    with pytest.raises(MilvusError):
        store.add(_copy(10, "v2", first_pk=5))
    assert store.get(1) is old


def test_a_fresh_copy_serves_no_read_until_its_leader_caught_it_up() -> None:
    store = SealedStore()
    store.add(_copy(10, "v1"), ready=False)
    assert not store.is_ready(1)
    with pytest.raises(MilvusError) as err:
        store.pick(VCH, [1], None)
    assert err.value.code == Code.SEGMENT_NOT_FOUND
    assert "waiting for the deletes" in err.value.message
    store.apply_deletes(VCH, [(np.array([2]), 20)])  # a forwarded delete reaches it, but is not the catch-up
    assert not store.is_ready(1)
    store.apply_deletes(VCH, [(np.array([3]), 15), (np.array([2]), 20)], ready=[1])
    assert store.is_ready(1)
    (seg,) = store.pick(VCH, [1], None)
    assert seg.count(None, 100) == 8
    store.add(_copy(10, "v2"), ready=False)  # a new version of a served copy keeps its readiness and deletes
    assert store.is_ready(1)
    store.remove([1])
    store.add(_copy(10, "v3"), ready=False)  # released and loaded again: fresh
    assert not store.is_ready(1)


def test_a_sealed_copy_applies_every_delete_of_its_keys_and_no_other() -> None:
    seg = _copy(1000, "v1", first_pk=5000)
    rng = np.random.default_rng(3)
    present = rng.choice(np.arange(5000, 6000), 300, replace=False)
    absent = np.concatenate([np.arange(0, 5000, 7), np.arange(6001, 9000, 3)])
    assert seg.apply_delete(np.concatenate([present, absent]), 20) == 300
    assert seg.count(None, 25) == 700
    assert seg.apply_delete(np.array([1, 9000]), 30) == 0  # all outside the key range
    assert sorted(np.flatnonzero(seg.store.column(DELETED)).tolist()) == sorted((present - 5000).tolist())


def test_deletes_on_a_sealed_copy_find_every_row_of_a_key() -> None:
    """Sealed copies find rows by binary search over their sorted keys: duplicates (Milvus allows a
    key twice without upsert), repeated keys in one delete, rows newer than the delete, string keys."""
    n = 6
    cols: dict[str, np.ndarray] = {
        "id": np.array([9, 4, 9, 7, 4, 1], dtype=np.int64),
        "v": np.ones((n, 2), dtype=np.float32),
        TS: np.array([10, 10, 10, 10, 50, 10], dtype=np.int64),
        DELETED: np.zeros(n, dtype=np.int64),
    }
    seg = Segment(1, 1, VCH, _schema(), True, ColumnStore.of(cols, n), version="v", max_ts=50)
    assert seg.apply_delete(np.array([9, 9, 4, 100]), 20) == 3  # both 9s and the old 4; the 4 of ts 50 stays
    assert seg.store.column(DELETED).tolist() == [20, 20, 20, 0, 0, 0]
    assert seg.apply_delete(np.array([9, 7]), 15) == 3  # an earlier delete of the same rows wins
    assert seg.store.column(DELETED).tolist() == [15, 20, 15, 15, 0, 0]
    assert seg.apply_delete(np.array(["9"]), 30) == 0  # a string key never matches an int PK
    strings = Segment(
        2, 1, VCH, _schema(), True,
        ColumnStore.of({"id": np.array(["b", "a", "b"], dtype=object), TS: np.full(3, 10, dtype=np.int64),
                        DELETED: np.zeros(3, dtype=np.int64)}, 3),
        version="v", max_ts=10,
    )
    assert strings.apply_delete(np.array(["b", "zz"], dtype=object), 20) == 2
    assert strings.store.column(DELETED).tolist() == [20, 0, 20]
