"""The KV contract (tests/contracts/kv.py) on the in-process backends: memory and local."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common.kv.base import KV
from common.kv.local import LocalKV
from common.kv.memory import MemoryKV
from tests.contracts import kv as contract


@pytest.fixture(params=["memory", "local"])
def kv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KV]:
    store: KV = MemoryKV() if request.param == "memory" else LocalKV(str(tmp_path / "kv.db"))
    yield store
    store.close()


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda c: c.__name__)
def test_contract(kv: KV, check: Callable[[KV], None]) -> None:
    check(kv)


def test_local_durable_across_reopen(tmp_path: Path) -> None:
    contract.check_durable_across_reopen(lambda: LocalKV(str(tmp_path / "kv.db")))
