"""TLS on Quiver's own connections: etcd and SeaweedFS S3 served over TLS, Pulsar's client side.

Certificates come from the ``cryptography`` package at test time (a CA, a server certificate for
localhost/127.0.0.1 and a client certificate). etcd serves https with and without
``--client-cert-auth``; SeaweedFS serves S3 on an https port, with and without verifying client
certificates. Clients are built from configuration (common/backends.py) as the roles build them.

pulsar-lite has no TLS listener, and its lookup answers carry no ``broker_service_url_tls``, so
a TLS-terminating relay in front of it only carries the client's first connection: the test proves
the handshake (CA trust, hostname check, client certificate) with one real broker round trip
(partitioned-topic metadata), not produce/consume over TLS.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.backends import open_kv, open_storage, open_stream
from common.config import QuiverConfig
from common.kv.etcd import EtcdKV
from common.msgstream.pulsar import PulsarStream, PulsarTls
from common.storage.s3 import S3Storage
from quiver.devcluster.servers import EtcdServer, PulsarLiteServer, SeaweedS3Server, ServerNotInstalled, ServerTls
from tests.contracts._util import unique
from tests.e2e.test_tls import Pki, _issue

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = Path(tmp_path_factory.mktemp("backend-pki"))
    ca, _, ca_name, ca_key = _issue(directory, "ca", "Quiver backend CA", None, server=False)
    server_cert, server_key, _, _ = _issue(directory, "server", "localhost", (ca_name, ca_key), server=True)
    client_cert, client_key, _, _ = _issue(directory, "client", "quiver-role", (ca_name, ca_key), server=False)
    return Pki(ca, server_cert, server_key, client_cert, client_key)


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ca, _, _, _ = _issue(Path(tmp_path_factory.mktemp("other-ca")), "ca", "Someone else", None, server=False)
    return ca


def _tls(pki: Pki, client_auth: bool) -> ServerTls:
    return ServerTls(str(pki.server_cert), str(pki.server_key), str(pki.ca), client_auth,
                     str(pki.client_cert), str(pki.client_key))


@contextlib.contextmanager
def _running(server_factory: object) -> Iterator[object]:
    try:
        server = server_factory()  # type: ignore[operator]
    except ServerNotInstalled as exc:
        pytest.skip(str(exc))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _cfg(**sections: object) -> QuiverConfig:
    return QuiverConfig(**sections)  # type: ignore[arg-type]


# -------------------------------------------------------------------------------- etcd


@pytest.mark.parametrize("client_auth", [False, True], ids=["one-way", "mutual"])
def test_etcd_over_tls(tmp_path: Path, pki: Pki, other_ca: Path, client_auth: bool) -> None:
    with _running(lambda: EtcdServer(str(tmp_path / "etcd"), tls=_tls(pki, client_auth))) as server:
        assert isinstance(server, EtcdServer)
        etcd = {"endpoints": [server.endpoint], "root_path": unique("tls"), "ca_cert": str(pki.ca)}
        if client_auth:
            etcd |= {"cert": str(pki.client_cert), "key": str(pki.client_key)}
        kv = open_kv(_cfg(kv={"backend": "etcd", "etcd": etcd}))
        try:
            kv.put("k", b"over tls")
            assert kv.get("k") == b"over tls"
        finally:
            kv.close()
        refused = [
            {"ca_cert": str(other_ca)},  # the server's certificate is not from this CA
            {},  # plaintext against a TLS port
        ]
        if client_auth:
            refused.append({"ca_cert": str(pki.ca)})  # no client certificate
        for settings in refused:
            bad = EtcdKV([server.endpoint], root="x", retry_seconds=1.0, timeout=2.0, **settings)  # type: ignore[arg-type]
            try:
                with pytest.raises(Exception):  # noqa: B017 - grpc/etcd errors vary by failure
                    bad.put("k", b"must not land")
            finally:
                bad.close()


# ---------------------------------------------------------------------------- SeaweedFS


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")  # the verify=False client, on purpose
@pytest.mark.parametrize("client_auth", [False, True], ids=["one-way", "mutual"])
def test_s3_over_tls(tmp_path: Path, pki: Pki, other_ca: Path, client_auth: bool) -> None:
    with _running(lambda: SeaweedS3Server(str(tmp_path / "s3"), tls=_tls(pki, client_auth))) as server:
        assert isinstance(server, SeaweedS3Server)
        s3 = {
            "endpoint": server.https_endpoint,
            "bucket": "tls",
            "access_key": server.access_key,
            "secret_key": server.secret_key,
            "ca_cert": str(pki.ca),
        }
        if client_auth:
            s3 |= {"client_cert": str(pki.client_cert), "client_key": str(pki.client_key)}
        storage = open_storage(_cfg(storage={"backend": "s3", "root_path": "r", "s3": s3}))
        try:
            storage.put("a/b", b"over tls")
            assert storage.get("a/b") == b"over tls"
        finally:
            storage.close()
        base = {k: v for k, v in s3.items() if k not in ("endpoint", "ca_cert", "client_cert", "client_key")}
        pair = {"client_cert": str(pki.client_cert), "client_key": str(pki.client_key)} if client_auth else {}
        # verify off: https without checking the server (still needs the client pair under mTLS)
        insecure = S3Storage(server.https_endpoint, verify=False, max_attempts=1, **base, **pair)  # type: ignore[arg-type]
        assert insecure.get("r/a/b") == b"over tls"
        insecure.close()
        refused = [{"ca_cert": str(other_ca), **pair}]
        if client_auth:
            refused.append({"ca_cert": str(pki.ca)})
        for settings in refused:
            with pytest.raises(Exception):  # noqa: B017 - botocore SSL and connection errors vary
                S3Storage(server.https_endpoint, max_attempts=1, **base, **settings)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ Pulsar


class TlsRelay:
    """Terminates TLS on a loopback port and relays the bytes to a plaintext server."""

    def __init__(self, pki: Pki, upstream_port: int, client_auth: bool) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
        if client_auth:
            self.context.load_verify_locations(str(pki.ca))
            self.context.verify_mode = ssl.CERT_REQUIRED
        self.upstream = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.peers: list[str] = []  # client certificate subjects of completed handshakes
        self.failures: list[str] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            try:
                tls = self.context.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                self.failures.append(str(exc))
                conn.close()
                continue
            cert = tls.getpeercert()
            subject: Any = (cert or {}).get("subject", ())  # ((("commonName", "..."),), ...)
            names = [pair[1] for rdn in subject for pair in rdn if pair[0] == "commonName"]
            self.peers.append(str(names[0]) if names else "")
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            for a, b in ((tls, upstream), (upstream, tls)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self.listener.close()


@pytest.mark.parametrize("client_auth", [False, True], ids=["one-way", "mutual"])
def test_pulsar_client_tls_handshake(tmp_path: Path, pki: Pki, other_ca: Path, client_auth: bool) -> None:
    with _running(lambda: PulsarLiteServer(str(tmp_path / "pulsar"))) as server:
        assert isinstance(server, PulsarLiteServer)
        relay = TlsRelay(pki, server.port, client_auth)
        try:
            pulsar_cfg = {
                "service_url": f"pulsar+ssl://localhost:{relay.port}",
                "tls_trust_certs_file_path": str(pki.ca),
            }
            if client_auth:
                pulsar_cfg |= {"tls_cert_file": str(pki.client_cert), "tls_key_file": str(pki.client_key)}
            stream = open_stream(_cfg(stream={"backend": "pulsar", "pulsar": pulsar_cfg}))
            assert isinstance(stream, PulsarStream)
            try:  # one broker round trip over TLS: the topic's partition metadata
                assert stream._client.get_topic_partitions(stream.topic(unique("tls"))) is not None
            finally:
                stream.close()
            assert relay.peers and relay.peers[0] == ("quiver-role" if client_auth else "")
            wrong = PulsarStream(f"pulsar+ssl://localhost:{relay.port}", operation_timeout=2.0,
                                 tls=PulsarTls(trust_certs_file_path=str(other_ca)))
            try:
                with pytest.raises(Exception):  # noqa: B017 - pulsar.ConnectError / Timeout
                    wrong._client.get_topic_partitions(wrong.topic(unique("tls")))
            finally:
                wrong.close()
            assert relay.failures  # the relay saw the client give up on the handshake
        finally:
            relay.close()

