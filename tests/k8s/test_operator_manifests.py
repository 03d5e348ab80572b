"""The operator's pure parts: spec parsing and the manifests it builds from a QuiverCluster."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.k8s.paths import KUBE_VERSIONS

kubernetes_validate = pytest.importorskip("kubernetes_validate")
pytest.importorskip("kubernetes")

from quiver_operator import deps, manifests  # noqa: E402
from quiver_operator.spec import SpecError, parse_spec  # noqa: E402

OWNER = manifests.owner_reference("qc", "0000-1111")
CLUSTER_SPEC: dict[str, Any] = {
    "mode": "cluster",
    "components": {
        "image": "quiver/quiver:0.1.0",
        "queryNode": {"replicas": 3, "resources": {"limits": {"memory": "8Gi"}}, "env": [{"name": "A", "value": "1"}]},
        "proxy": {"replicas": 2, "image": "quiver/quiver:0.1.1", "serviceType": "LoadBalancer"},
        "mixCoord": {"replicas": 2},
    },
    "dependencies": {"etcd": {"inCluster": {"replicas": 3, "deletionPolicy": "Delete", "pvcDeletion": True}}},
    "config": {"query": {"search_threads": 8}, "kv": {"etcd": {"root_path": "custom"}}},
}


def _all_objects(spec: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = parse_spec("qc", "ns1", spec)
    objs = [manifests.config_map(cluster, OWNER), manifests.proxy_service(cluster, OWNER)]
    objs += [manifests.deployment(cluster, k, cluster.components[k].image, OWNER) for k in cluster.role_keys()]
    if cluster.mode == "standalone":
        objs.append(manifests.data_pvc(cluster))
    for dep in cluster.dependencies:
        objs += deps.dependency_objects(cluster, dep, OWNER)
    objs.append(deps.minio_secret(cluster, "a" * 20, "b" * 40, None))
    return objs


def test_cluster_spec_builds_one_deployment_per_role() -> None:
    cluster = parse_spec("qc", "ns1", CLUSTER_SPEC)
    deploys = {k: manifests.deployment(cluster, k, cluster.components[k].image, OWNER) for k in cluster.role_keys()}
    assert {d["metadata"]["name"] for d in deploys.values()} == {
        "qc-quiver-coord", "qc-quiver-datanode", "qc-quiver-indexnode", "qc-quiver-querynode", "qc-quiver-proxy"}
    assert deploys["queryNode"]["spec"]["replicas"] == 3
    assert deploys["proxy"]["spec"]["replicas"] == 2
    assert deploys["dataNode"]["spec"]["replicas"] == 1
    assert deploys["proxy"]["spec"]["template"]["spec"]["containers"][0]["image"] == "quiver/quiver:0.1.1"
    qn = deploys["queryNode"]["spec"]["template"]["spec"]["containers"][0]
    assert qn["image"] == "quiver/quiver:0.1.0"
    assert qn["args"] == ["run", "querynode", "--config", "/etc/quiver/quiver.yaml", "--data-dir", "/var/lib/quiver",
                          "--internal-port", "21002"]
    assert qn["resources"] == {"limits": {"memory": "8Gi"}}
    assert {"name": "A", "value": "1"} in qn["env"]
    assert qn["readinessProbe"]["tcpSocket"] == {"port": "internal"}
    proxy = deploys["proxy"]["spec"]["template"]["spec"]["containers"][0]
    assert proxy["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    # Two coordinators: active/standby, rolled one at a time, no port probes (the standby has none open).
    coord = deploys["mixCoord"]
    assert cluster.active_standby
    assert coord["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert "readinessProbe" not in coord["spec"]["template"]["spec"]["containers"][0]
    for d in deploys.values():
        assert d["metadata"]["ownerReferences"] == [OWNER]


def test_config_points_at_in_cluster_dependencies_and_merges_overrides() -> None:
    cfg = manifests.quiver_config(parse_spec("qc", "ns1", CLUSTER_SPEC))
    etcd = {"endpoints": ["qc-quiver-etcd.ns1.svc:2379"], "root_path": "custom"}
    assert cfg["kv"] == {"backend": "etcd", "etcd": etcd}
    assert cfg["storage"]["s3"]["endpoint"] == "qc-quiver-minio.ns1.svc:9000"
    assert cfg["stream"]["pulsar"]["service_url"] == "pulsar://qc-quiver-pulsar.ns1.svc:6650"
    assert cfg["query"] == {"search_threads": 8}
    cm = manifests.config_map(parse_spec("qc", "ns1", CLUSTER_SPEC), OWNER)
    assert yaml.safe_load(cm["data"]["quiver.yaml"]) == cfg


def test_external_dependencies() -> None:
    spec = {
        "dependencies": {
            "etcd": {"external": True, "endpoints": ["e1:2379", "e2:2379"], "secretRef": "etcd-auth"},
            "storage": {"external": True, "endpoint": "s3.example.com:443", "secure": True, "bucket": "b1",
                        "secretRef": "s3-keys"},
            "pulsar": {"external": True, "endpoint": "pulsar.example.com:6650", "tenant": "t"},
        }
    }
    cluster = parse_spec("qc", "ns1", spec)
    cfg = manifests.quiver_config(cluster)
    assert cfg["kv"]["etcd"]["endpoints"] == ["e1:2379", "e2:2379"]
    assert cfg["storage"]["s3"] == {"endpoint": "s3.example.com:443", "bucket": "b1", "secure": True}
    assert cfg["stream"]["pulsar"] == {"service_url": "pulsar://pulsar.example.com:6650", "tenant": "t"}
    assert all(deps.dependency_objects(cluster, d, OWNER) == [] for d in cluster.dependencies)
    env = {e["name"]: e.get("valueFrom") for e in manifests.role_env(cluster, "dataNode")}
    assert env["QUIVER_STORAGE__S3__ACCESS_KEY"] == {"secretKeyRef": {"name": "s3-keys", "key": "accesskey"}}
    assert env["QUIVER_KV__ETCD__USER"] == {"secretKeyRef": {"name": "etcd-auth", "key": "username"}}
    assert env["QUIVER_HOST"] == {"fieldRef": {"fieldPath": "status.podIP"}}


def test_standalone_uses_embedded_backends_and_a_pvc_without_owner() -> None:
    cluster = parse_spec("dev", "ns1", {"mode": "standalone", "components": {"standalone": {"storageSize": "5Gi"}}})
    assert cluster.role_keys() == ["standalone"]
    cfg = manifests.quiver_config(cluster)
    assert (cfg["kv"]["backend"], cfg["storage"]["backend"], cfg["stream"]["backend"]) == ("local", "local", "local")
    deploy = manifests.deployment(cluster, "standalone", "quiver/quiver:0.1.0", OWNER)
    assert deploy["spec"]["replicas"] == 1 and deploy["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in deploy["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "persistentVolumeClaim": {"claimName": "dev-quiver-data"}}
    pvc = manifests.data_pvc(cluster)
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert "ownerReferences" not in pvc["metadata"]
    svc = manifests.proxy_service(cluster, OWNER)
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "standalone"
    # An explicit inCluster block brings that dependency in, even in standalone mode.
    with_etcd = parse_spec("dev", "ns1", {"mode": "standalone", "dependencies": {"etcd": {"inCluster": {}}}})
    assert with_etcd.etcd.mode == "incluster" and with_etcd.storage.mode == "embedded"


def test_dependency_ownership_follows_the_deletion_policy() -> None:
    cluster = parse_spec("qc", "ns1", CLUSTER_SPEC)
    etcd_objs = deps.dependency_objects(cluster, cluster.etcd, OWNER)
    assert [o["kind"] for o in etcd_objs] == ["Service", "Service", "StatefulSet"]
    assert all(o["metadata"]["ownerReferences"] == [OWNER] for o in etcd_objs)  # deletionPolicy: Delete
    sts = etcd_objs[-1]
    assert sts["spec"]["replicas"] == 3
    env = {e["name"]: e.get("value") for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ETCD_INITIAL_CLUSTER"].count("=http://qc-quiver-etcd-") == 3
    minio = deps.dependency_objects(cluster, cluster.storage, OWNER)
    assert all("ownerReferences" not in o["metadata"] for o in minio)  # Retain is the default
    assert deps.claim_selector(cluster, cluster.etcd) == (
        "app.kubernetes.io/name=quiver,app.kubernetes.io/instance=qc,app.kubernetes.io/component=etcd")


@pytest.mark.parametrize("spec", [CLUSTER_SPEC, {"mode": "standalone"}], ids=["cluster", "standalone"])
def test_built_objects_are_valid_kubernetes_objects(spec: dict[str, Any]) -> None:
    objs = _all_objects(spec)
    for obj in objs:
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"mode": "serverless"}, "spec.mode must be standalone or cluster"),
        ({"components": {"proxy": {"replicas": -2}}}, "spec.components.proxy.replicas must be a non-negative"),
        ({"dependencies": {"etcd": {"external": True}}}, "spec.dependencies.etcd.endpoints is empty"),
        ({"dependencies": {"pulsar": {"external": True}}}, "spec.dependencies.pulsar.endpoint is empty"),
        ({"dependencies": {"storage": {"external": True, "endpoint": "s3:9000"}}}, "needs secretRef"),
        ({"dependencies": {"etcd": {"inCluster": {"replicas": 2}}}}, "must be odd"),
        ({"dependencies": {"etcd": {"inCluster": {"deletionPolicy": "Keep"}}}}, "must be Retain or Delete"),
    ],
)
def test_invalid_specs_are_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec("qc", "ns1", spec)


def test_deep_merge_replaces_lists_and_keeps_siblings() -> None:
    base: dict[str, Any] = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert manifests.deep_merge(base, {"a": {"c": [3]}, "e": 2}) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base["a"]["c"] == [1, 2]
