"""Rendering the chart offline with helm-python-sdk (Helm v4's Go SDK, no helm binary)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s.paths import CHART

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")

Obj = dict[str, Any]
RELEASE, NAMESPACE = "demo", "vectors"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))


def values_file(name: str) -> Obj:
    data: Obj = yaml.safe_load((CHART / "ci" / name).read_text()) or {}
    return data


def render_raw(values: Obj | None = None) -> dict[str, str]:
    """Template path -> rendered text (raises helm.HelmError on schema or template failure)."""
    with helm.Chart.load(str(CHART)) as chart:
        out: dict[str, str] = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
        return out


def render(values: Obj | None = None) -> list[Obj]:
    docs: list[Obj] = []
    for path, text in sorted(render_raw(values).items()):
        if path.endswith(".yaml"):
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def find(docs: list[Obj], kind: str, name: str) -> Obj:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} {name} in {[(d['kind'], d['metadata']['name']) for d in docs]}")


def kinds(docs: list[Obj], kind: str) -> dict[str, Obj]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def container(deploy: Obj) -> Obj:
    c: Obj = deploy["spec"]["template"]["spec"]["containers"][0]
    return c


def env(deploy: Obj) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(deploy).get("env", [])}


def values_path(name: str) -> Path:
    return CHART / "ci" / name
