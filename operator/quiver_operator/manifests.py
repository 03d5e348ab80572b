"""Pure builders from a :class:`ClusterSpec` to the Kubernetes objects of Quiver itself.

Every function returns plain dicts (what ``kubectl apply`` would take), so the shapes are
unit-tested without a cluster. The operator-owned objects carry an owner reference to the
QuiverCluster, so deleting it cascades; the standalone data PVC deliberately does not.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import yaml

from quiver_operator.spec import DATA_DIR, GRPC_PORT, HTTP_PORT, ROLE_BY_KEY, STANDALONE, ClusterSpec, Role

API_VERSION = "quiver.io/v1alpha1"
KIND = "QuiverCluster"
CONFIG_KEY = "quiver.yaml"
CONFIG_DIR = "/etc/quiver"
Obj = dict[str, Any]


def role_of(key: str) -> Role:
    return STANDALONE if key == STANDALONE.key else ROLE_BY_KEY[key]


def selector(cluster: ClusterSpec, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "quiver",
        "app.kubernetes.io/instance": cluster.name,
        "app.kubernetes.io/component": component,
    }


def labels(cluster: ClusterSpec, component: str) -> dict[str, str]:
    return {**selector(cluster, component), "app.kubernetes.io/managed-by": "quiver-operator"}


def owner_reference(name: str, uid: str) -> Obj:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def meta(cluster: ClusterSpec, name: str, component: str, owner: Obj | None) -> Obj:
    out: Obj = {"name": name, "namespace": cluster.namespace, "labels": labels(cluster, component)}
    if owner is not None:
        out["ownerReferences"] = [owner]
    return out


def deployment_name(cluster: ClusterSpec, key: str) -> str:
    return f"{cluster.base}-{role_of(key).name}"


def service_name(cluster: ClusterSpec) -> str:
    return cluster.base


def endpoint(cluster: ClusterSpec) -> str:
    """What status.endpoint reports: the in-cluster address of the Milvus gRPC port."""
    return f"{service_name(cluster)}.{cluster.namespace}:{GRPC_PORT}"


def deep_merge(base: Obj, override: Obj) -> Obj:
    """``override`` wins; nested dicts merge, everything else (lists too) is replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def quiver_config(cluster: ClusterSpec) -> Obj:
    """The Quiver YAML configuration (field names of common/config.py), before secrets."""
    ns, base = cluster.namespace, cluster.base
    cfg: Obj = {"data_dir": DATA_DIR}
    etcd, storage, pulsar = cluster.dependencies
    if etcd.mode != "embedded":
        etcd_endpoints = list(etcd.endpoints) if etcd.mode == "external" else [f"{base}-etcd.{ns}.svc:2379"]
        cfg["kv"] = {"backend": "etcd", "etcd": {"endpoints": etcd_endpoints, "root_path": cluster.name}}
    else:
        cfg["kv"] = {"backend": "local"}
    if storage.mode == "embedded":
        cfg["storage"] = {"backend": "local"}
    else:
        opts = storage.options
        s3: Obj = {
            "endpoint": storage.endpoints[0] if storage.mode == "external" else f"{base}-minio.{ns}.svc:9000",
            "bucket": opts.get("bucket", "quiver-bucket"),
            "secure": bool(opts.get("secure", False)),
        }
        if "region" in opts:
            s3["region"] = opts["region"]
        cfg["storage"] = {"backend": "s3", "root_path": opts.get("rootPath", "files"), "s3": s3}
    stream: Obj = {"topic_prefix": cluster.name}
    if pulsar.mode == "embedded":
        stream["backend"] = "local"
    else:
        url = pulsar.endpoints[0] if pulsar.mode == "external" else f"pulsar://{base}-pulsar.{ns}.svc:6650"
        url = url if "://" in url else f"pulsar://{url}"
        stream["backend"] = "pulsar"
        stream["pulsar"] = {"service_url": url}
        for key in ("tenant", "namespace"):
            if key in pulsar.options:
                stream["pulsar"][key] = pulsar.options[key]
    cfg["stream"] = stream
    return deep_merge(cfg, cluster.config)


def config_text(cluster: ClusterSpec) -> str:
    return yaml.safe_dump(quiver_config(cluster), sort_keys=True)


def config_map(cluster: ClusterSpec, owner: Obj | None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(cluster, f"{cluster.base}-config", "config", owner),
        "data": {CONFIG_KEY: config_text(cluster)},
    }


