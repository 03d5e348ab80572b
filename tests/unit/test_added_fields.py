"""Fields added after rows were written, and the TTL/truncate cut-off, on every data path:
querynode segments (growing and sealed), the datanode's write buffer, and compaction."""

from __future__ import annotations

import base64
import itertools
from dataclasses import replace
from typing import Any

import numpy as np

from common import binlog, msgs, tso
from common.collection_props import TRUNCATE_KEY, expire_ts, missing_column
from common.expr import compile_filter
from common.msgstream.memory import MemoryStream
from common.schema import DataType, Field, Schema
from common.storage.memory import MemoryStorage
from services.datanode.buffer import SegmentBuffer
from services.datanode.channel import ChannelWriter
from services.datanode.compactor import compact_segments
from services.querynode.channel import ChannelServer
from services.querynode.columns import ColumnStore
from services.querynode.segment import Segment
from tests.unit.test_compaction_compactor import make_schema, read_back, write_segment

BASE = Schema("c", "", (Field(100, "pk", DataType.Int64, is_primary=True),
                        Field(101, "v", DataType.FloatVector, dim=2)))
SCORE = Field(102, "score", DataType.Int64, nullable=True, default_value=7)
NOTE = Field(103, "note", DataType.VarChar, max_length=9, nullable=True)


def grown() -> Schema:
    return BASE.with_field(SCORE).with_field(NOTE)


def rows(pks: list[int]) -> dict[str, np.ndarray]:
    return {"pk": np.array(pks, dtype=np.int64), "v": np.ones((len(pks), 2), dtype=np.float32)}


def test_missing_column_is_default_or_null() -> None:
    values, valid = missing_column(SCORE, 3)
    assert values.tolist() == [7, 7, 7] and valid is not None and valid.all()
    values, valid = missing_column(NOTE, 2)
    assert values.tolist() == ["", ""] and valid is not None and not valid.any()
    values, valid = missing_column(Field(9, "$meta", DataType.JSON, is_dynamic=True), 2)
    assert values.tolist() == [{}, {}] and valid is None


def test_growing_segment_adopts_an_added_field_mid_way() -> None:
    seg = Segment(1, 2, "ch", BASE, False, ColumnStore())
    seg.append(rows([1, 2]), ts=10, n=2)
    seg.adopt_schema(grown())
    cols = rows([3])
    cols |= {"score": np.array([42]), "score.valid": np.array([True]), "note": np.array(["hi"], dtype=object),
             "note.valid": np.array([True])}
    seg.append(cols, ts=20, n=1)
    seg.append(rows([4]), ts=30, n=1)  # a message from before the schema change: no new columns
    out = seg.retrieve(None, 100, ["score", "note", "note.valid"], None)
    assert out["pk"].tolist() == [1, 2, 3, 4]
    assert out["score"].tolist() == [7, 7, 42, 7]
    assert out["note.valid"].tolist() == [False, False, True, False] and out["note"][2] == "hi"
    flt = compile_filter("score == 7 and note is null", grown())
    assert seg.count(flt, 100) == 3


def test_sealed_segment_fills_fields_its_binlogs_lack() -> None:
    store = ColumnStore.of({"pk": np.array([5, 6]), "v": np.zeros((2, 2), np.float32), "__ts": np.array([1, 2]),
                            "__del": np.zeros(2, np.int64)}, 2)
    seg = Segment(3, 2, "ch", grown(), True, store)
    assert seg.retrieve(compile_filter("score > 6", grown()), 10, ["score", "note"], None)["score"].tolist() == [7, 7]


def test_ttl_and_truncate_hide_old_rows() -> None:
    now = tso.compose(1_000_000)
    old, fresh = tso.compose(1_000_000 - 5000), tso.compose(1_000_000 - 1000)
    seg = Segment(1, 2, "ch", BASE.with_properties({"collection.ttl.seconds": "3"}), False, ColumnStore())
    seg.append(rows([1, 2]), ts=old, n=2)
    seg.append(rows([3]), ts=fresh, n=1)
    assert seg.count(None, now) == 1
    assert seg.retrieve(None, now, [], None)["pk"].tolist() == [3]
    seg.adopt_schema(BASE.with_properties({"collection.ttl.seconds": "0"}))
    assert seg.count(None, now) == 3  # TTL removed: nothing physically went
    seg.adopt_schema(BASE.with_properties({TRUNCATE_KEY: str(fresh)}))
    assert seg.count(None, now) == 0
    assert expire_ts({TRUNCATE_KEY: str(fresh)}, 0) == fresh + 1
    assert expire_ts({"collection.ttl.seconds": "-1"}, now) == 0


def test_write_buffer_aligns_chunks_written_before_a_field() -> None:
    buf = SegmentBuffer(1, 2, None)
    chunks: list[tuple[list[int], dict[int, np.ndarray]]] = [([1, 2], {}), ([3], {102: np.array([9])})]
    for pks, extra in chunks:
        cols: dict[int, np.ndarray] = {100: np.array(pks, dtype=np.int64), 101: np.ones((len(pks), 2), np.float32)}
        cols.update(extra)
        valid: dict[int, np.ndarray] = {102: np.array([True])} if extra else {}
        buf.append(msgs.InsertMsg("ch", 1, 2, 1, 10, np.arange(len(pks)), cols, valid))
    _, _, merged, merged_valid = buf.columns(grown())
    assert merged[102].tolist() == [7, 7, 9] and merged_valid[102].all()
    assert 103 not in merged  # a field no row carries gets no binlog: readers fill it


