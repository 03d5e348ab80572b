"""Kopf handlers of QuiverCluster: reconcile on create/update/resume, refresh on a timer, and
clean up behind a finalizer on delete.

``reconcile`` applies the dependency objects, the ConfigMap, the Service and one Deployment
per role, with the images held back by the rollout plan; while a staged image rollout is under
way the create/update handler retries (kopf.TemporaryError) until every stage has gone through.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Any
from urllib.parse import urlsplit

import kopf

from quiver_operator import deps, manifests
from quiver_operator.kube import Kube
from quiver_operator.rollout import Plan, plan_images
from quiver_operator.spec import ROLES, STANDALONE, ClusterSpec, SpecError, parse_spec
from quiver_operator.status import compute_status

GROUP, VERSION, PLURAL = "quiver.io", "v1alpha1", "quiverclusters"
FINALIZER = "quiver.io/finalizer"
RETRY_DELAY = float(os.environ.get("QUIVER_OPERATOR_RETRY_DELAY", "10"))
STATUS_INTERVAL = float(os.environ.get("QUIVER_OPERATOR_STATUS_INTERVAL", "15"))
Obj = dict[str, Any]

_kube: Kube | None = None


def kube() -> Kube:
    global _kube
    if _kube is None:
        _kube = Kube.from_environment()
    return _kube


def tcp_probe(endpoint: str, timeout: float = 1.0) -> bool:
    """Whether ``host:port`` (or a URL) accepts a TCP connection."""
    parts = urlsplit(endpoint if "://" in endpoint else f"tcp://{endpoint}")
    default = 443 if parts.scheme == "https" else 80 if parts.scheme == "http" else 0
    port = parts.port or default
    if not parts.hostname or not port:
        return False
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="quiver.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="quiver.io", key="last-handled-configuration"
    )
    settings.posting.level = int(os.environ.get("QUIVER_OPERATOR_EVENT_LEVEL", "20"))


def _cluster(body: kopf.Body | Obj) -> ClusterSpec:
    meta = body["metadata"]
    return parse_spec(meta["name"], meta["namespace"], dict(body.get("spec") or {}))


def reconcile(k: Kube, body: kopf.Body | Obj) -> tuple[Plan, Obj]:
    """Bring the objects of one QuiverCluster in line with its spec; return the plan and status."""
    cluster = _cluster(body)
    meta = body["metadata"]
    ns = cluster.namespace
    owner = manifests.owner_reference(meta["name"], meta["uid"])

    if cluster.storage.mode == "incluster":  # MinIO's keys: generated once, kept with MinIO's data
        secret_owner = owner if cluster.storage.in_cluster.deletion_policy == "Delete" else None
        k.ensure(deps.minio_secret(cluster, secrets.token_hex(10), secrets.token_hex(20), secret_owner))
    statefulsets: dict[str, Obj | None] = {}
    for dep in cluster.dependencies:
        for obj in deps.dependency_objects(cluster, dep, owner):
            applied = k.apply(obj)
            if obj["kind"] == "StatefulSet":
                statefulsets[dep.kind] = applied

    k.apply(manifests.config_map(cluster, owner))
    if cluster.mode == "standalone":
        k.ensure(manifests.data_pvc(cluster))
    k.apply(manifests.proxy_service(cluster, owner))

    keys = cluster.role_keys()
    existing = {key: k.get("Deployment", ns, manifests.deployment_name(cluster, key)) for key in keys}
    plan = plan_images({key: cluster.components[key].image for key in keys}, existing)
    current: dict[str, Obj | None] = {
        key: k.apply(manifests.deployment(cluster, key, plan.images[key], owner)) for key in keys
    }
    # A mode switch leaves the other mode's Deployments behind: remove them.
    for other in [STANDALONE.key, *(r.key for r in ROLES)]:
        if other not in keys:
            k.delete("Deployment", ns, manifests.deployment_name(cluster, other))

    status = compute_status(
        cluster, current, statefulsets, tcp_probe, plan, dict(body.get("status") or {}), meta.get("generation", 0)
    )
    return plan, status


def _set_status(patch: kopf.Patch, old: Obj, new: Obj) -> None:
    changed = {key: value for key, value in new.items() if old.get(key) != value}
    if changed:
        patch.status.update(changed)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def reconcile_handler(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
    try:
        plan, status = reconcile(kube(), body)
    except SpecError as exc:
        patch.status.update({"status": "Invalid", "message": str(exc)})
        raise kopf.PermanentError(str(exc)) from exc
    _set_status(patch, dict(body.get("status") or {}), {**status, "message": None})
    if not plan.done:
        raise kopf.TemporaryError(
            f"image rollout: {', '.join(plan.held)} wait for {', '.join(plan.waiting_for)} to be available",
            delay=RETRY_DELAY,
        )
    logger.info("QuiverCluster reconciled: %s", status["status"])


@kopf.timer(GROUP, VERSION, PLURAL, interval=STATUS_INTERVAL, initial_delay=STATUS_INTERVAL)
def refresh(body: kopf.Body, meta: kopf.Meta, patch: kopf.Patch, **_: Any) -> None:
    """Keep the status current, and put back any object that was changed or removed by hand."""
    if meta.get("deletionTimestamp"):
        return
    try:
        _plan, status = reconcile(kube(), body)
    except SpecError:
        return
    _set_status(patch, dict(body.get("status") or {}), status)


@kopf.on.delete(GROUP, VERSION, PLURAL)
def cleanup(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
    """Owner references take the Deployments, Services and ConfigMap away. Data stays unless
    asked: the standalone PVC with spec.dataDeletion, a dependency's PVCs with its
    inCluster.deletionPolicy: Delete and pvcDeletion (or spec.dataDeletion)."""
    try:
        cluster = _cluster(body)
    except SpecError:
        return
    patch.status["status"] = "Deleting"
    k = kube()
    ns = cluster.namespace
    removed: list[str] = []
    if cluster.mode == "standalone" and cluster.data_deletion:
        name = manifests.data_pvc(cluster)["metadata"]["name"]
        if k.delete("PersistentVolumeClaim", ns, name):
            removed.append(name)
    for dep in cluster.dependencies:
        ic = dep.in_cluster
        if dep.mode != "incluster" or ic.deletion_policy != "Delete" or not (ic.pvc_deletion or cluster.data_deletion):
            continue
        for pvc in k.list("PersistentVolumeClaim", ns, deps.claim_selector(cluster, dep)):
            if k.delete("PersistentVolumeClaim", ns, pvc["metadata"]["name"]):
                removed.append(pvc["metadata"]["name"])
    logger.info("QuiverCluster deleted; PVCs removed: %s", ", ".join(removed) or "none (data kept)")