def _secret_env(name: str, secret: str, key: str) -> Obj:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def role_env(cluster: ClusterSpec, key: str) -> list[Obj]:
    """QUIVER_HOST (bind and advertise address), credentials from Secrets, then the user's env."""
    env: list[Obj] = []
    if key in ("proxy", STANDALONE.key):
        env.append({"name": "QUIVER_HOST", "value": "0.0.0.0"})
    else:  # advertised to the other roles through the etcd session: must be the pod's address
        env.append({"name": "QUIVER_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
    etcd, storage, pulsar = cluster.dependencies
    if storage.mode != "embedded":
        secret = storage.secret_ref if storage.mode == "external" else f"{cluster.base}-minio"
        env.append(_secret_env("QUIVER_STORAGE__S3__ACCESS_KEY", secret, "accesskey"))
        env.append(_secret_env("QUIVER_STORAGE__S3__SECRET_KEY", secret, "secretkey"))
    if etcd.mode == "external" and etcd.secret_ref:
        env.append(_secret_env("QUIVER_KV__ETCD__USER", etcd.secret_ref, "username"))
        env.append(_secret_env("QUIVER_KV__ETCD__PASSWORD", etcd.secret_ref, "password"))
    if pulsar.mode == "external" and pulsar.secret_ref:
        env.append(_secret_env("QUIVER_STREAM__PULSAR__AUTH_TOKEN", pulsar.secret_ref, "token"))
    env.extend(copy.deepcopy(cluster.components[key].env))
    return env


def _probes(cluster: ClusterSpec, key: str) -> Obj:
    if key == "mixCoord" and cluster.active_standby:
        return {}  # a standby coordinator opens no port until it wins the lease
    if key in ("proxy", STANDALONE.key):
        handler: Obj = {"httpGet": {"path": "/healthz", "port": "http"}}
    else:
        handler = {"tcpSocket": {"port": "internal"}}
    return {
        "startupProbe": {**handler, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 60},
        "livenessProbe": {**handler, "periodSeconds": 30, "timeoutSeconds": 5, "failureThreshold": 5},
        "readinessProbe": {**handler, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 5},
    }


def _container(cluster: ClusterSpec, key: str, image: str) -> Obj:
    role = role_of(key)
    comp = cluster.components[key]
    args = ["run", role.name, "--config", f"{CONFIG_DIR}/{CONFIG_KEY}", "--data-dir", DATA_DIR]
    ports: list[Obj] = []
    if key in ("proxy", STANDALONE.key):
        args += ["--grpc-port", str(GRPC_PORT), "--http-port", str(HTTP_PORT)]
        ports += [
            {"name": "milvus", "containerPort": GRPC_PORT, "protocol": "TCP"},
            {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
        ]
    if key != STANDALONE.key:
        args += ["--internal-port", str(role.internal_port)]
        ports.append({"name": "internal", "containerPort": role.internal_port, "protocol": "TCP"})
    container: Obj = {
        "name": role.name,
        "image": image,
        "imagePullPolicy": cluster.image_pull_policy,
        "args": args,
        "env": role_env(cluster, key),
        "ports": ports,
        **_probes(cluster, key),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    if comp.resources:
        container["resources"] = copy.deepcopy(comp.resources)
    return container


def deployment(cluster: ClusterSpec, key: str, image: str, owner: Obj | None) -> Obj:
    """The Deployment of one role (or of standalone) running ``image``."""
    role = role_of(key)
    comp = cluster.components[key]
    config_hash = hashlib.sha256(config_text(cluster).encode()).hexdigest()[:16]
    if key == STANDALONE.key:
        data_volume: Obj = {"name": "data", "persistentVolumeClaim": {"claimName": f"{cluster.base}-data"}}
    else:
        data_volume = {"name": "data", "emptyDir": {}}
    pod_spec: Obj = {
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(cluster, key, image)],
        "volumes": [
            {"name": "config", "configMap": {"name": f"{cluster.base}-config"}},
            {"name": "tmp", "emptyDir": {}},
            data_volume,
        ],
    }
    if cluster.image_pull_secrets:
        pod_spec["imagePullSecrets"] = copy.deepcopy(cluster.image_pull_secrets)
    for field_name, value in (
        ("nodeSelector", comp.node_selector),
        ("tolerations", comp.tolerations),
        ("affinity", comp.affinity),
    ):
        if value:
            pod_spec[field_name] = copy.deepcopy(value)
    spec: Obj = {
        "replicas": min(comp.replicas, 1) if key == STANDALONE.key else comp.replicas,
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": selector(cluster, role.name)},
        "template": {
            "metadata": {
                "labels": selector(cluster, role.name),
                "annotations": {"quiver.io/config-hash": config_hash},
            },
            "spec": pod_spec,
        },
    }
    if key == STANDALONE.key or (key == "mixCoord" and not cluster.active_standby):
        # One data directory, or one coordinator lease: never run the old and new pod together.
        spec["strategy"] = {"type": "Recreate"}
    elif key == "mixCoord":
        spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(cluster, deployment_name(cluster, key), role.name, owner),
        "spec": spec,
    }


def proxy_service(cluster: ClusterSpec, owner: Obj | None) -> Obj:
    component = "standalone" if cluster.mode == "standalone" else "proxy"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(cluster, service_name(cluster), component, owner),
        "spec": {
            "type": cluster.service_type,
            "selector": selector(cluster, component),
            "ports": [
                {"name": "milvus", "port": GRPC_PORT, "targetPort": "milvus", "protocol": "TCP"},
                {"name": "http", "port": HTTP_PORT, "targetPort": "http", "protocol": "TCP"},
            ],
        },
    }


def data_pvc(cluster: ClusterSpec) -> Obj:
    """The standalone data volume. No owner reference: it outlives the QuiverCluster unless
    spec.dataDeletion asks the finalizer to remove it."""
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": cluster.data_size}}}
    if cluster.data_storage_class is not None:
        spec["storageClassName"] = cluster.data_storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta(cluster, f"{cluster.base}-data", "standalone", None),
        "spec": spec,
    }


def image_of(deploy: Obj | None) -> str | None:
    if not deploy:
        return None
    containers = deploy.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}]
    image = containers[0].get("image")
    return str(image) if image is not None else None
