"""The real operator (``python -m quiver_operator``, i.e. ``kopf run --standalone``) in a subprocess,
against the fake API server on 127.0.0.1 through a kubeconfig: create a QuiverCluster, scale a
role, change the image (staged rollout), delete it (cascade, finalizer, PVC policy)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s.paths import OPERATOR, ROOT

pytest.importorskip("kopf")
pytest.importorskip("kubernetes")

from tests.k8s.fake_apiserver import FakeApiServer  # noqa: E402
from tests.k8s.fake_store import ApiError, ResourceType  # noqa: E402

NS = "quiver-test"
OLD, NEW = "quiver/quiver:0.1.0", "quiver/quiver:0.2.0"
ROLES = ("coord", "datanode", "indexnode", "querynode", "proxy")


class Cluster:
    """Test-side view of the fake cluster and the operator process."""

    def __init__(self, api: FakeApiServer, log: Path) -> None:
        self.api, self.log = api, log

    def rt(self, api_version: str, kind: str) -> ResourceType:
        return self.api.store.by_kind(api_version, kind)

    def get(self, kind: str, name: str, api_version: str = "") -> dict[str, Any] | None:
        api_version = api_version or {"Deployment": "apps/v1", "StatefulSet": "apps/v1",
                                      "QuiverCluster": "quiver.io/v1alpha1"}.get(kind, "v1")
        try:
            return self.api.store.get(self.rt(api_version, kind), NS, name)
        except ApiError:
            return None

    def qc(self, name: str) -> dict[str, Any] | None:
        return self.get("QuiverCluster", name)

    def create(self, obj: dict[str, Any]) -> None:
        self.api.store.create(self.rt(obj["apiVersion"], obj["kind"]), NS, obj)

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        from tests.k8s.fake_apiserver import _merge_patch

        self.api.store.update(self.rt("quiver.io/v1alpha1", "QuiverCluster"), NS, name,
                              lambda o: _merge_patch(o, {"spec": spec}))

    def delete(self, name: str) -> None:
        self.api.store.delete(self.rt("quiver.io/v1alpha1", "QuiverCluster"), NS, name)

    def status(self, name: str) -> str | None:
        return ((self.qc(name) or {}).get("status") or {}).get("status")

    def has_status(self, name: str, value: str) -> bool:
        return self.status(name) == value

    def gone(self, name: str) -> bool:
        return self.qc(name) is None

    def image(self, name: str) -> str | None:
        deploy = self.get("Deployment", name)
        return deploy["spec"]["template"]["spec"]["containers"][0]["image"] if deploy else None

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(0.1)
        tail = "\n".join(self.log.read_text().splitlines()[-40:])
        pytest.fail(f"timed out waiting for {what}; operator log tail:\n{tail}")


@pytest.fixture(scope="module")
def k8s(fake_api: FakeApiServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    crd = yaml.safe_load((OPERATOR / "deploy" / "crd.yaml").read_text())
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    fake_api.store.create(fake_api.store.by_kind("v1", "Namespace"), "", namespace)
    fake_api.store.create(fake_api.store.by_kind("apiextensions.k8s.io/v1", "CustomResourceDefinition"), "", crd)
    work = tmp_path_factory.mktemp("operator")
    kubeconfig = work / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(fake_api.kubeconfig(NS)))
    log = work / "operator.log"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONPATH": f"{OPERATOR}{os.pathsep}{ROOT}",
           "QUIVER_OPERATOR_STATUS_INTERVAL": "1", "QUIVER_OPERATOR_RETRY_DELAY": "0.5", "HOME": str(work)}
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "quiver_operator", "--namespace", NS, "--verbose"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=work)
    try:
        yield Cluster(fake_api, log)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _cr(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "quiver.io/v1alpha1", "kind": "QuiverCluster", "metadata": {"name": name}, "spec": spec}


def _conditions(qc: dict[str, Any] | None) -> dict[str, str]:
    return {c["type"]: c["status"] for c in ((qc or {}).get("status") or {}).get("conditions", [])}


def test_cluster_create_scale_upgrade_delete(k8s: Cluster) -> None:
    spec = {
        "mode": "cluster",
        "components": {"image": OLD, "queryNode": {"replicas": 2}},
        "dependencies": {
            "etcd": {"inCluster": {"deletionPolicy": "Delete", "pvcDeletion": True}},
            "storage": {"inCluster": {"deletionPolicy": "Retain"}},
            "pulsar": {"inCluster": {"deletionPolicy": "Delete"}},
        },
        "config": {"query": {"search_threads": 2}},
    }
    k8s.create(_cr("prod", spec))
    base = "prod-quiver"

    # Create: every object, then a Healthy status with the endpoint and the finalizer in place.
    k8s.wait("the five role Deployments", lambda: all(k8s.get("Deployment", f"{base}-{r}") for r in ROLES))
    assert k8s.get("Deployment", f"{base}-querynode")["spec"]["replicas"] == 2  # type: ignore[index]
    assert k8s.get("Deployment", f"{base}-proxy")["spec"]["replicas"] == 1  # type: ignore[index]
    svc = k8s.get("Service", base)
    assert svc is not None and {p["port"] for p in svc["spec"]["ports"]} == {19530, 9091}
    config = yaml.safe_load(k8s.get("ConfigMap", f"{base}-config")["data"]["quiver.yaml"])  # type: ignore[index]
    assert config["kv"]["etcd"]["endpoints"] == [f"{base}-etcd.{NS}.svc:2379"]
    assert config["query"]["search_threads"] == 2
    for sts in ("etcd", "minio", "pulsar"):
        assert k8s.get("StatefulSet", f"{base}-{sts}") is not None
    secret = k8s.get("Secret", f"{base}-minio")
    assert secret is not None and len(secret["stringData"]["secretkey"]) == 40
    qc = k8s.wait("a Healthy status", lambda: (k8s.qc("prod") or {}).get("status", {}).get("status") == "Healthy"
                  and k8s.qc("prod"))
    assert qc["status"]["endpoint"] == f"{base}.{NS}:19530"
    assert set(_conditions(qc).values()) == {"True"}
    assert set(_conditions(qc)) == {"EtcdReady", "StorageReady", "PulsarReady", "QuiverReady"}
    assert "quiver.io/finalizer" in qc["metadata"]["finalizers"]

    # Scale one role: only its Deployment changes.
    before = {r: k8s.get("Deployment", f"{base}-{r}")["metadata"]["generation"] for r in ROLES}  # type: ignore[index]
    k8s.patch_spec("prod", {"components": {"queryNode": {"replicas": 4}}})
    k8s.wait("querynode at 4 replicas",
             lambda: k8s.get("Deployment", f"{base}-querynode")["spec"]["replicas"] == 4)  # type: ignore[index]
    k8s.wait("status.replicas.queryNode == 4",
             lambda: (k8s.qc("prod") or {}).get("status", {}).get("replicas", {}).get("queryNode") == 4)
    after = {r: k8s.get("Deployment", f"{base}-{r}")["metadata"]["generation"] for r in ROLES}  # type: ignore[index]
    assert {r for r in ROLES if after[r] != before[r]} == {"querynode"}

    # Image change: coord first; the workers wait for it, the proxy waits for the workers.
    k8s.api.hold("Deployment", f"{base}-coord")
    k8s.api.hold("Deployment", f"{base}-querynode")
    k8s.patch_spec("prod", {"components": {"image": NEW}})
    k8s.wait("coord on the new image", lambda: k8s.image(f"{base}-coord") == NEW)
    time.sleep(2.0)  # several retries of the handler
    assert [k8s.image(f"{base}-{r}") for r in ROLES[1:]] == [OLD] * 4
    k8s.wait("a RollingOut condition", lambda: any(
        c["type"] == "QuiverReady" and c.get("reason") == "RollingOut"
        for c in (k8s.qc("prod") or {}).get("status", {}).get("conditions", [])))
    k8s.api.release("Deployment", NS, f"{base}-coord")
    k8s.wait("the workers on the new image", lambda: all(k8s.image(f"{base}-{r}") == NEW for r in ROLES[1:4]))
    time.sleep(1.5)
    assert k8s.image(f"{base}-proxy") == OLD  # querynode is not available yet
    k8s.api.release("Deployment", NS, f"{base}-querynode")
    k8s.wait("the proxy on the new image", lambda: k8s.image(f"{base}-proxy") == NEW)
    k8s.wait("Healthy again", lambda: (k8s.qc("prod") or {}).get("status", {}).get("status") == "Healthy")
    order = [ev.obj["metadata"]["name"].removeprefix(f"{base}-") for ev in k8s.api.store.history
             if ev.rt.kind == "Deployment" and ev.type == "MODIFIED"
             and ev.obj["spec"]["template"]["spec"]["containers"][0]["image"] == NEW]
    first = {r: order.index(r) for r in ROLES}
    assert first["coord"] < min(first[r] for r in ROLES[1:4]) and max(first[r] for r in ROLES[1:4]) < first["proxy"]

    # Delete: the finalizer runs, children cascade, Retain keeps MinIO and its PVC, etcd's PVC goes.
    labels = {"app.kubernetes.io/name": "quiver", "app.kubernetes.io/instance": "prod"}
    for comp in ("etcd", "minio"):
        pvc_meta = {"name": f"data-{base}-{comp}-0", "labels": {**labels, "app.kubernetes.io/component": comp}}
        k8s.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": pvc_meta,
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    k8s.delete("prod")
    k8s.wait("the QuiverCluster to go", lambda: k8s.qc("prod") is None)
    for role in ROLES:
        assert k8s.get("Deployment", f"{base}-{role}") is None
    assert k8s.get("Service", base) is None and k8s.get("ConfigMap", f"{base}-config") is None
    assert k8s.get("StatefulSet", f"{base}-etcd") is None and k8s.get("StatefulSet", f"{base}-pulsar") is None
    assert k8s.get("StatefulSet", f"{base}-minio") is not None and k8s.get("Secret", f"{base}-minio") is not None
    assert k8s.get("PersistentVolumeClaim", f"data-{base}-etcd-0") is None
    assert k8s.get("PersistentVolumeClaim", f"data-{base}-minio-0") is not None


def test_standalone_keeps_its_pvc_unless_data_deletion(k8s: Cluster) -> None:
    k8s.create(_cr("keep", {"mode": "standalone", "components": {"image": OLD}}))
    k8s.create(_cr("wipe", {"mode": "standalone", "dataDeletion": True}))
    for name in ("keep", "wipe"):
        k8s.wait(f"{name} Healthy", functools.partial(k8s.has_status, name, "Healthy"))
        deploy = k8s.get("Deployment", f"{name}-quiver-standalone")
        assert deploy is not None and deploy["spec"]["template"]["spec"]["containers"][0]["args"][1] == "standalone"
        assert k8s.get("PersistentVolumeClaim", f"{name}-quiver-data") is not None
        assert _conditions(k8s.qc(name))["EtcdReady"] == "True"  # embedded
        assert k8s.get("StatefulSet", f"{name}-quiver-etcd") is None
        k8s.delete(name)
    for name in ("keep", "wipe"):
        k8s.wait(f"{name} deleted", functools.partial(k8s.gone, name))
        assert k8s.get("Deployment", f"{name}-quiver-standalone") is None
    assert k8s.get("PersistentVolumeClaim", "keep-quiver-data") is not None
    assert k8s.get("PersistentVolumeClaim", "wipe-quiver-data") is None


def test_invalid_spec_is_reported_in_the_status(k8s: Cluster) -> None:
    k8s.create(_cr("broken", {"dependencies": {"etcd": {"external": True}}}))
    qc = k8s.wait("an Invalid status", lambda: (k8s.qc("broken") or {}).get("status", {}).get("status") == "Invalid"
                  and k8s.qc("broken"))
    assert "spec.dependencies.etcd.endpoints is empty" in qc["status"]["message"]
    assert k8s.get("Deployment", "broken-quiver-proxy") is None
    k8s.patch_spec("broken", {"dependencies": {"etcd": {"external": False}}})
    k8s.wait("the fixed cluster", lambda: k8s.get("Deployment", "broken-quiver-proxy") is not None)
    k8s.wait("no message once valid", lambda: "message" not in (k8s.qc("broken") or {}).get("status", {"message": 1}))
    k8s.delete("broken")
    k8s.wait("broken deleted", lambda: k8s.qc("broken") is None)


def test_switching_standalone_to_cluster_replaces_the_deployments(k8s: Cluster) -> None:
    k8s.create(_cr("grow", {"mode": "standalone", "dependencies": {"etcd": {"inCluster": {}}}}))
    k8s.wait("grow Healthy", functools.partial(k8s.has_status, "grow", "Healthy"))
    assert k8s.get("StatefulSet", "grow-quiver-etcd") is not None  # an explicit inCluster block
    assert k8s.get("StatefulSet", "grow-quiver-minio") is None
    k8s.patch_spec("grow", {"mode": "cluster"})
    k8s.wait("the role Deployments", lambda: all(k8s.get("Deployment", f"grow-quiver-{r}") for r in ROLES))
    k8s.wait("no standalone Deployment", lambda: k8s.get("Deployment", "grow-quiver-standalone") is None)
    svc = k8s.get("Service", "grow-quiver")
    assert svc is not None and svc["spec"]["selector"]["app.kubernetes.io/component"] == "proxy"
    assert k8s.get("StatefulSet", "grow-quiver-minio") is not None  # cluster mode needs every dependency
    k8s.wait("grow Healthy as a cluster", lambda: (k8s.qc("grow") or {}).get("status", {}).get("mode") == "cluster"
             and k8s.has_status("grow", "Healthy"))
    k8s.delete("grow")
    k8s.wait("grow deleted", functools.partial(k8s.gone, "grow"))
