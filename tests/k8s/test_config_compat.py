"""What the chart and the operator hand to Quiver is what Quiver reads: the generated quiver.yaml
loads into common.config.QuiverConfig with no unknown key (the model would silently ignore
one), and every QUIVER_* variable they set names a real configuration field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from common.config import QuiverConfig, load_config
from tests.k8s.helm_util import find, render, values_file

pytest.importorskip("kubernetes")

from quiver_operator import manifests  # noqa: E402
from quiver_operator.spec import parse_spec  # noqa: E402

CHART_VALUES = ["", "standalone-values.yaml", "cluster-values.yaml", "external-values.yaml", "hpa-values.yaml"]
OPERATOR_SPECS: list[dict[str, Any]] = [
    {"mode": "standalone"},
    {"mode": "cluster", "config": {"query": {"memory_budget_mb": 1024}}},
    {"dependencies": {"etcd": {"external": True, "endpoints": ["e:2379"], "secretRef": "s"},
                      "storage": {"external": True, "endpoint": "https://s3.example.com", "secretRef": "k",
                                  "bucket": "bkt", "region": "eu-west-1"},
                      "pulsar": {"external": True, "endpoint": "p:6650", "tenant": "t", "namespace": "n"}}},
]


def unknown_keys(data: dict[str, Any], model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            out.append(prefix + key)
            continue
        sub = field.annotation
        if isinstance(value, dict) and isinstance(sub, type) and issubclass(sub, BaseModel):
            out += unknown_keys(value, sub, f"{prefix}{key}.")
    return out


def env_field_exists(name: str) -> bool:
    """QUIVER_STORAGE__S3__ACCESS_KEY -> storage.s3.access_key must be a field."""
    model: type[BaseModel] = QuiverConfig
    for part in name.removeprefix("QUIVER_").lower().split("__"):
        field = model.model_fields.get(part)
        if field is None:
            return False
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            model = field.annotation
    return True


def _load(text: str, tmp_path: Path) -> QuiverConfig:
    path = tmp_path / "quiver.yaml"
    path.write_text(text)
    return load_config(str(path))


@pytest.mark.parametrize("name", CHART_VALUES, ids=lambda n: n or "defaults")
def test_chart_config_and_env_are_quivers(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("QUIVER_")]:
        monkeypatch.delenv(var)
    docs = render(values_file(name) if name else {})
    text = find(docs, "ConfigMap", "demo-quiver-config")["data"]["quiver.yaml"]
    assert unknown_keys(yaml.safe_load(text), QuiverConfig) == []
    cfg = _load(text, tmp_path)
    standalone = name == "standalone-values.yaml"
    assert cfg.kv.backend == ("local" if standalone else "etcd")
    assert cfg.storage.backend == ("local" if standalone else "s3")
    assert cfg.stream.backend == ("local" if standalone else "pulsar")
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            for e in doc["spec"]["template"]["spec"]["containers"][0].get("env", []):
                if e["name"].startswith("QUIVER_"):
                    assert env_field_exists(e["name"]), f"{doc['metadata']['name']}: {e['name']} is not a config field"


@pytest.mark.parametrize("spec", OPERATOR_SPECS, ids=["standalone", "cluster", "external"])
def test_operator_config_and_env_are_quivers(spec: dict[str, Any], tmp_path: Path) -> None:
    cluster = parse_spec("qc", "ns", spec)
    text = manifests.config_text(cluster)
    assert unknown_keys(yaml.safe_load(text), QuiverConfig) == []
    cfg = _load(text, tmp_path)
    assert cfg.data_dir == "/var/lib/quiver"
    for key in cluster.role_keys():
        for e in manifests.role_env(cluster, key):
            assert env_field_exists(e["name"]), e["name"]
    if cluster.storage.mode == "external":
        assert (cfg.storage.s3.endpoint, cfg.storage.s3.region) == ("https://s3.example.com", "eu-west-1")
        assert cfg.stream.pulsar.service_url == "pulsar://p:6650"


def test_secrets_reach_the_config_through_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = find(render({}), "ConfigMap", "demo-quiver-config")["data"]["quiver.yaml"]
    monkeypatch.setenv("QUIVER_STORAGE__S3__ACCESS_KEY", "from-secret")
    monkeypatch.setenv("QUIVER_HOST", "10.1.2.3")
    cfg = _load(text, tmp_path)
    assert cfg.storage.s3.access_key == "from-secret" and cfg.host == "10.1.2.3"


def test_external_pulsar_token_is_a_config_field() -> None:
    values = values_file("external-values.yaml")
    values["externalPulsar"]["existingSecret"] = "pulsar-token"
    deploy = find(render(values), "Deployment", "demo-quiver-proxy")
    names = [e["name"] for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert "QUIVER_STREAM__PULSAR__AUTH_TOKEN" in names
    assert env_field_exists("QUIVER_STREAM__PULSAR__AUTH_TOKEN")
