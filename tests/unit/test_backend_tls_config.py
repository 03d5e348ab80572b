"""TLS settings of the backends as configuration turns them into client arguments (no server needed)."""

from __future__ import annotations

import pulsar
import pytest

from common.config import load_config
from common.msgstream.pulsar import PulsarTls, client_security
from common.storage.s3 import S3Storage


def test_pulsar_tls_arguments() -> None:
    assert client_security("pulsar://h:6650", None, None) == {"authentication": None}
    kwargs = client_security("pulsar+ssl://h:6651", None, PulsarTls(trust_certs_file_path="/ca.pem"))
    assert kwargs["tls_trust_certs_file_path"] == "/ca.pem"
    assert kwargs["tls_validate_hostname"] is True and kwargs["tls_allow_insecure_connection"] is False
    assert kwargs["authentication"] is None
    mutual = client_security("pulsar+ssl://h:6651", None, PulsarTls("/ca.pem", cert_file="/c.pem", key_file="/c.key"))
    assert isinstance(mutual["authentication"], pulsar.AuthenticationTLS)
    assert (mutual["tls_certificate_file_path"], mutual["tls_private_key_file_path"]) == ("/c.pem", "/c.key")
    token = client_security("pulsar+ssl://h:6651", "tok", PulsarTls("/ca.pem", cert_file="/c.pem", key_file="/c.key"))
    assert isinstance(token["authentication"], pulsar.AuthenticationToken)


def test_pulsar_tls_misconfigurations_are_refused() -> None:
    with pytest.raises(ValueError, match="need a pulsar\\+ssl:// service_url, got pulsar://h:6650"):
        client_security("pulsar://h:6650", None, PulsarTls(trust_certs_file_path="/ca.pem"))
    with pytest.raises(ValueError, match="both tls_cert_file and tls_key_file"):
        client_security("pulsar+ssl://h:6651", None, PulsarTls(cert_file="/c.pem"))


def test_s3_client_pair_needs_both_halves() -> None:
    with pytest.raises(ValueError, match="both client_cert and client_key"):
        S3Storage("https://127.0.0.1:1", "b", "k", "s", client_cert="/c.pem")


def test_tls_settings_load_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUIVER_KV__ETCD__CA_CERT", "/etc/ca.pem")
    monkeypatch.setenv("QUIVER_STORAGE__S3__VERIFY", "false")
    monkeypatch.setenv("QUIVER_STREAM__PULSAR__TLS_TRUST_CERTS_FILE_PATH", "/etc/pulsar-ca.pem")
    cfg = load_config()
    assert cfg.kv.etcd.ca_cert == "/etc/ca.pem"
    assert cfg.storage.s3.verify is False
    assert cfg.stream.pulsar.tls_trust_certs_file_path == "/etc/pulsar-ca.pem"
