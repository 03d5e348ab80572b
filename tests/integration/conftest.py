"""Session-wide real servers for integration tests (see servers.py); skipped if not installed."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from quiver.devcluster.servers import (
    EtcdServer,
    PulsarLiteServer,
    SeaweedS3Server,
    ServerNotInstalled,
    ServerProcess,
)


def _serve(factory: Callable[[], ServerProcess]) -> Iterator[ServerProcess]:
    try:
        server = factory()
    except ServerNotInstalled as exc:
        pytest.skip(str(exc))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    for server in _serve(lambda: EtcdServer(str(tmp_path_factory.mktemp("etcd")))):
        assert isinstance(server, EtcdServer)
        yield server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3Server]:
    for server in _serve(lambda: SeaweedS3Server(str(tmp_path_factory.mktemp("seaweedfs")))):
        assert isinstance(server, SeaweedS3Server)
        yield server


@pytest.fixture(scope="session")
def pulsar_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulsarLiteServer]:
    for server in _serve(lambda: PulsarLiteServer(str(tmp_path_factory.mktemp("pulsar")))):
        assert isinstance(server, PulsarLiteServer)
        yield server
