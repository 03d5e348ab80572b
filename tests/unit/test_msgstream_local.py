"""What only the local log promises: torn-tail recovery, record framing, exclusive ownership."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from common.msgstream._logfile import HEADER, record_crc
from common.msgstream.local import LocalLogStream, StreamLocked
from tests.contracts.msgstream import read_n


def _log_file(directory: Path) -> Path:
    (path,) = [p for p in directory.iterdir() if p.suffix == ".log"]
    return path


@pytest.mark.parametrize(
    "tail",
    [
        b"\x00\x00",  # part of a header
        HEADER.pack(100, 0) + b"x" * 40,  # header whose payload was cut short
        HEADER.pack(5, 1234) + b"abcde",  # whole record with a bad checksum
        b"\x00" * 64,  # zero-filled tail, as after a crash of the machine
    ],
)
def test_torn_tail_is_truncated_on_open(tmp_path: Path, tail: bytes) -> None:
    directory = tmp_path / "log"
    stream = LocalLogStream(str(directory))
    ids = [stream.produce("ch", f"m{i}".encode()) for i in range(5)]
    stream.close()
    path = _log_file(directory)
    good_size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(tail)
    stream = LocalLogStream(str(directory))
    try:
        reader = stream.reader("ch")
        assert [m.payload for m in read_n(reader, 5)] == [f"m{i}".encode() for i in range(5)]
        assert path.stat().st_size == good_size
        new_id = stream.produce("ch", b"after")
        assert stream.compare(new_id, ids[-1]) == 1
        message = reader.read(5)
        assert message is not None and message.payload == b"after"
        assert reader.read(0.1) is None
        reader.close()
    finally:
        stream.close()


_CHILD = textwrap.dedent(
    """
    import sys
    from common.msgstream.local import LocalLogStream
    stream = LocalLogStream(sys.argv[1])
    for i in range(500):
        stream.produce("dml_0", i.to_bytes(4, "big") * 1000)
    print("done", flush=True)
    while True:
        stream.produce("dml_0", b"z" * 4_000_000)
    """
)


def test_kill_9_mid_write_keeps_every_acknowledged_message(tmp_path: Path) -> None:
    directory = str(tmp_path / "log")
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, directory],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"done"
        child.stdout.close()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    stream = LocalLogStream(directory)
    try:
        reader = stream.reader("dml_0")
        first = read_n(reader, 500)
        assert [m.payload for m in first] == [i.to_bytes(4, "big") * 1000 for i in range(500)]
        while (message := reader.read(0.1)) is not None:
            assert message.payload == b"z" * 4_000_000
        reader.close()
    finally:
        stream.close()


def test_record_format(tmp_path: Path) -> None:
    stream = LocalLogStream(str(tmp_path))
    try:
        first = stream.produce("a/b c", b"hello")
        second = stream.produce("a/b c", b"")
        assert first == (0).to_bytes(8, "big")
        assert second == (HEADER.size + 5).to_bytes(8, "big")
        assert stream.channels() == ["a/b c"]
    finally:
        stream.close()
    raw = _log_file(tmp_path).read_bytes()
    assert raw[: HEADER.size] == HEADER.pack(5, record_crc(b"hello", 5))
    assert raw[HEADER.size : HEADER.size + 5] == b"hello"
    assert len(raw) == 2 * HEADER.size + 5


def test_exclusive_directory_and_bad_positions(tmp_path: Path) -> None:
    stream = LocalLogStream(str(tmp_path))
    try:
        with pytest.raises(StreamLocked):
            LocalLogStream(str(tmp_path))
        last = stream.produce("ch", b"x")
        beyond = (int.from_bytes(last, "big") + 1000).to_bytes(8, "big")
        with pytest.raises(ValueError):
            stream.reader("ch", start=beyond)
        with pytest.raises(ValueError):
            stream.compare(b"short", last)
    finally:
        stream.close()


def test_delete_channel_removes_file(tmp_path: Path) -> None:
    stream = LocalLogStream(str(tmp_path))
    try:
        stream.produce("gone", b"x")
        assert os.path.exists(tmp_path / "gone.log")
        stream.delete_channel("gone")
        assert not os.path.exists(tmp_path / "gone.log")
        assert stream.channels() == []
    finally:
        stream.close()
