"""TLS on the proxy's ports end to end: one-way (tls_mode 1) and mutual (tls_mode 2), gRPC and HTTP.

Certificates come from the ``cryptography`` package at test time: a CA, a server certificate for
localhost/127.0.0.1 and a client certificate, all signed by the CA.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException
from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc

from tests.e2e.test_auth import SecureStandalone

pytestmark = pytest.mark.e2e


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    directory: Path, stem: str, subject: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, server: bool
) -> tuple[Path, Path, x509.Name, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(subject)
    issuer_name, issuer_key = issuer if issuer is not None else (name, key)
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if server:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    return cert_path, key_path, name, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = Path(tmp_path_factory.mktemp("pki"))
    ca, _, ca_name, ca_key = _issue(directory, "ca", "Quiver test CA", None, server=False)
    server_cert, server_key, _, _ = _issue(directory, "server", "localhost", (ca_name, ca_key), server=True)
    client_cert, client_key, _, _ = _issue(directory, "client", "quiver-client", (ca_name, ca_key), server=False)
    return Pki(ca, server_cert, server_key, client_cert, client_key)


def tls_server(workdir: Path, pki: Pki, mode: int) -> SecureStandalone:
    env = {
        "QUIVER_SECURITY__TLS_MODE": str(mode),
        "QUIVER_SECURITY__SERVER_PEM_PATH": str(pki.server_cert),
        "QUIVER_SECURITY__SERVER_KEY_PATH": str(pki.server_key),
        "QUIVER_SECURITY__CA_PEM_PATH": str(pki.ca),
    }
    client_pair = (pki.client_key.read_bytes(), pki.client_cert.read_bytes()) if mode == 2 else (None, None)
    credentials = grpc.ssl_channel_credentials(pki.ca.read_bytes(), *client_pair)
    return SecureStandalone(workdir / "data", extra_env=env, channel_credentials=credentials)


@pytest.fixture(scope="module")
def one_way(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[SecureStandalone]:
    srv = tls_server(Path(tmp_path_factory.mktemp("quiver-tls1")), pki, 1)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def mutual(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[SecureStandalone]:
    srv = tls_server(Path(tmp_path_factory.mktemp("quiver-tls2")), pki, 2)
    srv.start()
    yield srv
    srv.stop()


def https(port: int, path: str = "/v2/vectordb/collections/list") -> str:
    return f"https://127.0.0.1:{port}{path}"


def test_one_way_tls_with_pymilvus(one_way: SecureStandalone, pki: Pki) -> None:
    uri = f"https://127.0.0.1:{one_way.grpc_port}"
    client = MilvusClient(uri=uri, secure=True, server_pem_path=str(pki.ca), server_name="localhost")
    client.create_collection("tls_one", dimension=4)
    assert "tls_one" in client.list_collections()
    client.close()
    with grpc.insecure_channel(f"127.0.0.1:{one_way.grpc_port}") as plain:  # no TLS: no conversation
        with pytest.raises(grpc.RpcError) as err:
            milvus_pb2_grpc.MilvusServiceStub(plain).GetVersion(milvus_pb2.GetVersionRequest(), timeout=3)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_one_way_tls_on_http(one_way: SecureStandalone, pki: Pki) -> None:
    context = ssl.create_default_context(cafile=str(pki.ca))
    with httpx.Client(verify=context, timeout=30) as http:
        assert http.get(https(one_way.http_port, "/healthz")).text == "OK"
        assert http.post(https(one_way.http_port), json={}).json()["code"] == 0
    with httpx.Client(timeout=10) as untrusting, pytest.raises(httpx.ConnectError):
        untrusting.get(https(one_way.http_port, "/healthz"))  # the server's CA is not in the default store


def test_mutual_tls_with_a_client_certificate(mutual: SecureStandalone, pki: Pki) -> None:
    client = MilvusClient(
        uri=f"https://127.0.0.1:{mutual.grpc_port}",
        secure=True,
        client_pem_path=str(pki.client_cert),
        client_key_path=str(pki.client_key),
        ca_pem_path=str(pki.ca),
        server_name="localhost",
    )
    client.create_collection("tls_two", dimension=4)
    assert "tls_two" in client.list_collections()
    client.close()


def test_mutual_tls_rejects_a_client_without_certificate(mutual: SecureStandalone, pki: Pki) -> None:
    with pytest.raises(MilvusException) as err:  # "localhost": pymilvus reuses connections per address
        MilvusClient(
            uri=f"https://localhost:{mutual.grpc_port}",
            secure=True,
            server_pem_path=str(pki.ca),
            server_name="localhost",
            timeout=5,
        )
    cause = err.value.__cause__
    assert isinstance(cause, grpc.RpcError) and cause.code() == grpc.StatusCode.UNAVAILABLE
    with (
        grpc.secure_channel(
            f"127.0.0.1:{mutual.grpc_port}",
            grpc.ssl_channel_credentials(pki.ca.read_bytes()),
            options=[("grpc.ssl_target_name_override", "localhost")],
        ) as channel,
        pytest.raises(grpc.FutureTimeoutError),
    ):
        grpc.channel_ready_future(channel).result(timeout=3)


def test_mutual_tls_on_http(mutual: SecureStandalone, pki: Pki) -> None:
    with_cert = ssl.create_default_context(cafile=str(pki.ca))
    with_cert.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    with httpx.Client(verify=with_cert, timeout=30) as http:
        assert http.post(https(mutual.http_port), json={}).json()["code"] == 0
    without_cert = ssl.create_default_context(cafile=str(pki.ca))
    with httpx.Client(verify=without_cert, timeout=10) as http, pytest.raises(httpx.TransportError):
        http.post(https(mutual.http_port), json={})
