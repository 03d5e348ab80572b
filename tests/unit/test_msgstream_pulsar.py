"""PulsarStream logic that needs no broker: redelivery filtering, id order, limits, topic deletion."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pulsar
import pytest

from common.msgstream.pulsar import MAX_PAYLOAD, MessageTooLarge, PulsarReader, PulsarStream


class _FakeMessage:
    def __init__(self, entry: int) -> None:
        self._id = pulsar.MessageId(-1, 1, entry, -1)

    def message_id(self) -> pulsar.MessageId:
        return self._id

    def data(self) -> bytes:
        return f"e{self._id.entry_id()}".encode()


class _FakeReader:
    """Delivers the given entries in order, as a redelivering broker might."""

    def __init__(self, entries: list[int], available: bool = False) -> None:
        self._entries = list(entries)
        self.available = available
        self.closed = False

    def read_next(self, timeout_millis: int) -> _FakeMessage:
        if not self._entries:
            time.sleep(timeout_millis / 1000)
            raise pulsar.Timeout()
        return _FakeMessage(self._entries.pop(0))

    def has_message_available(self) -> bool:
        return self.available

    def close(self) -> None:
        self.closed = True


class _Opener:
    """Hands out prepared fake readers and records where each was opened."""

    def __init__(self, *readers: _FakeReader) -> None:
        self._readers = list(readers)
        self.opened: list[tuple[tuple[int, int], bool]] = []

    def __call__(self, start: pulsar.MessageId, inclusive: bool) -> _FakeReader:
        self.opened.append(((start.ledger_id(), start.entry_id()), inclusive))
        return self._readers.pop(0)


def _drain(reader: PulsarReader) -> list[bytes]:
    out = []
    while (message := reader.read(0.05)) is not None:
        out.append(message.payload)
    return out


def test_redelivered_messages_are_dropped() -> None:
    fake = _FakeReader([0, 1, 1, 2, 0, 1, 3, 2, 4])
    reader = PulsarReader("ch", _Opener(fake), None, inclusive=False)  # type: ignore[arg-type]
    assert _drain(reader) == [b"e0", b"e1", b"e2", b"e3", b"e4"]
    reader.close()
    assert fake.closed


@pytest.mark.parametrize(("inclusive", "expected"), [(False, [b"e6", b"e7"]), (True, [b"e5", b"e6", b"e7"])])
def test_start_position_is_a_floor(inclusive: bool, expected: list[bytes]) -> None:
    fake = _FakeReader([3, 4, 5, 5, 6, 5, 7])  # a broker that ignored the start position
    opener = _Opener(fake)
    reader = PulsarReader("ch", opener, pulsar.MessageId(-1, 1, 5, -1), inclusive)  # type: ignore[arg-type]
    assert _drain(reader) == expected
    assert opener.opened == [((1, 5), inclusive)]


def test_stalled_reader_is_reopened_after_the_last_message() -> None:
    stalled = _FakeReader([0, 1], available=True)  # the broker stops dispatching after entry 1
    fresh = _FakeReader([1, 2, 3])  # reopened exclusive of entry 1, with one redelivery
    opener = _Opener(stalled, fresh)
    reader = PulsarReader("ch", opener, None, False, stall_check=0.1)  # type: ignore[arg-type]
    assert [reader.read(1) for _ in range(2)] != [None, None]
    assert reader.read(0.02) is None  # idle, but not for long enough to suspect a stall
    assert len(opener.opened) == 1
    payloads = []
    for _ in range(20):
        message = reader.read(0.05)
        if message is not None:
            payloads.append(message.payload)
        if len(payloads) == 2:
            break
    assert payloads == [b"e2", b"e3"]
    assert opener.opened[1] == ((1, 1), False)
    assert stalled.closed


def test_idle_reader_at_the_end_is_not_reopened() -> None:
    idle = _FakeReader([0], available=False)
    opener = _Opener(idle)
    reader = PulsarReader("ch", opener, None, False, stall_check=0.05)  # type: ignore[arg-type]
    assert reader.read(1) is not None
    for _ in range(5):
        assert reader.read(0.05) is None
    assert len(opener.opened) == 1


def test_compare_orders_by_ledger_then_entry() -> None:
    stream = PulsarStream("pulsar://127.0.0.1:1")  # the client connects lazily: no broker needed
    try:
        ids = [pulsar.MessageId(-1, ledger, entry, -1).serialize() for ledger, entry in [(1, 9), (2, 0), (2, 1)]]
        assert stream.compare(ids[0], ids[1]) == -1
        assert stream.compare(ids[2], ids[1]) == 1
        assert stream.compare(ids[1], bytes(ids[1])) == 0
        with pytest.raises(MessageTooLarge):
            stream.produce("ch", b"x" * (MAX_PAYLOAD + 1))
        assert stream.topic("dml_0") == "persistent://public/default/dml_0"
    finally:
        stream.close()


class _AdminHandler(http.server.BaseHTTPRequestHandler):
    deleted: list[str] = []

    def do_DELETE(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self.deleted.append(self.path)
        self.send_response(404 if "missing" in self.path else 204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def admin_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AdminHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_delete_channel_uses_admin_api(admin_url: str) -> None:
    _AdminHandler.deleted.clear()
    stream = PulsarStream("pulsar://127.0.0.1:1", tenant="t", namespace="ns", topic_prefix="p-", admin_url=admin_url)
    try:
        stream.delete_channel("dml_1")
        stream.delete_channel("missing")  # 404: no error
    finally:
        stream.close()
    assert _AdminHandler.deleted == [
        "/admin/v2/persistent/t/ns/p-dml_1?force=true",
        "/admin/v2/persistent/t/ns/p-missing?force=true",
    ]
