"""Pieces shared by the in-process message streams (memory and local log).

Both give message ids as 8-byte big-endian positions, so ids order as integers, and both
let readers of a channel sleep on a Condition until a producer moves the channel's end.
"""

from __future__ import annotations

import struct
import threading
import time

_ID = struct.Struct(">Q")


def encode_id(position: int) -> bytes:
    return _ID.pack(position)


def decode_id(message_id: bytes) -> int:
    if len(message_id) != _ID.size:
        raise ValueError(f"not a message id of this stream: {message_id!r}")
    return int(_ID.unpack(message_id)[0])


def compare_ids(a: bytes, b: bytes) -> int:
    x, y = decode_id(a), decode_id(b)
    return (x > y) - (x < y)


class Tail:
    """The end position of one channel, and the Condition its readers wait on."""

    def __init__(self, end: int = 0) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._end = end
        self.deleted = False

    @property
    def end(self) -> int:
        with self._cond:
            return self._end

    def advance(self, end: int) -> None:
        """Publish a new end (after the data up to it is readable) and wake the readers."""
        with self._cond:
            self._end = end
            self._cond.notify_all()

    def mark_deleted(self) -> None:
        with self._cond:
            self.deleted = True
            self._cond.notify_all()

    def wait_beyond(self, position: int, timeout: float) -> bool:
        """True once the end is past ``position``; False after ``timeout`` seconds."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while self._end <= position:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True
