"""Fixtures of the Kubernetes tests: paths, the operator package on sys.path, the fake API server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.k8s.paths import OPERATOR

if TYPE_CHECKING:
    from tests.k8s.fake_apiserver import FakeApiServer


# The operator is its own package in operator/ (not installed into Quiver's environment).
if str(OPERATOR) not in sys.path:
    sys.path.append(str(OPERATOR))


@pytest.fixture(scope="module")
def fake_api() -> Iterator[FakeApiServer]:
    pytest.importorskip("aiohttp")
    from tests.k8s.fake_apiserver import FakeApiServer

    server = FakeApiServer().start()
    yield server
    server.stop()
