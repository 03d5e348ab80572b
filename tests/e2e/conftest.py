"""Fixtures for end-to-end tests: a standalone server per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import StandaloneServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneServer]:
    srv = StandaloneServer(Path(tmp_path_factory.mktemp("quiver")) / "data")
    srv.start()
    yield srv
    srv.stop()
