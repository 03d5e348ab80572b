"""The chart's TLS settings for external etcd, S3 and Pulsar: rendered config, mounted Secrets, refusals."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from common.config import QuiverConfig
from tests.k8s.helm_util import RELEASE, container, find, helm, kinds, render, values_file

FULL = f"{RELEASE}-quiver"


def _tls_values() -> dict[str, Any]:
    values = values_file("external-values.yaml")
    values["externalEtcd"]["tls"] = {"enabled": True, "existingSecret": "etcd-tls", "clientAuth": True}
    values["externalS3"]["tls"] = {"enabled": True, "existingSecret": "s3-ca"}
    values["externalPulsar"]["tls"] = {"enabled": True, "existingSecret": "pulsar-tls", "clientAuth": True}
    values["externalPulsar"]["port"] = 6651
    return values


def test_tls_settings_reach_the_config_and_the_secrets_are_mounted() -> None:
    docs = render(_tls_values())
    data = yaml.safe_load(find(docs, "ConfigMap", f"{FULL}-config")["data"]["quiver.yaml"])
    cfg = QuiverConfig(**data)  # what the pods load
    assert (cfg.kv.etcd.ca_cert, cfg.kv.etcd.cert, cfg.kv.etcd.key) == (
        "/etc/quiver-tls/etcd/ca.crt", "/etc/quiver-tls/etcd/tls.crt", "/etc/quiver-tls/etcd/tls.key")
    assert cfg.storage.s3.secure and cfg.storage.s3.verify
    assert cfg.storage.s3.ca_cert == "/etc/quiver-tls/s3/ca.crt" and cfg.storage.s3.client_cert is None
    pulsar = cfg.stream.pulsar
    assert pulsar.service_url == "pulsar+ssl://pulsar.messaging.example.com:6651"
    assert pulsar.tls_trust_certs_file_path == "/etc/quiver-tls/pulsar/ca.crt"
    assert (pulsar.tls_cert_file, pulsar.tls_key_file) == ("/etc/quiver-tls/pulsar/tls.crt",
                                                           "/etc/quiver-tls/pulsar/tls.key")
    for name, deploy in kinds(docs, "Deployment").items():
        mounts = {m["name"]: m["mountPath"] for m in container(deploy)["volumeMounts"]}
        pod = deploy["spec"]["template"]["spec"]
        volumes = {v["name"]: v.get("secret", {}).get("secretName") for v in pod["volumes"]}
        for dep, secret in (("etcd", "etcd-tls"), ("s3", "s3-ca"), ("pulsar", "pulsar-tls")):
            assert mounts[f"tls-{dep}"] == f"/etc/quiver-tls/{dep}", name
            assert volumes[f"tls-{dep}"] == secret, name


def test_without_tls_nothing_changes() -> None:
    docs = render(values_file("external-values.yaml"))
    data = yaml.safe_load(find(docs, "ConfigMap", f"{FULL}-config")["data"]["quiver.yaml"])
    assert "ca_cert" not in data["kv"]["etcd"]
    assert data["stream"]["pulsar"]["service_url"].startswith("pulsar://")
    for deploy in kinds(docs, "Deployment").values():
        assert not [m for m in container(deploy)["volumeMounts"] if m["name"].startswith("tls-")]


def test_s3_tls_without_a_secret_uses_the_image_cas_and_may_skip_verification() -> None:
    values = values_file("external-values.yaml")
    values["externalS3"]["useSSL"] = False
    values["externalS3"]["tls"] = {"enabled": True, "verify": False}
    data = yaml.safe_load(find(render(values), "ConfigMap", f"{FULL}-config")["data"]["quiver.yaml"])
    assert data["storage"]["s3"]["secure"] is True and data["storage"]["s3"]["verify"] is False
    assert "ca_cert" not in data["storage"]["s3"]


@pytest.mark.parametrize(
    ("key", "tls"),
    [("externalEtcd", {"enabled": True}), ("externalPulsar", {"enabled": True, "existingSecret": ""}),
     ("externalS3", {"enabled": True, "clientAuth": True}), ("externalEtcd", {"enabled": True, "bogus": 1})],
)
def test_schema_refuses_tls_without_its_secret(key: str, tls: dict[str, Any]) -> None:
    values = values_file("external-values.yaml")
    values[key]["tls"] = tls
    with pytest.raises(helm.HelmError) as err:
        render(values)
    assert "tls" in str(err.value)
