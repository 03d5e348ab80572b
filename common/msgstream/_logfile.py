"""One channel of the local log: an append-only file of framed records.

A record is ``length (4 bytes BE) | crc32 (4 bytes BE) | payload``, the crc covering the
length bytes and the payload (so a zero-filled tail never passes as an empty record). A
message id is the record's byte offset. A process killed mid-append leaves a torn record at
the tail; opening the file finds the last whole record and truncates what follows.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib

from common.msgstream._tail import Tail

log = logging.getLogger(__name__)

HEADER = struct.Struct(">II")
_LENGTH = struct.Struct(">I")
MAX_PAYLOAD = 256 * 1024 * 1024
_SCAN_BUFFER = 1024 * 1024


class CorruptRecord(IOError):
    """A record that fails its checksum, or an id that does not start a record."""


def record_crc(payload: bytes | memoryview, length: int) -> int:
    return zlib.crc32(payload, zlib.crc32(_LENGTH.pack(length)))


def recover_length(path: str) -> int:
    """The byte length of the valid prefix of the log at ``path`` (whole, checksummed records)."""
    file_size = os.path.getsize(path)
    valid = 0
    with open(path, "rb", buffering=_SCAN_BUFFER) as f:
        while True:
            header = f.read(HEADER.size)
            if len(header) < HEADER.size:
                break
            length, crc = HEADER.unpack(header)
            if valid + HEADER.size + length > file_size:
                break
            payload = f.read(length)
            if len(payload) < length or record_crc(payload, length) != crc:
                break
            valid += HEADER.size + length
    return valid


class LogFile:
    """The open log of one channel: appends under a lock, publishes its end to readers."""

    def __init__(self, path: str, fsync: bool) -> None:
        self.path = path
        self._fsync = fsync
        self.write_lock = threading.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            end = recover_length(path)
            size = os.fstat(self._fd).st_size
            if end < size:
                log.warning("log %s: dropping %d bytes of torn tail at offset %d", path, size - end, end)
                os.ftruncate(self._fd, end)
                os.fsync(self._fd)
        except BaseException:
            os.close(self._fd)
            raise
        self._end = end
        self.tail = Tail(end)

    def append(self, payload: bytes) -> int:
        """Write one record at the end; returns its offset. Caller holds ``write_lock``."""
        length = len(payload)
        if length > MAX_PAYLOAD:
            raise ValueError(f"message of {length} bytes exceeds the local log limit of {MAX_PAYLOAD}")
        offset = self._end
        header = HEADER.pack(length, record_crc(payload, length))
        buffers: list[bytes | memoryview] = [header, memoryview(payload)]
        position = offset
        total = HEADER.size + length
        written = 0
        while written < total:
            n = os.pwritev(self._fd, buffers, position)
            written += n
            position += n
            buffers = _skip(buffers, n)
        if self._fsync:
            os.fdatasync(self._fd)
        self._end = offset + total
        self.tail.advance(self._end)
        return offset

    def close(self) -> None:
        os.close(self._fd)


def _skip(buffers: list[bytes | memoryview], count: int) -> list[bytes | memoryview]:
    """The buffers left after the first ``count`` bytes were written."""
    rest: list[bytes | memoryview] = []
    for buf in buffers:
        if count >= len(buf):
            count -= len(buf)
        else:
            rest.append(memoryview(buf)[count:])
            count = 0
    return rest


def read_record(fd: int, offset: int) -> tuple[bytes, int]:
    """The payload of the record at ``offset`` and the offset after it."""
    header = os.pread(fd, HEADER.size, offset)
    if len(header) < HEADER.size:
        raise CorruptRecord(f"no record at offset {offset}")
    length, crc = HEADER.unpack(header)
    payload = os.pread(fd, length, offset + HEADER.size) if length else b""
    if len(payload) < length or record_crc(payload, length) != crc:
        raise CorruptRecord(f"bad record at offset {offset}")
    return payload, offset + HEADER.size + length
