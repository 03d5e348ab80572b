"""LocalLogStream: the message stream of standalone mode, a durable log per channel on disk.

Each channel is one append-only file of framed records (see ``_logfile``) in ``directory``;
a message id is the 8-byte big-endian offset of its record. Produce returns once the OS has
the write (and, with ``fsync=True``, once it is on disk). Readers in this process sleep on
the channel's Condition until a producer appends. One process owns a directory at a time
(an exclusive lock file guards it), as standalone mode runs every role in one process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from urllib.parse import quote, unquote

from common.msgstream._logfile import CorruptRecord, LogFile, read_record
from common.msgstream._tail import Tail, compare_ids, decode_id, encode_id
from common.msgstream.base import MsgStream, Reader, StreamMessage

__all__ = ["CorruptRecord", "LocalLogStream", "StreamLocked"]


class StreamLocked(RuntimeError):
    """Another LocalLogStream (in this or another process) has the directory open."""


class _LogReader(Reader):
    def __init__(self, name: str, path: str, tail: Tail, offset: int) -> None:
        self._name = name
        self._tail = tail
        self._offset = offset
        self._fd: int | None = os.open(path, os.O_RDONLY)

    def read(self, timeout: float) -> StreamMessage | None:
        if self._fd is None:
            raise RuntimeError("reader is closed")
        if not self._tail.wait_beyond(self._offset, timeout):
            return None
        payload, following = read_record(self._fd, self._offset)
        message = StreamMessage(self._name, encode_id(self._offset), payload)
        self._offset = following
        return message

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class LocalLogStream(MsgStream):
    """Channels as files ``<directory>/<quoted channel>.log``; see the module docstring."""

    def __init__(self, directory: str, fsync: bool = False) -> None:
        self.directory = directory
        self.fsync = fsync
        os.makedirs(directory, exist_ok=True)
        self._lock_fd = os.open(os.path.join(directory, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise StreamLocked(f"message log {directory} is already open") from None
        self._lock = threading.Lock()
        self._channels: dict[str, LogFile] = {}
        self._closed = False

    def _path(self, channel: str) -> str:
        if not channel:
            raise ValueError("channel name must not be empty")
        return os.path.join(self.directory, quote(channel, safe="") + ".log")

    def _open(self, channel: str) -> LogFile:
        with self._lock:
            if self._closed:
                raise RuntimeError("message stream is closed")
            log = self._channels.get(channel)
            if log is None:
                log = self._channels[channel] = LogFile(self._path(channel), self.fsync)
            return log

    def produce(self, channel: str, payload: bytes) -> bytes:
        while True:
            log = self._open(channel)
            with log.write_lock:
                if log.tail.deleted:
                    continue  # dropped while we waited; the next _open makes a fresh file
                return encode_id(log.append(payload))

    def reader(self, channel: str, start: bytes | None = None, inclusive: bool = False) -> Reader:
        log = self._open(channel)
        reader = _LogReader(channel, log.path, log.tail, 0)
        if start is None:
            return reader
        offset = decode_id(start)
        try:
            if offset >= log.tail.end:
                raise ValueError(f"message id {offset} is past the end of channel {channel!r}")
            if not inclusive:
                assert reader._fd is not None
                _, offset = read_record(reader._fd, offset)
        except BaseException:
            reader.close()
            raise
        reader._offset = offset
        return reader

    def compare(self, a: bytes, b: bytes) -> int:
        return compare_ids(a, b)

    def delete_channel(self, channel: str) -> None:
        path = self._path(channel)
        with self._lock:  # no produce may reopen the file before it is gone
            log = self._channels.pop(channel, None)
            if log is not None:
                with log.write_lock:
                    log.tail.mark_deleted()
                    log.close()
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)

    def channels(self) -> list[str]:
        """The names of the channels that have a file (created by a produce or a reader)."""
        names = [unquote(f[: -len(".log")]) for f in os.listdir(self.directory) if f.endswith(".log")]
        return sorted(names)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            logs = list(self._channels.values())
            self._channels.clear()
        for log in logs:
            with log.write_lock:
                log.close()
        os.close(self._lock_fd)
