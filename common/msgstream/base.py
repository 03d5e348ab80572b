"""The narrow interface for the log that carries insert, delete and timetick messages.

Producers append opaque payloads to a named channel (a Pulsar topic); consumers read a
channel in order from a saved position with a Reader, as Milvus's msgstream does. Positions
(message ids) are opaque bytes that only the backend can order: :meth:`MsgStream.compare`
lets a consumer drop redelivered messages at or below the last one it applied, so every
consumer is correct under at-least-once delivery.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass


@dataclass(frozen=True)
class StreamMessage:
    channel: str
    message_id: bytes
    payload: bytes


class Reader(abc.ABC):
    """Reads one channel in order. Not thread-safe: one reader, one consuming thread."""

    @abc.abstractmethod
    def read(self, timeout: float) -> StreamMessage | None:
        """The next message, or None when nothing arrived within ``timeout`` seconds."""

    @abc.abstractmethod
    def close(self) -> None: ...


class MsgStream(abc.ABC):
    """A set of named, ordered, durable channels. Thread-safe."""

    @abc.abstractmethod
    def produce(self, channel: str, payload: bytes) -> bytes:
        """Append ``payload`` durably and return its message id (blocks until acknowledged)."""

    @abc.abstractmethod
    def reader(self, channel: str, start: bytes | None = None, inclusive: bool = False) -> Reader:
        """A reader from ``start`` (exclusive unless ``inclusive``); None means the earliest."""

    @abc.abstractmethod
    def compare(self, a: bytes, b: bytes) -> int:
        """-1, 0 or 1 as message id ``a`` is before, equal to or after ``b`` on one channel."""

    @abc.abstractmethod
    def delete_channel(self, channel: str) -> None:
        """Drop a channel and its messages (no error if absent)."""

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections, files and threads."""
