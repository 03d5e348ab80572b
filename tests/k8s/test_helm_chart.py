"""The Helm chart lints strictly, renders with every values file under helm/quiver/ci/, and every
rendered object is a valid Kubernetes object (kubernetes-validate --strict) on recent versions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s.helm_util import CI_VALUES, NAMESPACE, RELEASE, helm, render, render_raw
from tests.k8s.paths import CHART, KUBE_VERSIONS

kubernetes_validate = pytest.importorskip("kubernetes_validate")

VALUE_SETS = [pytest.param({}, id="defaults")] + [
    pytest.param(yaml.safe_load(p.read_text()), id=p.stem) for p in CI_VALUES
]
# The Prometheus operator's CRD is not part of Kubernetes' schemas: checked by shape instead.
NOT_BUILTIN = {"ServiceMonitor"}


def test_ci_values_cover_the_deployment_modes() -> None:
    assert {p.stem for p in CI_VALUES} >= {"standalone-values", "cluster-values", "external-values", "hpa-values"}


@pytest.mark.parametrize("values", VALUE_SETS)
@pytest.mark.parametrize("kube_version", ["v1.31.0", "v1.34.0"])
def test_lint_is_clean_in_strict_mode(values: dict[str, Any], kube_version: str) -> None:
    report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE, kube_version=kube_version)
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # 2 = warning, 3 = error
    assert report["total_charts_linted"] == 1
    assert not problems and not report["errors"], problems or report["errors"]


@pytest.mark.parametrize("values", VALUE_SETS)
def test_every_rendered_object_validates_strictly(values: dict[str, Any]) -> None:
    docs = render(values)
    assert docs
    checked = 0
    for doc in docs:
        assert doc["metadata"].get("namespace") == NAMESPACE, doc["metadata"]
        if doc["kind"] in NOT_BUILTIN:
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path)
                pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} on {version}: {where}: {exc.message}")
            checked += 1
    assert checked >= len(KUBE_VERSIONS)


def test_kubernetes_validate_cli_accepts_the_default_render(tmp_path: Path) -> None:
    """The same check as a user would run it: ``kubernetes-validate --strict`` on the rendered file."""
    rendered = "\n---\n".join(t for p, t in sorted(render_raw({}).items()) if p.endswith(".yaml") and t.strip())
    manifest = tmp_path / "quiver.yaml"
    manifest.write_text(rendered)
    cmd = [sys.executable, "-m", "kubernetes_validate", "--strict", "--kubernetes-version", "1.34.0", str(manifest)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passed for resource deployment/demo-quiver-proxy" in proc.stdout


def test_notes_tell_how_to_connect() -> None:
    notes = render_raw({})["quiver/templates/NOTES.txt"]
    assert f"port-forward service/{RELEASE}-quiver 19530:19530 9091:9091" in notes
    assert "MilvusClient(uri='http://127.0.0.1:19530')" in notes
    assert f"http://{RELEASE}-quiver.{NAMESPACE}.svc:19530" in notes
    lb = render_raw({"service": {"type": "LoadBalancer"}})["quiver/templates/NOTES.txt"]
    assert "status.loadBalancer.ingress[0].ip" in lb


def test_chart_packages(tmp_path: Path) -> None:
    archive = helm.package(str(CHART), destination=str(tmp_path))
    assert archive.endswith("quiver-0.1.0.tgz")
    with helm.Chart.load(archive) as chart:
        assert chart.metadata["appVersion"] == "0.1.0"
        assert chart.schema is not None
        assert {t["name"] for t in chart.templates} >= {"templates/NOTES.txt", "templates/_helpers.tpl"}
