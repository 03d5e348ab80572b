"""The QuiverCluster spec as typed Python values, with the defaults and the cross-field checks.

The CRD's openAPIV3Schema rejects wrong types and ranges at admission (and its CEL rules the
external dependencies without an endpoint); the same cross-field checks are repeated here so a
cluster without CEL, or an object stored before the CRD changed, is refused with a clear
message in its status instead of half-deployed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_IMAGE = "quiver/quiver:0.1.0"
GRPC_PORT = 19530
HTTP_PORT = 9091
DATA_DIR = "/var/lib/quiver"


@dataclass(frozen=True)
class Role:
    """One Quiver role: its key under spec.components, its CLI name and internal RPC port."""

    key: str
    name: str
    internal_port: int


ROLES: tuple[Role, ...] = (
    Role("mixCoord", "coord", 21001),
    Role("dataNode", "datanode", 21003),
    Role("indexNode", "indexnode", 21004),
    Role("queryNode", "querynode", 21002),
    Role("proxy", "proxy", 21000),
)
ROLE_BY_KEY = {r.key: r for r in ROLES}
STANDALONE = Role("standalone", "standalone", 0)

# Image changes roll in this order, each stage waiting for the previous one to be available.
ROLLOUT_STAGES: tuple[tuple[str, ...], ...] = (("mixCoord",), ("dataNode", "indexNode", "queryNode"), ("proxy",))


class SpecError(ValueError):
    """The spec cannot be deployed as written; the message says what to change."""


@dataclass
class Component:
    key: str
    replicas: int = 1
    image: str = DEFAULT_IMAGE
    resources: dict[str, Any] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    affinity: dict[str, Any] = field(default_factory=dict)
    env: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class InCluster:
    """A dependency the operator runs itself as a small StatefulSet."""

    replicas: int = 1
    image: str = ""
    storage_size: str = "10Gi"
    storage_class: str | None = None
    deletion_policy: str = "Retain"  # Retain | Delete: the StatefulSet and Services on CR deletion
    pvc_deletion: bool = False


@dataclass
class Dependency:
    kind: str  # etcd | storage | pulsar
    mode: str  # external | incluster | embedded
    endpoints: list[str] = field(default_factory=list)
    secret_ref: str = ""
    in_cluster: InCluster = field(default_factory=InCluster)
    options: dict[str, Any] = field(default_factory=dict)  # bucket, secure, region, rootPath, tenant, namespace


@dataclass
class ClusterSpec:
    name: str
    namespace: str
    mode: str
    components: dict[str, Component]
    etcd: Dependency
    storage: Dependency
    pulsar: Dependency
    config: dict[str, Any] = field(default_factory=dict)
    image_pull_policy: str = "IfNotPresent"
    image_pull_secrets: list[dict[str, str]] = field(default_factory=list)
    service_type: str = "ClusterIP"
    data_size: str = "50Gi"
    data_storage_class: str | None = None
    data_deletion: bool = False
    active_standby: bool = False

    @property
    def base(self) -> str:
        return f"{self.name}-quiver"

    @property
    def dependencies(self) -> tuple[Dependency, Dependency, Dependency]:
        return (self.etcd, self.storage, self.pulsar)

    def role_keys(self) -> list[str]:
        return [STANDALONE.key] if self.mode == "standalone" else [r.key for r in ROLES]


IN_CLUSTER_DEFAULTS: dict[str, InCluster] = {
    "etcd": InCluster(image="quay.io/coreos/etcd:v3.5.18", storage_size="10Gi"),
    "storage": InCluster(image="minio/minio:RELEASE.2023-03-20T20-16-18Z", storage_size="100Gi"),
    "pulsar": InCluster(image="apachepulsar/pulsar:3.0.7", storage_size="20Gi"),
}


def _component(key: str, raw: dict[str, Any], image: str) -> Component:
    replicas = raw.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        raise SpecError(f"spec.components.{key}.replicas must be a non-negative integer, got {replicas!r}")
    return Component(
        key=key,
        replicas=replicas,
        image=raw.get("image") or image,
        resources=dict(raw.get("resources") or {}),
        node_selector=dict(raw.get("nodeSelector") or {}),
        tolerations=list(raw.get("tolerations") or []),
        affinity=dict(raw.get("affinity") or {}),
        env=list(raw.get("env") or []),
    )


def _dependency(kind: str, raw: dict[str, Any], mode: str) -> Dependency:
    external = bool(raw.get("external", False))
    ic_raw = raw.get("inCluster")
    defaults = IN_CLUSTER_DEFAULTS[kind]
    ic_raw_d = dict(ic_raw or {})
    in_cluster = InCluster(
        replicas=int(ic_raw_d.get("replicas", 1)),
        image=ic_raw_d.get("image") or defaults.image,
        storage_size=ic_raw_d.get("storageSize") or defaults.storage_size,
        storage_class=ic_raw_d.get("storageClassName"),
        deletion_policy=ic_raw_d.get("deletionPolicy", "Retain"),
        pvc_deletion=bool(ic_raw_d.get("pvcDeletion", False)),
    )
    if in_cluster.deletion_policy not in ("Retain", "Delete"):
        raise SpecError(f"spec.dependencies.{kind}.inCluster.deletionPolicy must be Retain or Delete")
    single = [raw["endpoint"]] if raw.get("endpoint") else []
    endpoints: list[str] = list(raw.get("endpoints") or []) if kind == "etcd" else single
    if external:
        dep_mode = "external"
        if not endpoints:
            what = "endpoints" if kind == "etcd" else "endpoint"
            raise SpecError(f"spec.dependencies.{kind}.external is true but spec.dependencies.{kind}.{what} is empty")
    elif mode == "cluster" or ic_raw is not None:
        dep_mode = "incluster"
    else:
        dep_mode = "embedded"
    if kind == "etcd" and dep_mode == "incluster" and in_cluster.replicas % 2 == 0:
        raise SpecError("spec.dependencies.etcd.inCluster.replicas must be odd (1, 3, 5)")
    if kind == "storage" and external and not raw.get("secretRef"):
        raise SpecError("spec.dependencies.storage.external needs secretRef: a Secret with accesskey and secretkey")
    options: dict[str, Any] = {
        k: raw[k] for k in ("bucket", "secure", "region", "rootPath", "tenant", "namespace", "type") if k in raw
    }
    return Dependency(kind, dep_mode, endpoints, raw.get("secretRef", ""), in_cluster, options)


def parse_spec(name: str, namespace: str, spec: dict[str, Any]) -> ClusterSpec:
    """Turn the CR's spec (a plain dict) into a :class:`ClusterSpec`, or raise :class:`SpecError`."""
    mode = spec.get("mode", "cluster")
    if mode not in ("standalone", "cluster"):
        raise SpecError(f"spec.mode must be standalone or cluster, got {mode!r}")
    comps_raw = dict(spec.get("components") or {})
    image = comps_raw.get("image") or DEFAULT_IMAGE
    keys = [STANDALONE.key] if mode == "standalone" else [r.key for r in ROLES]
    components = {k: _component(k, dict(comps_raw.get(k) or {}), image) for k in keys}
    deps_raw = dict(spec.get("dependencies") or {})
    cluster = ClusterSpec(
        name=name,
        namespace=namespace,
        mode=mode,
        components=components,
        etcd=_dependency("etcd", dict(deps_raw.get("etcd") or {}), mode),
        storage=_dependency("storage", dict(deps_raw.get("storage") or {}), mode),
        pulsar=_dependency("pulsar", dict(deps_raw.get("pulsar") or {}), mode),
        config=dict(spec.get("config") or {}),
        image_pull_policy=comps_raw.get("imagePullPolicy", "IfNotPresent"),
        image_pull_secrets=list(comps_raw.get("imagePullSecrets") or []),
        service_type=(comps_raw.get("proxy") or {}).get("serviceType", "ClusterIP"),
        data_size=(comps_raw.get("standalone") or {}).get("storageSize", "50Gi"),
        data_storage_class=(comps_raw.get("standalone") or {}).get("storageClassName"),
        data_deletion=bool(spec.get("dataDeletion", False)),
        # Coordinators always campaign on an etcd lease: two or more replicas are active/standby.
        active_standby=mode == "cluster"
        and (bool((comps_raw.get("mixCoord") or {}).get("activeStandby")) or components["mixCoord"].replicas > 1),
    )
    return cluster
