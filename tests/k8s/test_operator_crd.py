"""The QuiverCluster CRD, the deploy manifests and the sample CRs: valid, in sync, and consistent
with what the operator accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s.paths import KUBE_VERSIONS, OPERATOR

jsonschema = pytest.importorskip("jsonschema")
kubernetes_validate = pytest.importorskip("kubernetes_validate")
pytest.importorskip("kubernetes")

from quiver_operator import crd  # noqa: E402
from quiver_operator.spec import SpecError, parse_spec  # noqa: E402

DEPLOY = OPERATOR / "deploy"
SAMPLES = sorted((OPERATOR / "config" / "samples").glob("*.yaml"))


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _schema() -> dict[str, Any]:
    version = crd.crd()["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        out.append((path, node))
        for key, value in node.get("properties", {}).items():
            out += _walk(value, f"{path}.{key}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                out += _walk(node[key], f"{path}[{key}]")
    return out


def test_deploy_crd_is_the_generated_one() -> None:
    assert (DEPLOY / "crd.yaml").read_text() == crd.render(), "run: python -m quiver_operator.crd > deploy/crd.yaml"


def test_crd_shape() -> None:
    doc = _docs(DEPLOY / "crd.yaml")[0]
    spec = doc["spec"]
    assert (spec["group"], spec["scope"], spec["names"]["kind"]) == ("quiver.io", "Namespaced", "QuiverCluster")
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Mode"] == ".spec.mode" and columns["Status"] == ".status.status"
    assert columns["Endpoint"] == ".status.endpoint"


def test_crd_schema_is_structural() -> None:
    for path, node in _walk(_schema()):
        assert "$ref" not in node, path
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path or '<root>'} has no type"


@pytest.mark.parametrize("path", sorted(DEPLOY.glob("*.yaml")), ids=lambda p: p.name)
def test_deploy_manifests_validate(path: Path) -> None:
    docs = _docs(path)
    assert docs
    for doc in docs:
        if doc["kind"] == "Kustomization":
            assert {r for r in doc["resources"]} == {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
            continue
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_operator_deployment_runs_one_standalone_replica() -> None:
    (deploy,) = [d for d in _docs(DEPLOY / "operator.yaml") if d["kind"] == "Deployment"]
    assert deploy["spec"]["replicas"] == 1
    pod = deploy["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "quiver-operator"
    assert pod["securityContext"]["runAsNonRoot"] is True
    rbac = {d["kind"]: d for d in _docs(DEPLOY / "rbac.yaml")}
    verbs = {(g, r): set(rule["verbs"]) for rule in rbac["ClusterRole"]["rules"]
             for g in rule["apiGroups"] for r in rule["resources"]}
    assert {"watch", "list", "patch"} <= verbs[("quiver.io", "quiverclusters")]
    assert "patch" in verbs[("quiver.io", "quiverclusters/status")]
    assert {"create", "patch", "delete"} <= verbs[("apps", "deployments")]
    assert "delete" in verbs[("", "persistentvolumeclaims")]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples_match_the_schema_and_the_operator(path: Path) -> None:
    (sample,) = _docs(path)
    jsonschema.validate(sample, _schema())
    cluster = parse_spec(sample["metadata"]["name"], "default", sample["spec"])
    assert cluster.mode == sample["spec"]["mode"]


def test_samples_cover_both_modes_and_external_dependencies() -> None:
    specs = [_docs(p)[0]["spec"] for p in SAMPLES]
    assert {s["mode"] for s in specs} == {"standalone", "cluster"}
    assert any(s.get("dependencies", {}).get("storage", {}).get("external") for s in specs)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"mode": "serverless"}, "'serverless' is not one of ['standalone', 'cluster']"),
        ({"components": {"queryNode": {"replicas": -1}}}, "-1 is less than the minimum of 0"),
        ({"components": {"queryNode": {"resources": {"limits": {"memory": "lots"}}}}}, "does not match"),
        ({"dependencies": {"etcd": {"inCluster": {"deletionPolicy": "Keep"}}}}, "'Keep' is not one of"),
    ],
)
def test_schema_rejects_bad_specs(spec: dict[str, Any], message: str) -> None:
    cr = {"apiVersion": "quiver.io/v1alpha1", "kind": "QuiverCluster", "metadata": {"name": "x"}, "spec": spec}
    with pytest.raises(jsonschema.ValidationError) as err:
        jsonschema.validate(cr, _schema())
    assert message in err.value.message


@pytest.mark.parametrize("kind", ["etcd", "storage", "pulsar"])
def test_cel_rules_and_the_operator_agree_on_external_dependencies(kind: str) -> None:
    """The CEL rule (checked by the real API server) and parse_spec (the operator) refuse the same spec."""
    node = _schema()["properties"]["spec"]["properties"]["dependencies"]["properties"][kind]
    (rule,) = node["x-kubernetes-validations"]
    assert rule["rule"].startswith("!has(self.external) || !self.external || ")
    assert f"dependencies.{kind}" in rule["message"] and "required when" in rule["message"]
    with pytest.raises(SpecError, match=f"spec.dependencies.{kind}"):
        parse_spec("x", "default", {"dependencies": {kind: {"external": True}}})
