"""The datanode's compactor: merging segments' binlogs without the rows their deletes removed."""

from __future__ import annotations

import itertools

import numpy as np
from pymilvus import CollectionSchema, DataType, FieldSchema
from pymilvus.client.prepare import Prepare

from common import binlog
from common.schema import Schema
from common.storage.memory import MemoryStorage
from services.datanode.compactor import SYSTEM_FIELDS, compact_segments, deleted_mask


def make_schema(pk: DataType = DataType.INT64) -> Schema:
    fields = [
        FieldSchema("pk", pk, is_primary=True, max_length=32),
        FieldSchema("age", DataType.INT32, nullable=True),
        FieldSchema("tags", DataType.JSON),
        FieldSchema("v", DataType.FLOAT_VECTOR, dim=4),
    ]
    proto = Prepare.get_schema_from_collection_schema("c", CollectionSchema(fields))
    for i, f in enumerate(proto.fields):
        f.fieldID = 100 + i  # as the coordinator assigns them
    return Schema.from_bytes(proto.SerializeToString())


def write_segment(
    storage: MemoryStorage,
    schema: Schema,
    sid: int,
    pks: list[object],
    ts: list[int],
    deletes: tuple[list[object], list[int]] | None = None,
) -> dict[str, object]:
    """Binlogs of one flushed segment as a datanode writes them; returns its coordinator record."""
    n = len(pks)
    pk_field = schema.primary
    rng = np.random.default_rng(sid)
    columns = {
        SYSTEM_FIELDS[0].field_id: (SYSTEM_FIELDS[0], np.arange(n, dtype=np.int64) + sid * 1000, None),
        SYSTEM_FIELDS[1].field_id: (SYSTEM_FIELDS[1], np.array(ts, dtype=np.int64), None),
        pk_field.field_id: (
            pk_field,
            np.array(pks, dtype=object) if isinstance(pks[0], str) else np.array(pks, dtype=np.int64),
            None,
        ),
    }
    for f in schema.fields:
        if f.name == "age":
            columns[f.field_id] = (f, np.arange(n, dtype=np.int32), np.arange(n) % 3 != 0)
        elif f.name == "tags":
            col = np.empty(n, dtype=object)
            col[:] = [{"k": i} for i in range(n)]
            columns[f.field_id] = (f, col, None)
        elif f.name == "v":
            columns[f.field_id] = (f, rng.random((n, 4), dtype=np.float32), None)
    binlogs = {}
    for fid, (f, col, valid) in columns.items():
        key = binlog.insert_log_key(1, 2, sid, fid, 1)
        storage.put(key, binlog.encode_column(f, col, valid))
        binlogs[fid] = [key]
    deltalogs = []
    if deletes is not None:
        key = binlog.delta_log_key(1, 2, sid, 9)
        dpks = np.array(deletes[0], dtype=object if isinstance(deletes[0][0], str) else np.int64)
        storage.put(key, binlog.encode_delta_log(dpks, np.array(deletes[1], dtype=np.int64)))
        deltalogs.append(key)
    return {"id": sid, "binlogs": binlogs, "deltalogs": deltalogs, "num_rows": n, "state": "Flushed"}


def read_back(storage: MemoryStorage, schema: Schema, rec: dict[int, list[str]]) -> dict[str, np.ndarray]:
    out = {}
    for f in (*SYSTEM_FIELDS, *schema.fields):
        col, valid = binlog.decode_column(f, storage.get(rec[f.field_id][0]))
        out[f.name] = col
        if valid is not None:
            out[f.name + ".valid"] = valid
    return out


def test_deleted_mask_needs_a_newer_delete_of_the_same_key() -> None:
    pks = np.array([1, 2, 3, 4, 2])
    row_ts = np.array([10, 10, 10, 10, 30])  # pk 2 inserted again at 30 (an upsert)
    mask = deleted_mask(pks, row_ts, np.array([2, 3, 3, 9]), np.array([30, 5, 20, 50]))
    # pk 2: the delete at 30 removes the row of 10, not the row written at 30 with it;
    # pk 3: one of its deletes (20) is newer than the row; pk 9 is in no row
    assert mask.tolist() == [False, True, True, False, False]
    assert deleted_mask(pks, row_ts, np.empty(0, np.int64), np.empty(0, np.int64)).tolist() == [False] * 5


def test_merge_drops_deleted_rows_and_keeps_everything_else() -> None:
    storage, schema = MemoryStorage(), make_schema()
    a = write_segment(storage, schema, 1, [1, 2, 3, 4], [10, 10, 10, 10], deletes=([2, 4], [20, 5]))
    b = write_segment(storage, schema, 2, [5, 6, 2], [30, 30, 30], deletes=([6], [40]))
    ids = itertools.count(100)
    out = compact_segments(storage, schema, 1, 2, [a, b], 99, lambda: next(ids))
    assert out.input_rows == 7 and out.num_rows == 5
    assert out.deltalogs_read == {1: a["deltalogs"], 2: b["deltalogs"]}
    cols = read_back(storage, schema, out.binlogs)
    # 2@10 deleted at 20; 4@10 survives a delete at 5; 6 deleted; 2@30 (re-inserted) stays
    assert cols["pk"].tolist() == [1, 3, 4, 5, 2]
    assert cols["Timestamp"].tolist() == [10, 10, 10, 30, 30]  # rows keep their timestamps
    src_a, src_b = read_back(storage, schema, a["binlogs"]), read_back(storage, schema, b["binlogs"])  # type: ignore[arg-type]
    take_a, take_b = [0, 2, 3], [0, 2]
    np.testing.assert_array_equal(cols["v"], np.concatenate([src_a["v"][take_a], src_b["v"][take_b]]))
    valid = np.concatenate([src_a["age.valid"][take_a], src_b["age.valid"][take_b]])
    assert cols["age.valid"].tolist() == valid.tolist()
    assert [t["k"] for t in cols["tags"]] == [0, 2, 3, 0, 2]
    assert cols["RowID"].tolist() == [1000, 1002, 1003, 2000, 2002]
    stats = binlog.PkStats.from_bytes(storage.get(out.statslogs[0]))
    assert stats.count == 5 and stats.may_contain(np.array([1, 2, 3, 4, 5])).all()
    assert all(k.startswith("insert_log/1/2/99/") for k in out.written if k.startswith("insert_log"))
    assert out.statslogs[0].startswith("stats_log/1/2/99/")


def test_merge_of_string_keys() -> None:
    storage, schema = MemoryStorage(), make_schema(DataType.VARCHAR)
    a = write_segment(storage, schema, 1, ["a", "b", "c"], [10, 10, 10], deletes=(["b", "zz"], [11, 11]))
    out = compact_segments(storage, schema, 1, 2, [a], 7, itertools.count(50).__next__)
    assert read_back(storage, schema, out.binlogs)["pk"].tolist() == ["a", "c"]


def test_everything_deleted_writes_nothing() -> None:
    storage, schema = MemoryStorage(), make_schema()
    a = write_segment(storage, schema, 1, [1, 2], [10, 10], deletes=([1, 2], [11, 11]))
    before = set(storage.list(""))
    out = compact_segments(storage, schema, 1, 2, [a], 7, itertools.count(50).__next__)
    assert out.num_rows == 0 and out.written == [] and out.stats is None
    assert set(storage.list("")) == before
