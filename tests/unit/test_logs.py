"""JSON log lines and the request id: formatter fields, client metadata, propagation over internal RPC."""

from __future__ import annotations

import json
import logging
import sys

from common.logs import (
    REQUEST_ID,
    JsonFormatter,
    current_request_id,
    request_id_from_metadata,
    request_scope,
    setup_logging,
)
from common.rpc import client as rpc_client
from common.rpc.server import REQUEST_ID_KEY, rpc


def _record(msg: str = "hello %s", args: tuple[object, ...] = ("world",), **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("quiver.test", logging.WARNING, __file__, 1, msg, args, None)
    for k, v in extra.items():
        setattr(rec, k, v)
    return rec


def test_json_formatter_fields_and_extras() -> None:
    fmt = JsonFormatter(role="proxy", node="3")
    with request_scope("rid-1"):
        line = fmt.format(_record(segment_id=42, collection="c1"))
    entry = json.loads(line)
    assert entry["msg"] == "hello world"
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "quiver.test"
    assert (entry["role"], entry["node"], entry["request_id"]) == ("proxy", "3", "rid-1")
    assert entry["segment_id"] == 42 and entry["collection"] == "c1"
    assert entry["ts"].endswith("+00:00")
    assert "\n" not in line


def test_json_formatter_exception_and_unserializable_extra() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    rec.obj = object()
    entry = json.loads(JsonFormatter().format(rec))
    assert "ValueError: boom" in entry["exc"]
    assert entry["obj"].startswith("<object")
    assert entry["request_id"] == ""


def test_request_scope_generates_and_restores() -> None:
    assert current_request_id() == ""
    with request_scope(None) as rid:
        assert len(rid) == 16 and current_request_id() == rid
        with request_scope("inner"):
            assert current_request_id() == "inner"
        assert current_request_id() == rid
    assert current_request_id() == ""


def test_request_id_from_metadata() -> None:
    assert request_id_from_metadata([("x-request-id", "abc")]) == "abc"
    assert request_id_from_metadata([("authorization", "t"), ("client-request-id", b"def")]) == "def"
    assert request_id_from_metadata([("other", "x")]) == ""
    assert request_id_from_metadata(None) == ""
    assert len(request_id_from_metadata([("x-request-id", "z" * 10000)])) == 128


def test_setup_logging_json() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        setup_logging("DEBUG", "json", role="querynode", node="7")
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        assert root.level == logging.DEBUG
        setup_logging("INFO", "plain")
        assert not isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


class _Callee:
    @rpc
    def whoami(self, x: int) -> list[object]:
        logging.getLogger("callee").info("in callee")
        return [current_request_id(), x]


def test_request_id_crosses_in_process_rpc() -> None:
    router = rpc_client.Router()
    client = router.client(router.register_local("callee", _Callee()))
    with request_scope("search-123"):
        rid, x = client.call("whoami", x=5)
    assert (rid, x) == ("search-123", 5)
    # Without a caller id the callee runs under a fresh one, and nothing leaks back to the caller.
    rid2, _ = client.call("whoami", x=1)
    assert rid2 and rid2 != "search-123"
    assert REQUEST_ID.get() == ""
    assert REQUEST_ID_KEY.startswith("__")


def test_proxy_serial_queue_keeps_request_id() -> None:
    from services.proxy.tasks import SerialQueue

    queue = SerialQueue("test-ddl")
    try:
        with request_scope("ddl-9"):
            assert queue.run(current_request_id) == "ddl-9"
    finally:
        queue.close()
