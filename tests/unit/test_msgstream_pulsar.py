"""PulsarStream logic that needs no broker: redelivery filtering, id order, limits, topic deletion."""

from __future__ import annotations

import http.server
import threading
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

    def __init__(self, entries: list[int]) -> None:
        self._entries = list(entries)
        self.closed = False

    def read_next(self, timeout_millis: int) -> _FakeMessage:
        if not self._entries:
            raise pulsar.Timeout()
        return _FakeMessage(self._entries.pop(0))

    def close(self) -> None:
        self.closed = True


def _drain(reader: PulsarReader) -> list[bytes]:
    out = []
    while (message := reader.read(0.05)) is not None:
        out.append(message.payload)
    return out


def test_redelivered_messages_are_dropped() -> None:
    fake = _FakeReader([0, 1, 1, 2, 0, 1, 3, 2, 4])
    reader = PulsarReader("ch", fake, None, inclusive=False)  # type: ignore[arg-type]
    assert _drain(reader) == [b"e0", b"e1", b"e2", b"e3", b"e4"]
    reader.close()
    assert fake.closed


@pytest.mark.parametrize(("inclusive", "expected"), [(False, [b"e6", b"e7"]), (True, [b"e5", b"e6", b"e7"])])
def test_start_position_is_a_floor(inclusive: bool, expected: list[bytes]) -> None:
    fake = _FakeReader([3, 4, 5, 5, 6, 5, 7])  # a broker that ignored the start position
    floor = (1, 5, -1, -1)
    reader = PulsarReader("ch", fake, floor, inclusive)  # type: ignore[arg-type]
    assert _drain(reader) == expected


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
