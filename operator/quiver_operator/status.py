"""The QuiverCluster status, computed from what the cluster reports (pure functions).

Conditions follow the Milvus operator's: EtcdReady, StorageReady, PulsarReady for the three
dependencies and QuiverReady for the roles; ``status.status`` sums them up as Healthy,
Pending or Unhealthy, and ``status.endpoint`` is where clients connect inside the cluster.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from quiver_operator.manifests import endpoint
from quiver_operator.rollout import Plan, rolled_out
from quiver_operator.spec import ClusterSpec, Dependency

Obj = dict[str, Any]
CONDITION_TYPES = {"etcd": "EtcdReady", "storage": "StorageReady", "pulsar": "PulsarReady"}


def _condition(ctype: str, ok: bool, reason: str, message: str) -> Obj:
    return {"type": ctype, "status": "True" if ok else "False", "reason": reason, "message": message}


def dependency_condition(dep: Dependency, sts: Obj | None, probe: Callable[[str], bool]) -> Obj:
    ctype = CONDITION_TYPES[dep.kind]
    if dep.mode == "embedded":
        return _condition(ctype, True, "Embedded", f"standalone uses Quiver's embedded {dep.kind} backend")
    if dep.mode == "external":
        reachable = [e for e in dep.endpoints if probe(e)]
        if reachable:
            return _condition(ctype, True, "ExternalReachable", f"{reachable[0]} accepts connections")
        return _condition(ctype, False, "ExternalUnreachable", f"no endpoint accepts connections: {dep.endpoints}")
    if sts is None:
        return _condition(ctype, False, "NotCreated", "the StatefulSet does not exist yet")
    wanted = sts.get("spec", {}).get("replicas", 1)
    ready = (sts.get("status") or {}).get("readyReplicas", 0)
    ok = ready >= wanted
    return _condition(ctype, ok, "Ready" if ok else "NotReady", f"{ready}/{wanted} pods ready")


def quiver_condition(deployments: Mapping[str, Obj | None], plan: Plan | None) -> Obj:
    missing = [k for k, d in deployments.items() if d is None]
    if missing:
        return _condition("QuiverReady", False, "Creating", f"waiting for Deployments of {', '.join(missing)}")
    rolling = [k for k, d in deployments.items() if not rolled_out(d)]
    if plan is not None and plan.held:
        message = f"updating the image; {', '.join(plan.held)} wait for {', '.join(plan.waiting_for)}"
        return _condition("QuiverReady", False, "RollingOut", message)
    if rolling:
        return _condition("QuiverReady", False, "NotAvailable", f"not all pods available: {', '.join(rolling)}")
    return _condition("QuiverReady", True, "Available", "every role is available")


def merge_conditions(old: list[Obj], new: list[Obj], now: dt.datetime) -> list[Obj]:
    """Keep lastTransitionTime when a condition's status did not change."""
    before = {c.get("type"): c for c in old or []}
    out = []
    for cond in new:
        prev = before.get(cond["type"])
        stamp = prev.get("lastTransitionTime") if prev and prev.get("status") == cond["status"] else None
        out.append({**cond, "lastTransitionTime": stamp or now.strftime("%Y-%m-%dT%H:%M:%SZ")})
    return out


def compute_status(
    cluster: ClusterSpec,
    deployments: Mapping[str, Obj | None],
    statefulsets: Mapping[str, Obj | None],
    probe: Callable[[str], bool],
    plan: Plan | None,
    old_status: Obj | None,
    generation: int,
    now: dt.datetime | None = None,
) -> Obj:
    conditions = [dependency_condition(d, statefulsets.get(d.kind), probe) for d in cluster.dependencies]
    conditions.append(quiver_condition(deployments, plan))
    healthy = all(c["status"] == "True" for c in conditions)
    deps_ok = all(c["status"] == "True" for c in conditions[:3])
    state = "Healthy" if healthy else ("Pending" if deps_ok or _young(old_status) else "Unhealthy")
    replicas = {
        key: int(((d or {}).get("status") or {}).get("availableReplicas", 0)) for key, d in deployments.items()
    }
    old = old_status or {}
    now = now or dt.datetime.now(dt.timezone.utc)
    return {
        "status": state,
        "endpoint": endpoint(cluster),
        "mode": cluster.mode,
        "observedGeneration": generation,
        "replicas": replicas,
        "conditions": merge_conditions(old.get("conditions") or [], conditions, now),
    }


def _young(old_status: Obj | None) -> bool:
    """A cluster that was never Healthy is still Pending (starting) rather than Unhealthy."""
    return not old_status or old_status.get("status") in (None, "Pending")
