"""The querynode channel's deletes against inserts consumed after them (services/querynode/channel.py).

With several proxies a delete can reach the channel before an insert with an older timestamp; the
insert's rows must still come out deleted. Only deletes newer than tsafe can do that (every
message after timetick T is newer than T), so inserts check just those: the list an insert scans
is emptied by the next timetick, while the full buffer (for workers that catch up) keeps them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
from pymilvus import DataType

from common import msgs
from common.channels import pchannel_of
from common.msgstream.memory import MemoryStream
from common.schema import Field, Schema
from services.querynode.channel import ChannelServer
from services.querynode.segment import DELETED

VCH = "dml_0_7v0"


@pytest.fixture
def chan() -> Iterator[tuple[ChannelServer, MemoryStream]]:
    schema = Schema("c", "", (Field(field_id=100, name="id", dtype=DataType.INT64, is_primary=True),
                              Field(field_id=101, name="v", dtype=DataType.FLOAT_VECTOR, dim=2)))
    stream = MemoryStream()
    ch = ChannelServer(7, VCH, schema, stream, None, [], [1])
    yield ch, stream
    ch.stop()


def produce(stream: MemoryStream, msg: msgs.Message) -> None:
    stream.produce(pchannel_of(VCH), msgs.encode(msg))


def insert(stream: MemoryStream, pks: list[int], ts: int, segment: int = 50) -> None:
    ids = np.array(pks, dtype=np.int64)
    produce(stream, msgs.InsertMsg(VCH, 7, 1, segment, ts, ids, {100: ids, 101: np.zeros((len(pks), 2), np.float32)}))


def tick(ch: ChannelServer, stream: MemoryStream, ts: int) -> None:
    produce(stream, msgs.TimeTickMsg(ts))
    ch.wait_tsafe(ts, timeout=5)


def visible(ch: ChannelServer, ts: int) -> int:
    return sum(seg.count(None, ts) for seg in ch.growing_segments(None))


def test_a_delete_consumed_before_an_older_insert_still_deletes_its_rows(
    chan: tuple[ChannelServer, MemoryStream],
) -> None:
    ch, stream = chan
    insert(stream, [1, 2], ts=10)
    tick(ch, stream, 20)
    produce(stream, msgs.DeleteMsg(VCH, 7, -1, 50, np.array([3, 4])))  # from one proxy ...
    insert(stream, [3, 4, 5], ts=40)  # ... an older insert from another, consumed after it
    tick(ch, stream, 60)
    assert visible(ch, 60) == 3  # 1, 2, 5
    assert visible(ch, 45) == 5  # before the delete's timestamp every row was there


def test_a_timetick_ends_the_scan_of_older_deletes_but_the_buffer_keeps_them(
    chan: tuple[ChannelServer, MemoryStream],
) -> None:
    ch, stream = chan
    tick(ch, stream, 10)
    for i in range(100):
        produce(stream, msgs.DeleteMsg(VCH, 7, -1, 20 + i, np.array([i])))
    insert(stream, [1000], ts=15)  # older than all of them: each is checked against it
    tick(ch, stream, 200)
    deadline = time.monotonic() + 5
    while ch._recent and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ch._recent == []
    assert len(ch.deletes) == 100
    insert(stream, [5, 6], ts=210)  # newer than every delete: a delete of pk 5 at 25 is not its
    tick(ch, stream, 220)
    assert visible(ch, 220) == 3


def test_deletes_on_a_growing_segment_mark_exactly_their_rows(chan: tuple[ChannelServer, MemoryStream]) -> None:
    """Deletes mark rows by offset in the growing store (which has spare capacity past its rows):
    only the rows of the deleted keys change, the earliest delete of a row wins, rows appended later
    start undeleted."""
    ch, stream = chan
    insert(stream, list(range(0, 1500)), ts=10)  # past the store's first capacity of 1024 rows
    produce(stream, msgs.DeleteMsg(VCH, 7, -1, 30, np.array([3, 1499, 7000])))
    produce(stream, msgs.DeleteMsg(VCH, 7, -1, 20, np.array([3, 8])))
    insert(stream, [3, 2000], ts=40)  # 3 again, newer than both deletes
    tick(ch, stream, 50)
    (seg,) = ch.growing_segments(None)
    marks = seg.store.column(DELETED)
    assert len(marks) == 1502
    assert {int(i): int(marks[i]) for i in np.flatnonzero(marks)} == {3: 20, 8: 20, 1499: 30}
    assert visible(ch, 50) == 1502 - 3
