"""Contract checks for :class:`common.msgstream.MsgStream` backends (memory, local log, Pulsar).

Each ``check_*`` takes a stream and uses fresh channel names, so the checks can share one
broker. ``CHECKS`` needs only a stream; the durability check takes a factory.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from common.msgstream.base import MsgStream, Reader, StreamMessage
from tests.contracts._util import unique


def read_n(reader: Reader, count: int, timeout: float = 20.0) -> list[StreamMessage]:
    """Exactly ``count`` messages (fewer only if ``timeout`` passes first)."""
    out: list[StreamMessage] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        message = reader.read(min(1.0, max(0.01, deadline - time.monotonic())))
        if message is not None:
            out.append(message)
    return out


def _assert_increasing(stream: MsgStream, messages: list[StreamMessage]) -> None:
    for before, after in zip(messages, messages[1:], strict=False):
        assert stream.compare(before.message_id, after.message_id) == -1
        assert stream.compare(after.message_id, before.message_id) == 1


def check_produce_and_read_in_order(stream: MsgStream) -> None:
    channel = unique("ms-order")
    ids = [stream.produce(channel, f"m{i}".encode()) for i in range(50)]
    for a, b in zip(ids, ids[1:], strict=False):
        assert stream.compare(a, b) == -1
    assert stream.compare(ids[3], ids[3]) == 0
    reader = stream.reader(channel)
    try:
        got = read_n(reader, 50)
        assert [m.payload for m in got] == [f"m{i}".encode() for i in range(50)]
        assert [stream.compare(m.message_id, i) for m, i in zip(got, ids, strict=True)] == [0] * 50
        assert all(m.channel == channel for m in got)
        assert reader.read(0.2) is None
    finally:
        reader.close()


def check_reader_from_position(stream: MsgStream) -> None:
    channel = unique("ms-pos")
    ids = [stream.produce(channel, bytes([i])) for i in range(10)]
    after = stream.reader(channel, start=ids[4])
    at = stream.reader(channel, start=ids[4], inclusive=True)
    try:
        assert [m.payload for m in read_n(after, 5)] == [bytes([i]) for i in range(5, 10)]
        assert [m.payload for m in read_n(at, 6)] == [bytes([i]) for i in range(4, 10)]
        assert after.read(0.2) is None
    finally:
        after.close()
        at.close()
    last = stream.reader(channel, start=ids[-1])
    try:
        assert last.read(0.2) is None, "exclusive start at the last message: nothing yet"
        new_id = stream.produce(channel, b"next")
        message = last.read(10)
        assert message is not None and message.payload == b"next"
        assert stream.compare(message.message_id, new_id) == 0
    finally:
        last.close()


def check_reader_blocks_until_data(stream: MsgStream) -> None:
    channel = unique("ms-block")
    stream.produce(channel, b"first")
    reader = stream.reader(channel)
    try:
        first = reader.read(10)
        assert first is not None and first.payload == b"first"
        started = time.monotonic()
        assert reader.read(0.3) is None
        assert time.monotonic() - started >= 0.25, "read must wait for its timeout"
        timer = threading.Timer(0.3, stream.produce, args=(channel, b"late"))
        started = time.monotonic()
        timer.start()
        message = reader.read(15)
        waited = time.monotonic() - started
        timer.join()
        assert message is not None and message.payload == b"late"
        assert 0.2 <= waited < 5, f"reader woke after {waited:.2f}s"
    finally:
        reader.close()


def check_channels_are_independent(stream: MsgStream) -> None:
    a, b = unique("ms-a"), unique("ms-b")
    stream.produce(a, b"a1")
    stream.produce(b, b"b1")
    stream.produce(a, b"a2")
    ra, rb = stream.reader(a), stream.reader(b)
    try:
        assert [m.payload for m in read_n(ra, 2)] == [b"a1", b"a2"]
        assert [m.payload for m in read_n(rb, 1)] == [b"b1"]
        assert rb.read(0.2) is None
    finally:
        ra.close()
        rb.close()


def check_large_payloads(stream: MsgStream) -> None:
    channel = unique("ms-large")
    big = os.urandom(4 * 1024 * 1024)
    stream.produce(channel, big)
    stream.produce(channel, b"")
    stream.produce(channel, big[::-1])
    reader = stream.reader(channel)
    try:
        got = read_n(reader, 3, timeout=60)
        assert [len(m.payload) for m in got] == [len(big), 0, len(big)]
        assert [m.payload for m in got] == [big, b"", big[::-1]]
    finally:
        reader.close()


def check_concurrent_producers(stream: MsgStream) -> None:
    channel = unique("ms-conc")
    producers, per = 4, 100

    def produce(p: int) -> None:
        for i in range(per):
            stream.produce(channel, f"{p}:{i}".encode())

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    reader = stream.reader(channel)
    try:
        for t in threads:
            t.start()
        got = read_n(reader, producers * per, timeout=60)
        for t in threads:
            t.join()
        assert len(got) == producers * per
        _assert_increasing(stream, got)
        for p in range(producers):
            mine = [m.payload for m in got if m.payload.startswith(f"{p}:".encode())]
            assert mine == [f"{p}:{i}".encode() for i in range(per)], "per-producer order kept"
    finally:
        reader.close()


def check_delete_channel(stream: MsgStream) -> None:
    channel = unique("ms-del")
    stream.produce(channel, b"old")
    stream.delete_channel(channel)
    stream.delete_channel(channel)  # absent: no error
    stream.delete_channel(unique("ms-never"))
    stream.produce(channel, b"new")
    reader = stream.reader(channel)
    try:
        got = read_n(reader, 1)
        assert [m.payload for m in got] == [b"new"]
        assert reader.read(0.3) is None, "messages of the deleted channel are gone"
    finally:
        reader.close()


def check_throughput(stream: MsgStream, count: int = 3000, size: int = 1024) -> float:
    """Produce and read ``count`` messages of ``size`` bytes; returns messages per second."""
    channel = unique("ms-rate")
    payload = os.urandom(size)
    reader = stream.reader(channel)
    try:
        started = time.monotonic()
        for _ in range(count):
            stream.produce(channel, payload)
        got = read_n(reader, count, timeout=120)
        elapsed = time.monotonic() - started
    finally:
        reader.close()
    assert len(got) == count
    _assert_increasing(stream, got)
    return count / elapsed


CHECKS: list[Callable[[MsgStream], None]] = [
    check_produce_and_read_in_order,
    check_reader_from_position,
    check_reader_blocks_until_data,
    check_channels_are_independent,
    check_large_payloads,
    check_concurrent_producers,
    check_delete_channel,
]


def check_durable_across_reopen(open_stream: Callable[[], MsgStream]) -> None:
    """Messages survive close and reopen, keep their ids, and new ones follow them."""
    channel = unique("ms-durable")
    stream = open_stream()
    try:
        ids = [stream.produce(channel, f"d{i}".encode()) for i in range(20)]
    finally:
        stream.close()
    stream = open_stream()
    try:
        reader = stream.reader(channel, start=ids[9])
        try:
            got = read_n(reader, 10)
            assert [m.payload for m in got] == [f"d{i}".encode() for i in range(10, 20)]
            assert stream.compare(got[-1].message_id, ids[-1]) == 0
            new_id = stream.produce(channel, b"after")
            assert stream.compare(new_id, ids[-1]) == 1
            message = reader.read(10)
            assert message is not None and message.payload == b"after"
        finally:
            reader.close()
        stream.delete_channel(channel)
    finally:
        stream.close()
