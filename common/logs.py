"""Logging setup shared by every role: plain text or one JSON object per line, with a request id.

Log collectors (Loki, Elasticsearch, Cloud Logging) parse JSON lines without per-service regexes,
and a request id lets an operator follow one client call across the proxy and the querynodes it
fanned out to. The id lives in a contextvar: the proxy sets it per RPC, the internal RPC layer
(common/rpc) carries it in the call envelope and restores it in the callee.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from datetime import datetime, timezone

REQUEST_ID: ContextVar[str] = ContextVar("quiver_request_id", default="")

# Metadata keys a client may send its own id under (gRPC metadata keys are lower case).
REQUEST_ID_METADATA = ("client-request-id", "x-request-id")

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


def current_request_id() -> str:
    return REQUEST_ID.get()


@contextlib.contextmanager
def request_scope(request_id: str | None) -> Iterator[str]:
    """Run a block with ``request_id`` (a new one when empty) as the current request id."""
    rid = request_id or new_request_id()
    token = REQUEST_ID.set(rid)
    try:
        yield rid
    finally:
        REQUEST_ID.reset(token)


def request_id_from_metadata(metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
    """The client's own request id from gRPC/HTTP metadata, or "" when it sent none."""
    for key, value in metadata or ():
        if key.lower() in REQUEST_ID_METADATA and value:
            text = value.decode(errors="replace") if isinstance(value, bytes) else value
            return text[:128]  # a hostile client must not blow up every log line
    return ""


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, role, node, request_id and any extras."""

    def __init__(self, role: str = "", node: str = "") -> None:
        super().__init__()
        self.role = role
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "role": self.role,
            "node": self.node,
            "request_id": REQUEST_ID.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def setup_logging(level: str = "INFO", log_format: str = "plain", role: str = "", node: str = "") -> None:
    """Configure the root logger once for the process: JSON lines when ``log_format`` is "json"."""
    handler = logging.StreamHandler()
    if log_format.lower() == "json":
        handler.setFormatter(JsonFormatter(role=role, node=node))
    else:
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler], force=True)
