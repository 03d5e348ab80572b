"""Fixtures for end-to-end tests: Quiver standalone and as a local cluster, shared by the modules.

Every test that takes ``server`` runs twice: against ``quiver run standalone`` and against a
local cluster (every role its own process on real etcd, SeaweedFS and pulsar-lite). The modules
share one server per mode, reset between them (tests/e2e/shared_servers.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymilvus import MilvusClient

from tests.e2e.shared_servers import SharedServers

MODES = ["standalone", "cluster"]
_SHARED = SharedServers()


@pytest.fixture(scope="module", params=MODES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    mode = str(request.param)
    yield _SHARED.acquire(mode, Path(tmp_path_factory.mktemp(f"quiver-{mode}")))
    _SHARED.release(mode)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Count the (module, mode) uses of the shared servers, so the last one stops its server."""
    uses: set[tuple[str, str]] = set()
    for item in session.items:
        defs = getattr(item, "_fixtureinfo", None)
        fixturedefs = defs.name2fixturedefs.get("server") if defs is not None else None
        callspec = getattr(item, "callspec", None)
        ours = fixturedefs and getattr(fixturedefs[-1].func, "__module__", "") == __name__
        if ours and callspec is not None:
            uses.add((item.nodeid.split("::")[0], str(callspec.params["server"])))
    for _, mode in uses:
        _SHARED.uses_left[mode] = _SHARED.uses_left.get(mode, 0) + 1


def pytest_sessionfinish(session: pytest.Session) -> None:
    _SHARED.stop_all()


@pytest.fixture(scope="module")
def client(server: Any) -> Iterator[MilvusClient]:
    """A MilvusClient on the module's server (modules that need a prepared one override this)."""
    c = MilvusClient(uri=server.uri)
    yield c
    c.close()
