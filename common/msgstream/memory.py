"""MemoryStream: the message stream for unit tests, each channel a list in memory."""

from __future__ import annotations

import threading

from common.msgstream._tail import Tail, compare_ids, decode_id, encode_id
from common.msgstream.base import MsgStream, Reader, StreamMessage


class _Channel:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.tail = Tail()


class _MemoryReader(Reader):
    def __init__(self, name: str, channel: _Channel, index: int) -> None:
        self._name = name
        self._channel = channel
        self._index = index

    def read(self, timeout: float) -> StreamMessage | None:
        if not self._channel.tail.wait_beyond(self._index, timeout):
            return None
        payload = self._channel.messages[self._index]
        message = StreamMessage(self._name, encode_id(self._index), payload)
        self._index += 1
        return message

    def close(self) -> None:
        pass


class MemoryStream(MsgStream):
    """Channels of messages with ids that are their 8-byte big-endian index."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, _Channel] = {}

    def _channel(self, name: str) -> _Channel:
        with self._lock:
            channel = self._channels.get(name)
            if channel is None:
                channel = self._channels[name] = _Channel()
            return channel

    def produce(self, channel: str, payload: bytes) -> bytes:
        with self._lock:
            ch = self._channels.get(channel)
            if ch is None:
                ch = self._channels[channel] = _Channel()
            ch.messages.append(bytes(payload))
            index = len(ch.messages) - 1
            ch.tail.advance(index + 1)
        return encode_id(index)

    def reader(self, channel: str, start: bytes | None = None, inclusive: bool = False) -> Reader:
        ch = self._channel(channel)
        index = 0
        if start is not None:
            index = decode_id(start) + (0 if inclusive else 1)
        return _MemoryReader(channel, ch, index)

    def compare(self, a: bytes, b: bytes) -> int:
        return compare_ids(a, b)

    def delete_channel(self, channel: str) -> None:
        with self._lock:
            ch = self._channels.pop(channel, None)
        if ch is not None:
            ch.tail.mark_deleted()
