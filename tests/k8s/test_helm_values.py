"""What the chart renders for each mode, and which values it refuses (with what message)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.k8s.helm_util import NAMESPACE, RELEASE, container, env, find, helm, kinds, render, values_file
from tests.k8s.paths import CHART

FULL = f"{RELEASE}-quiver"
ROLES = {"proxy": 21000, "coord": 21001, "querynode": 21002, "datanode": 21003, "indexnode": 21004}


def _config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(find(docs, "ConfigMap", f"{FULL}-config")["data"]["quiver.yaml"])
    return data


def test_cluster_mode_has_one_deployment_per_role_with_its_replicas() -> None:
    docs = render(values_file("cluster-values.yaml"))
    deploys = kinds(docs, "Deployment")
    assert set(deploys) == {f"{FULL}-{r}" for r in ROLES}
    replicas = {name.removeprefix(f"{FULL}-"): d["spec"]["replicas"] for name, d in deploys.items()}
    assert replicas == {"proxy": 2, "coord": 2, "querynode": 3, "datanode": 2, "indexnode": 1}
    for role, port in ROLES.items():
        c = container(deploys[f"{FULL}-{role}"])
        assert c["image"] == "registry.example.com/quiver:0.1.0"
        assert c["args"][:4] == ["run", role, "--config", "/etc/quiver/quiver.yaml"]
        assert c["args"][c["args"].index("--internal-port") + 1] == str(port)
        assert {"name": "internal", "containerPort": port, "protocol": "TCP"} in c["ports"]
    qn = deploys[f"{FULL}-querynode"]["spec"]["template"]["spec"]
    assert qn["nodeSelector"] == {"quiver.io/pool": "query"}  # the role's own wins over the global one
    assert qn["tolerations"][0]["key"] == "dedicated"
    assert "podAntiAffinity" in qn["affinity"]
    assert container(deploys[f"{FULL}-querynode"])["resources"]["limits"]["memory"] == "16Gi"
    assert env(deploys[f"{FULL}-querynode"])["QUIVER_QUERY__MEMORY_BUDGET_MB"] == "12000"
    assert deploys[f"{FULL}-datanode"]["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}


def test_probes_http_for_the_proxy_tcp_for_the_others() -> None:
    deploys = kinds(render({}), "Deployment")
    proxy = container(deploys[f"{FULL}-proxy"])
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert proxy[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    for role in ("coord", "querynode", "datanode", "indexnode"):
        c = container(deploys[f"{FULL}-{role}"])
        assert c["livenessProbe"]["tcpSocket"] == {"port": "internal"}
        assert c["readinessProbe"]["tcpSocket"] == {"port": "internal"}
    # A single coordinator is replaced, never doubled (the new one would wait on the old lease).
    assert deploys[f"{FULL}-coord"]["spec"]["strategy"] == {"type": "Recreate"}


def test_active_standby_coordinators_roll_one_at_a_time_without_port_probes() -> None:
    coord = kinds(render(values_file("cluster-values.yaml")), "Deployment")[f"{FULL}-coord"]
    assert coord["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert not {"livenessProbe", "readinessProbe", "startupProbe"} & set(container(coord))


def test_roles_advertise_their_pod_ip_and_the_proxy_binds_all() -> None:
    deploys = kinds(render({}), "Deployment")
    assert env(deploys[f"{FULL}-proxy"])["QUIVER_HOST"] == "0.0.0.0"
    assert env(deploys[f"{FULL}-querynode"])["QUIVER_HOST"] == {"fieldRef": {"fieldPath": "status.podIP"}}


def test_in_cluster_dependencies_and_config() -> None:
    docs = render({})
    sts = kinds(docs, "StatefulSet")
    assert set(sts) == {f"{FULL}-etcd", f"{FULL}-minio", f"{FULL}-pulsar"}
    assert sts[f"{FULL}-pulsar"]["spec"]["template"]["spec"]["containers"][0]["image"] == "apachepulsar/pulsar:3.0.7"
    cfg = _config(docs)
    assert cfg["kv"] == {"backend": "etcd", "etcd": {"endpoints": [f"{FULL}-etcd.{NAMESPACE}.svc:2379"],
                                                      "root_path": RELEASE}}
    assert cfg["storage"]["backend"] == "s3"
    assert cfg["storage"]["s3"]["endpoint"] == f"{FULL}-minio.{NAMESPACE}.svc:9000"
    assert cfg["stream"]["pulsar"]["service_url"] == f"pulsar://{FULL}-pulsar.{NAMESPACE}.svc:6650"
    secret = find(docs, "Secret", f"{FULL}-minio")
    assert secret["stringData"] == {"accesskey": "minioadmin", "secretkey": "minioadmin"}
    keys = env(find(docs, "Deployment", f"{FULL}-datanode"))["QUIVER_STORAGE__S3__ACCESS_KEY"]
    assert keys == {"secretKeyRef": {"name": f"{FULL}-minio", "key": "accesskey"}}
    etcd_container = sts[f"{FULL}-etcd"]["spec"]["template"]["spec"]["containers"][0]
    etcd_env = {e["name"]: e.get("value") for e in etcd_container["env"]}
    assert etcd_env["ETCD_INITIAL_CLUSTER"].count("=http://") == 1
    three = kinds(render(values_file("cluster-values.yaml")), "StatefulSet")[f"{FULL}-etcd"]
    assert three["spec"]["replicas"] == 3


def test_user_config_is_merged_into_the_quiver_yaml() -> None:
    cfg = _config(render(values_file("cluster-values.yaml")))
    assert cfg["data"] == {"segment_max_rows": 500000}
    assert cfg["kv"]["backend"] == "etcd"  # the chart's keys stay


def test_proxy_service_ports_and_type() -> None:
    svc = find(render({}), "Service", FULL)
    assert svc["spec"]["type"] == "ClusterIP"
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]}
    assert ports == {"milvus": (19530, "milvus"), "http": (9091, "http")}
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "proxy"
    lb = find(render(values_file("hpa-values.yaml")), "Service", FULL)
    assert lb["spec"]["type"] == "LoadBalancer"
    assert lb["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8"]


def test_standalone_is_one_deployment_with_a_pvc_and_embedded_backends() -> None:
    docs = render(values_file("standalone-values.yaml"))
    assert {d["kind"] for d in docs} == {"ConfigMap", "Deployment", "PersistentVolumeClaim", "Service"}
    deploy = find(docs, "Deployment", f"{FULL}-standalone")
    assert deploy["spec"]["replicas"] == 1 and deploy["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in deploy["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == f"{FULL}-data"
    pvc = find(docs, "PersistentVolumeClaim", f"{FULL}-data")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert pvc["spec"]["storageClassName"] == "standard"
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    c = container(deploy)
    assert c["args"][:2] == ["run", "standalone"] and "--internal-port" not in c["args"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert env(deploy)["QUIVER_SHARDS_NUM"] == "2"
    cfg = _config(docs)
    assert (cfg["kv"]["backend"], cfg["storage"]["backend"], cfg["stream"]["backend"]) == ("local", "local", "local")
    assert find(docs, "Service", FULL)["spec"]["selector"]["app.kubernetes.io/component"] == "standalone"


def test_external_dependencies_use_endpoints_and_existing_secrets() -> None:
    docs = render(values_file("external-values.yaml"))
    assert not kinds(docs, "StatefulSet") and not kinds(docs, "Secret")
    cfg = _config(docs)
    assert cfg["kv"]["etcd"]["endpoints"] == ["etcd-a.db.example.com:2379", "etcd-b.db.example.com:2379"]
    assert cfg["storage"]["s3"] == {"endpoint": "s3.us-east-1.amazonaws.com:443", "bucket": "quiver-prod",
                                    "secure": True, "region": "us-east-1"}
    assert cfg["storage"]["root_path"] == "quiver/prod"
    assert cfg["stream"]["pulsar"] == {"service_url": "pulsar://pulsar.messaging.example.com:6650",
                                       "tenant": "quiver", "namespace": "prod"}
    e = env(find(docs, "Deployment", f"{FULL}-querynode"))
    assert e["QUIVER_STORAGE__S3__SECRET_KEY"] == {"secretKeyRef": {"name": "quiver-s3-keys",
                                                                    "key": "AWS_SECRET_ACCESS_KEY"}}
    assert e["QUIVER_KV__ETCD__PASSWORD"] == {"secretKeyRef": {"name": "quiver-etcd-auth", "key": "password"}}


def test_hpa_objects_and_deployments_without_replicas() -> None:
    docs = render(values_file("hpa-values.yaml"))
    hpas = kinds(docs, "HorizontalPodAutoscaler")
    assert set(hpas) == {f"{FULL}-proxy", f"{FULL}-querynode"}
    proxy = hpas[f"{FULL}-proxy"]["spec"]
    assert proxy["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{FULL}-proxy"}
    assert (proxy["minReplicas"], proxy["maxReplicas"]) == (2, 10)
    assert [m["resource"]["name"] for m in hpas[f"{FULL}-querynode"]["spec"]["metrics"]] == ["cpu", "memory"]
    deploys = kinds(docs, "Deployment")
    assert "replicas" not in deploys[f"{FULL}-proxy"]["spec"]
    assert "replicas" not in deploys[f"{FULL}-querynode"]["spec"]
    assert deploys[f"{FULL}-datanode"]["spec"]["replicas"] == 1


def test_pod_disruption_budgets_and_service_monitor() -> None:
    docs = render(values_file("cluster-values.yaml"))
    pdbs = kinds(docs, "PodDisruptionBudget")
    assert set(pdbs) == {f"{FULL}-{r}" for r in ROLES}
    assert pdbs[f"{FULL}-querynode"]["spec"]["maxUnavailable"] == 1
    sm = find(docs, "ServiceMonitor", FULL)
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    assert sm["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}]
    assert sm["spec"]["selector"]["matchLabels"] == find(docs, "Service", FULL)["spec"]["selector"]
    assert not kinds(render({}), "ServiceMonitor")


def test_config_checksum_rolls_pods_when_the_config_changes() -> None:
    def checksum(values: dict[str, Any]) -> str:
        deploy = find(render(values), "Deployment", f"{FULL}-querynode")
        return str(deploy["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum({}) == checksum({})
    assert checksum({}) != checksum({"config": {"query": {"search_threads": 8}}})


BAD_VALUES = [
    ({"proxy": {"replicas": -1}}, "at '/proxy/replicas': minimum: got -1, want 0"),
    ({"queryNode": {"replicas": "three"}}, "at '/queryNode/replicas': got string, want integer"),
    ({"minio": {"mode": "distributed"}}, "at '/minio/mode': value must be 'standalone'"),
    ({"service": {"type": "Ingress"}}, "at '/service/type': value must be one of 'ClusterIP', 'NodePort'"),
    ({"cluster": {"enabled": "yes"}}, "at '/cluster/enabled': got string, want boolean"),
    ({"etcd": {"replicaCount": 2}}, "at '/etcd/replicaCount': value must be one of 1, 3, 5, 7"),
    ({"externalEtcd": {"enabled": True}}, "at '/externalEtcd/endpoints': minItems: got 0, want 1"),
    ({"externalS3": {"enabled": True, "bucketName": "b-1"}}, "at '/externalS3/host': minLength: got 0, want 1"),
    ({"externalPulsar": {"enabled": True}}, "at '/externalPulsar/host': minLength: got 0, want 1"),
    ({"etcd": {"enabled": False}}, "cluster mode needs etcd: set etcd.enabled=true, or externalEtcd.enabled=true"),
    ({"pulsarv3": {"enabled": False}}, "cluster mode needs Pulsar"),
    ({"pulsar": {"enabled": True}}, "pulsar.enabled and pulsarv3.enabled are both true"),
    ({"mixCoordinator": {"replicas": 2}}, "mixCoordinator.replicas > 1 needs mixCoordinator.activeStandby"),
    ({"queryNode": {"hpa": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}},
     "queryNode.hpa.minReplicas (5) is greater than queryNode.hpa.maxReplicas (2)"),
    ({"externalS3": {"enabled": True, "host": "s3", "bucketName": "bkt"}}, "externalS3 needs credentials"),
]


@pytest.mark.parametrize(("values", "message"), BAD_VALUES, ids=[m[:40] for _, m in BAD_VALUES])
def test_bad_values_are_rejected_with_a_clear_message(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError) as err:
        render(values)
    assert message in str(err.value)


@pytest.mark.parametrize("name", ["", "standalone-values.yaml", "cluster-values.yaml", "external-values.yaml"])
def test_schema_is_plain_draft_07_that_other_validators_accept(name: str) -> None:
    """Older Helm 3 releases validate with a draft-07 library: keep the schema to that draft."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    with helm.Chart.load(str(CHART)) as chart:
        merged = chart.merge_values(values_file(name) if name else {})
    jsonschema.Draft7Validator(schema).validate(merged)
    bad = {**merged, "proxy": {**merged["proxy"], "replicas": -3}}
    assert not jsonschema.Draft7Validator(schema).is_valid(bad)


def test_schema_alone_rejects_bad_values() -> None:
    with helm.Chart.load(str(CHART)) as chart:
        with pytest.raises(helm.HelmValuesError, match="minimum: got -1, want 0"):
            chart.validate_schema(chart.merge_values({"dataNode": {"replicas": -1}}))
        chart.validate_schema(chart.merge_values(values_file("external-values.yaml")))


def test_dependencies_without_persistence_use_empty_dirs() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    off = {"persistence": {"enabled": False}}
    docs = render({"etcd": off, "minio": off, "pulsarv3": off, "standalone": off})
    for name, sts in kinds(docs, "StatefulSet").items():
        assert "volumeClaimTemplates" not in sts["spec"], name
        assert sts["spec"]["template"]["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}], name
        kubernetes_validate.validate(sts, "1.34.0", strict=True)
