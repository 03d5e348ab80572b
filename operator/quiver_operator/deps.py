"""Pure builders for the in-cluster dependencies: small StatefulSets of etcd, MinIO and Pulsar.

Each dependency gets a headless Service (stable pod DNS names) and a client Service. With
``inCluster.deletionPolicy: Delete`` they carry an owner reference and go with the
QuiverCluster; with ``Retain`` (the default, as in the Milvus operator) they stay. Their
PVCs (from volumeClaimTemplates) are only removed by the finalizer when asked.
"""

from __future__ import annotations

from typing import Any

from quiver_operator.manifests import Obj, meta, selector
from quiver_operator.spec import ClusterSpec, Dependency

COMPONENT = {"etcd": "etcd", "storage": "minio", "pulsar": "pulsar"}
PORTS: dict[str, list[tuple[str, int]]] = {
    "etcd": [("client", 2379), ("peer", 2380)],
    "storage": [("api", 9000)],
    "pulsar": [("pulsar", 6650), ("http", 8080)],
}


def statefulset_name(cluster: ClusterSpec, dep: Dependency) -> str:
    return f"{cluster.base}-{COMPONENT[dep.kind]}"


def minio_secret(cluster: ClusterSpec, access_key: str, secret_key: str, owner: Obj | None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(cluster, f"{cluster.base}-minio", "minio", owner),
        "type": "Opaque",
        "stringData": {"accesskey": access_key, "secretkey": secret_key},
    }


def _services(cluster: ClusterSpec, dep: Dependency, owner: Obj | None) -> list[Obj]:
    component = COMPONENT[dep.kind]
    ports = [{"name": n, "port": p, "targetPort": n, "protocol": "TCP"} for n, p in PORTS[dep.kind]]
    name = statefulset_name(cluster, dep)
    headless: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(cluster, f"{name}-headless", component, owner),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": selector(cluster, component),
            "ports": ports,
        },
    }
    client: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(cluster, name, component, owner),
        "spec": {"type": "ClusterIP", "selector": selector(cluster, component), "ports": ports},
    }
    return [headless, client]


def _container(cluster: ClusterSpec, dep: Dependency) -> Obj:
    name = statefulset_name(cluster, dep)
    headless = f"{name}-headless.{cluster.namespace}.svc"
    pod_name = {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    ports = [{"name": n, "containerPort": p} for n, p in PORTS[dep.kind]]
    first = PORTS[dep.kind][0][0]
    container: Obj = {"name": COMPONENT[dep.kind], "image": dep.in_cluster.image, "ports": ports}
    if dep.kind == "etcd":
        peers = ",".join(
            f"{name}-{i}=http://{name}-{i}.{headless}:2380" for i in range(dep.in_cluster.replicas)
        )
        settings = {
            "ETCD_NAME": "$(POD_NAME)",
            "ETCD_DATA_DIR": "/var/run/etcd/data",
            "ETCD_LISTEN_CLIENT_URLS": "http://0.0.0.0:2379",
            "ETCD_ADVERTISE_CLIENT_URLS": f"http://$(POD_NAME).{headless}:2379",
            "ETCD_LISTEN_PEER_URLS": "http://0.0.0.0:2380",
            "ETCD_INITIAL_ADVERTISE_PEER_URLS": f"http://$(POD_NAME).{headless}:2380",
            "ETCD_INITIAL_CLUSTER": peers,
            "ETCD_INITIAL_CLUSTER_STATE": "new",
            "ETCD_INITIAL_CLUSTER_TOKEN": name,
            "ETCD_AUTO_COMPACTION_MODE": "revision",
            "ETCD_AUTO_COMPACTION_RETENTION": "1000",
            "ETCD_QUOTA_BACKEND_BYTES": "4294967296",
        }
        container["command"] = ["/usr/local/bin/etcd"]
        container["env"] = [pod_name] + [{"name": k, "value": v} for k, v in settings.items()]
        container["readinessProbe"] = {"httpGet": {"path": "/health", "port": "client"}, "periodSeconds": 10}
        mount = "/var/run/etcd"
    elif dep.kind == "storage":
        secret = f"{cluster.base}-minio"
        container["args"] = ["server", "/export", "--address", ":9000"]
        container["env"] = [
            {"name": "MINIO_ROOT_USER", "valueFrom": {"secretKeyRef": {"name": secret, "key": "accesskey"}}},
            {"name": "MINIO_ROOT_PASSWORD", "valueFrom": {"secretKeyRef": {"name": secret, "key": "secretkey"}}},
        ]
        container["readinessProbe"] = {"httpGet": {"path": "/minio/health/ready", "port": "api"}, "periodSeconds": 10}
        mount = "/export"
    else:
        container["command"] = [
            "bin/pulsar",
            "standalone",
            "--no-functions-worker",
            "--no-stream-storage",
            "--advertised-address",
            f"$(POD_NAME).{headless}",
        ]
        container["env"] = [pod_name, {"name": "PULSAR_MEM", "value": "-Xms512m -Xmx512m -XX:MaxDirectMemorySize=512m"}]
        container["startupProbe"] = {"tcpSocket": {"port": "pulsar"}, "periodSeconds": 10, "failureThreshold": 30}
        container["readinessProbe"] = {"tcpSocket": {"port": "pulsar"}, "periodSeconds": 10}
        mount = "/pulsar/data"
    container["livenessProbe"] = {"tcpSocket": {"port": first}, "periodSeconds": 30, "failureThreshold": 5}
    container["volumeMounts"] = [{"name": "data", "mountPath": mount}]
    return container


def statefulset(cluster: ClusterSpec, dep: Dependency, owner: Obj | None) -> Obj:
    component = COMPONENT[dep.kind]
    name = statefulset_name(cluster, dep)
    pod_spec: dict[str, Any] = {"automountServiceAccountToken": False, "containers": [_container(cluster, dep)]}
    if dep.kind == "pulsar":
        pod_spec["securityContext"] = {"fsGroup": 0}  # the image's user 10000 is in group 0
    claim: Obj = {
        "metadata": {"name": "data", "labels": selector(cluster, component)},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": dep.in_cluster.storage_size}}},
    }
    if dep.in_cluster.storage_class is not None:
        claim["spec"]["storageClassName"] = dep.in_cluster.storage_class
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta(cluster, name, component, owner),
        "spec": {
            "replicas": dep.in_cluster.replicas if dep.kind == "etcd" else 1,
            "serviceName": f"{name}-headless",
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector(cluster, component)},
            "template": {"metadata": {"labels": selector(cluster, component)}, "spec": pod_spec},
            "volumeClaimTemplates": [claim],
        },
    }


def dependency_objects(cluster: ClusterSpec, dep: Dependency, owner: Obj) -> list[Obj]:
    """Services and StatefulSet of one in-cluster dependency ([] for external or embedded)."""
    if dep.mode != "incluster":
        return []
    dep_owner = owner if dep.in_cluster.deletion_policy == "Delete" else None
    return [*_services(cluster, dep, dep_owner), statefulset(cluster, dep, dep_owner)]


def claim_selector(cluster: ClusterSpec, dep: Dependency) -> str:
    """Label selector of the dependency's PVCs (the claim template's labels)."""
    return ",".join(f"{k}={v}" for k, v in selector(cluster, COMPONENT[dep.kind]).items())
