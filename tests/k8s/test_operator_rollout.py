"""The staged image rollout plan and the status the operator reports (pure functions)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

pytest.importorskip("kubernetes")

from quiver_operator import manifests  # noqa: E402
from quiver_operator.rollout import plan_images, rolled_out  # noqa: E402
from quiver_operator.spec import parse_spec  # noqa: E402
from quiver_operator.status import compute_status  # noqa: E402

OLD, NEW = "quiver/quiver:0.1.0", "quiver/quiver:0.2.0"
KEYS = ["mixCoord", "dataNode", "indexNode", "queryNode", "proxy"]


def _deploy(image: str, available: bool = True, replicas: int = 1, generation: int = 3) -> dict[str, Any]:
    status = {"observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
              "availableReplicas": replicas} if available else {"observedGeneration": generation - 1}
    return {"metadata": {"generation": generation}, "spec": {"replicas": replicas,
            "template": {"spec": {"containers": [{"image": image}]}}}, "status": status}


def test_rolled_out_follows_kubectl_rollout_status() -> None:
    assert rolled_out(_deploy(OLD))
    assert not rolled_out(_deploy(OLD, available=False))
    assert not rolled_out(None)
    stale = _deploy(OLD)
    stale["status"]["replicas"] = 2  # an old pod is still there
    assert not rolled_out(stale)
    assert rolled_out({"metadata": {"generation": 1}, "spec": {"replicas": 0}, "status": {"observedGeneration": 1}})


def test_new_cluster_gets_every_image_at_once() -> None:
    plan = plan_images(dict.fromkeys(KEYS, NEW), dict.fromkeys(KEYS))
    assert plan.images == dict.fromkeys(KEYS, NEW) and plan.done


def test_image_change_starts_with_the_coordinator() -> None:
    plan = plan_images(dict.fromkeys(KEYS, NEW), {k: _deploy(OLD) for k in KEYS})
    assert plan.images["mixCoord"] == NEW
    assert {k: plan.images[k] for k in KEYS[1:]} == dict.fromkeys(KEYS[1:], OLD)
    assert plan.held == KEYS[1:] and plan.waiting_for == ["mixCoord"]


def test_workers_follow_once_the_coordinator_is_available_and_the_proxy_last() -> None:
    existing = {k: _deploy(OLD) for k in KEYS}
    existing["mixCoord"] = _deploy(NEW, available=False)
    assert plan_images(dict.fromkeys(KEYS, NEW), existing).held == KEYS[1:]
    existing["mixCoord"] = _deploy(NEW)
    plan = plan_images(dict.fromkeys(KEYS, NEW), existing)
    assert [plan.images[k] for k in KEYS] == [NEW, NEW, NEW, NEW, OLD]
    assert plan.waiting_for == ["dataNode", "indexNode", "queryNode"]
    existing.update(dataNode=_deploy(NEW), indexNode=_deploy(NEW), queryNode=_deploy(NEW, available=False))
    plan = plan_images(dict.fromkeys(KEYS, NEW), existing)
    assert plan.held == ["proxy"] and plan.waiting_for == ["queryNode"]
    existing["queryNode"] = _deploy(NEW)
    plan = plan_images(dict.fromkeys(KEYS, NEW), existing)
    assert plan.done and plan.images == dict.fromkeys(KEYS, NEW)


def test_a_role_specific_image_change_does_not_wait_for_itself() -> None:
    desired = dict.fromkeys(KEYS, OLD) | {"proxy": NEW}
    plan = plan_images(desired, {k: _deploy(OLD) for k in KEYS})
    assert plan.images["proxy"] == NEW and plan.done


def _cluster_status(deploys: dict[str, Any], sts: dict[str, Any], probe_ok: bool = True, spec: Any = None) -> Any:
    cluster = parse_spec("qc", "ns1", spec or {"mode": "cluster"})
    plan = plan_images({k: cluster.components[k].image for k in cluster.role_keys()}, deploys)
    now = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    return compute_status(cluster, deploys, sts, lambda _e: probe_ok, plan, None, 7, now)


def test_status_of_a_healthy_cluster() -> None:
    deploys = {k: _deploy("quiver/quiver:0.1.0", replicas=2) for k in KEYS}
    sts = {k: {"spec": {"replicas": 1}, "status": {"readyReplicas": 1}} for k in ("etcd", "storage", "pulsar")}
    status = _cluster_status(deploys, sts)
    assert status["status"] == "Healthy"
    assert status["endpoint"] == f"{manifests.service_name(parse_spec('qc', 'ns1', {}))}.ns1:19530"
    assert status["replicas"] == dict.fromkeys(KEYS, 2)
    assert status["observedGeneration"] == 7
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "EtcdReady": "True", "StorageReady": "True", "PulsarReady": "True", "QuiverReady": "True"}
    assert all(c["lastTransitionTime"] == "2025-01-02T03:04:05Z" for c in status["conditions"])


def test_status_while_dependencies_start_and_with_external_ones() -> None:
    deploys = {k: _deploy("quiver/quiver:0.1.0") for k in KEYS}
    sts = {"etcd": {"spec": {"replicas": 3}, "status": {"readyReplicas": 1}}, "storage": None}
    status = _cluster_status(deploys, sts)
    conds = {c["type"]: c for c in status["conditions"]}
    assert status["status"] == "Pending"
    assert conds["EtcdReady"]["message"] == "1/3 pods ready" and conds["StorageReady"]["reason"] == "NotCreated"
    external = {"dependencies": {"etcd": {"external": True, "endpoints": ["e:2379"]}}}
    down = {c["type"]: c for c in _cluster_status(deploys, {}, probe_ok=False, spec=external)["conditions"]}
    assert down["EtcdReady"]["reason"] == "ExternalUnreachable"
    up = {c["type"]: c for c in _cluster_status(deploys, {}, probe_ok=True, spec=external)["conditions"]}
    assert up["EtcdReady"]["reason"] == "ExternalReachable"


def test_status_during_a_staged_rollout() -> None:
    deploys = {k: _deploy(OLD) for k in KEYS}
    spec = {"components": {"image": NEW}}
    sts = {k: {"spec": {"replicas": 1}, "status": {"readyReplicas": 1}} for k in ("etcd", "storage", "pulsar")}
    quiver = _cluster_status(deploys, sts, spec=spec)["conditions"][-1]
    assert quiver["status"] == "False" and quiver["reason"] == "RollingOut"
    assert "proxy" in quiver["message"] and "wait for mixCoord" in quiver["message"]
