"""The message-stream contract (tests/contracts/msgstream.py) on memory and the local log."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common.msgstream.base import MsgStream
from common.msgstream.local import LocalLogStream
from common.msgstream.memory import MemoryStream
from tests.contracts import msgstream as contract


@pytest.fixture(params=["memory", "local", "local-fsync"])
def stream(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MsgStream]:
    if request.param == "memory":
        backend: MsgStream = MemoryStream()
    else:
        backend = LocalLogStream(str(tmp_path / "log"), fsync=request.param == "local-fsync")
    yield backend
    backend.close()


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda c: c.__name__)
def test_contract(stream: MsgStream, check: Callable[[MsgStream], None]) -> None:
    check(stream)


def test_throughput(stream: MsgStream) -> None:
    rate = contract.check_throughput(stream, count=3000, size=1024)
    # An fsync per message is bound by the disk; without it the log must take thousands/s.
    floor = 100 if isinstance(stream, LocalLogStream) and stream.fsync else 2000
    assert rate > floor, f"only {rate:.0f} messages/s"


def test_local_durable_across_reopen(tmp_path: Path) -> None:
    contract.check_durable_across_reopen(lambda: LocalLogStream(str(tmp_path / "log")))
