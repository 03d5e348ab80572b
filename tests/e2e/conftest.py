"""Fixtures for end-to-end tests: a Quiver per test module, standalone and as a local cluster.

Every test that takes ``server`` runs twice: against ``quiver run standalone`` and against a
local cluster (every role its own process on real etcd, SeaweedFS and pulsar-lite).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymilvus import MilvusClient

from tests.e2e.cluster_server import ClusterServer
from tests.e2e.server import StandaloneServer

MODES = ["standalone", "cluster"]


@pytest.fixture(scope="module", params=MODES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    workdir = Path(tmp_path_factory.mktemp(f"quiver-{request.param}"))
    srv: StandaloneServer | ClusterServer
    srv = StandaloneServer(workdir / "data") if request.param == "standalone" else ClusterServer(workdir)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server: Any) -> Iterator[MilvusClient]:
    """A MilvusClient on the module's server (modules that need a prepared one override this)."""
    c = MilvusClient(uri=server.uri)
    yield c
    c.close()
