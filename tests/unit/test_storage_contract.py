"""The object-storage contract (tests/contracts/storage.py) on memory and the local folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common.storage.base import ObjectStorage
from common.storage.local import LocalStorage
from common.storage.memory import MemoryStorage
from tests.contracts import storage as contract


@pytest.fixture(params=["memory", "local"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStorage]:
    backend: ObjectStorage = MemoryStorage() if request.param == "memory" else LocalStorage(str(tmp_path))
    yield backend
    backend.close()


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda c: c.__name__)
def test_contract(storage: ObjectStorage, check: Callable[[ObjectStorage], None]) -> None:
    check(storage)


def test_local_durable_across_reopen(tmp_path: Path) -> None:
    contract.check_durable_across_reopen(lambda: LocalStorage(str(tmp_path / "objects")))