def test_compaction_fills_added_fields_and_drops_expired_rows() -> None:
    storage, schema = MemoryStorage(), make_schema()
    a = write_segment(storage, schema, 1, [1, 2, 3], [10, 10, 50])
    extra = Field(104, "level", DataType.Int32, nullable=True, default_value=5)
    wider = schema.with_field(extra)
    b = write_segment(storage, schema, 2, [4, 5], [60, 60])
    key = binlog.insert_log_key(1, 2, 2, 104, 1)
    storage.put(key, binlog.encode_column(extra, np.array([8, 9], dtype=np.int32), np.array([True, True])))
    b["binlogs"][104] = [key]  # type: ignore[index]
    out = compact_segments(storage, wider, 1, 2, [a, b], 99, itertools.count(200).__next__, expire_ts=20)
    cols = read_back(storage, wider, out.binlogs)
    assert cols["pk"].tolist() == [3, 4, 5]  # 1 and 2 were older than the cut-off
    assert cols["level"].tolist() == [5, 8, 9] and cols["level.valid"].all()
    narrow = replace(wider, fields=wider.fields[:-1])
    again = compact_segments(storage, narrow, 1, 2, [a], 98, itertools.count(300).__next__)
    assert again.num_rows == 3 and 104 not in again.binlogs


class FakeCoord:
    """The coordinator as a datanode sees it: ids, the current schema, and what it records."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.saved: list[dict[str, Any]] = []
        self.described = 0

    def call(self, method: str, **kwargs: Any) -> Any:
        if method == "alloc_ids":
            return 1000
        if method == "describe_collection":
            self.described += 1
            return {"schema": base64.b64encode(self.schema.to_bytes()).decode()}
        if method == "save_binlogs":
            self.saved.append(kwargs)
            return None
        if method == "delete_floor":
            return 0
        if method == "flushed_segment_ids":
            return []
        raise AssertionError(method)


def test_datanode_that_missed_the_push_asks_for_the_schema_and_keeps_the_column() -> None:
    storage = MemoryStorage()
    coord = FakeCoord(grown())
    writer = ChannelWriter(1, "ch", BASE, MemoryStream(), storage, coord, 60.0)  # type: ignore[arg-type]
    note = np.array(["a", ""], dtype=object)
    cols: dict[int, np.ndarray] = {100: np.array([1, 2]), 101: np.ones((2, 2), np.float32), 103: note}
    writer._apply(msgs.InsertMsg("ch", 1, 2, 9, 10, np.arange(2), cols, {103: np.array([True, False])}), b"1")
    assert coord.described == 1 and writer.schema.version == 2
    writer.adopt_schema(BASE)  # an older schema never replaces a newer one
    assert writer.schema.version == 2
    writer.tt = 100
    writer._sync([9])
    [rec] = coord.saved[0]["segments"]
    values, valid = binlog.decode_column(NOTE, storage.get(rec["binlogs"][103][0]))
    assert values[0] == "a" and valid is not None and valid.tolist() == [True, False]
    assert 102 not in rec["binlogs"]  # no row carried it: readers fill the default


def _insert_msg(vchannel: str, seg: int, ts: int, pks: list[int]) -> bytes:
    cols: dict[int, np.ndarray] = {100: np.array(pks, dtype=np.int64), 101: np.ones((len(pks), 2), np.float32)}
    return msgs.encode(msgs.InsertMsg(vchannel, 1, 2, seg, ts, np.arange(len(pks)), cols))


def test_channel_adopts_schema_and_truncate_drops_what_it_cut_off() -> None:
    stream, vchannel = MemoryStream(), "dml_0_1v0"
    ch = ChannelServer(1, vchannel, BASE, stream, None, [], [2])
    try:
        stream.produce("dml_0", _insert_msg(vchannel, 10, 100, [1, 2]))
        stream.produce("dml_0", msgs.encode(msgs.TimeTickMsg(150)))
        ch.wait_tsafe(150, 10)
        ch.update_schema(grown())
        [seg] = ch.growing_segments(None)
        assert seg.retrieve(None, 150, ["score"], None)["score"].tolist() == [7, 7]
        ch.update_schema(grown().with_properties({TRUNCATE_KEY: "150"}))
        assert ch.growing_segments(None) == []  # every row of it was cut off
        stream.produce("dml_0", _insert_msg(vchannel, 11, 140, [3]))  # in flight before the cut: skipped
        stream.produce("dml_0", _insert_msg(vchannel, 12, 200, [4]))
        stream.produce("dml_0", msgs.encode(msgs.TimeTickMsg(250)))
        ch.wait_tsafe(250, 10)
        [kept] = ch.growing_segments(None)
        assert kept.segment_id == 12 and kept.retrieve(None, 250, ["score"], None)["pk"].tolist() == [4]
    finally:
        ch.stop()
