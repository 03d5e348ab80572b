"""The fake API server behaves like Kubernetes where the operator tests rely on it: discovery,
auth, generation, merge and JSON patches, /status, watch resumption, finalizers and garbage
collection. Exercised with the official kubernetes client over HTTP."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest
import yaml

from tests.k8s.paths import OPERATOR

kubernetes = pytest.importorskip("kubernetes")
pytest.importorskip("aiohttp")

from tests.k8s.fake_apiserver import TOKEN, FakeApiServer  # noqa: E402

NS = "fake"


@pytest.fixture(scope="module")
def api(fake_api: FakeApiServer) -> Any:
    config = kubernetes.client.Configuration()
    config.host = fake_api.url
    config.api_key = {"BearerToken": TOKEN}
    config.api_key_prefix = {"BearerToken": "Bearer"}
    return kubernetes.client.ApiClient(config)


def _call(api: Any, method: str, path: str, body: Any = None, ctype: str = "application/json") -> Any:
    headers = {"Content-Type": ctype, "Authorization": f"Bearer {TOKEN}"}
    resp = api.rest_client.request(method, api.configuration.host + path, headers=headers, body=body)
    return json.loads(resp.data)


def _cm(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta}, "data": {"k": "v"}}


def test_requests_without_the_token_are_refused(fake_api: FakeApiServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{fake_api.url}/api/v1/namespaces/{NS}/configmaps", timeout=5)
    assert err.value.code == 401


def test_discovery_lists_crds_after_they_are_created(api: Any) -> None:
    crd = yaml.safe_load((OPERATOR / "deploy" / "crd.yaml").read_text())
    _call(api, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    groups = {g["name"] for g in _call(api, "GET", "/apis")["groups"]}
    assert {"apps", "quiver.io", "apiextensions.k8s.io"} <= groups
    names = {r["name"] for r in _call(api, "GET", "/apis/quiver.io/v1alpha1")["resources"]}
    assert names == {"quiverclusters", "quiverclusters/status"}
    bad = {"apiVersion": "quiver.io/v1alpha1", "kind": "QuiverCluster", "metadata": {"name": "bad"},
           "spec": {"mode": "serverless"}}
    with pytest.raises(kubernetes.client.ApiException) as err:
        _call(api, "POST", f"/apis/quiver.io/v1alpha1/namespaces/{NS}/quiverclusters", bad)
    assert err.value.status == 422 and b"serverless" in err.value.body


def test_typed_client_round_trip_and_generation(api: Any) -> None:
    apps = kubernetes.client.AppsV1Api(api)
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d1"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}}
    created = apps.create_namespaced_deployment(NS, body)
    assert created.metadata.generation == 1 and created.metadata.uid
    patched = apps.patch_namespaced_deployment("d1", NS, {"spec": {"replicas": 3}})
    assert patched.spec.replicas == 3 and patched.metadata.generation == 2
    labelled = apps.patch_namespaced_deployment("d1", NS, {"metadata": {"labels": {"x": "y"}}})
    assert labelled.metadata.generation == 2  # metadata does not count
    status = _call(api, "PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/d1/status",
                   {"status": {"replicas": 3}, "spec": {"replicas": 9}}, "application/merge-patch+json")
    assert status["status"]["replicas"] == 3 and status["spec"]["replicas"] == 3
    ops = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "i:2"}]
    after = _call(api, "PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/d1", ops, "application/json-patch+json")
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "i:2"
    assert after["metadata"]["generation"] == 3 and after["status"] == {"replicas": 3}


def test_watch_resumes_from_a_resource_version(api: Any) -> None:
    core = kubernetes.client.CoreV1Api(api)
    listed = core.list_namespaced_config_map(NS)
    events: list[tuple[str, str]] = []
    done = threading.Event()

    def watch() -> None:
        w = kubernetes.watch.Watch()
        for ev in w.stream(core.list_namespaced_config_map, NS, resource_version=listed.metadata.resource_version,
                           timeout_seconds=10):
            events.append((ev["type"], ev["object"].metadata.name))
            if len(events) == 3:
                w.stop()
        done.set()

    core.create_namespaced_config_map(NS, _cm("w1"))  # after the list: replayed from history
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    core.patch_namespaced_config_map("w1", NS, {"data": {"k": "v2"}})
    core.delete_namespaced_config_map("w1", NS)
    assert done.wait(15)
    assert events == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]


def test_finalizers_hold_deletion_and_owners_cascade(api: Any) -> None:
    core = kubernetes.client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(NS, _cm("owner", finalizers=["test/hold"]))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(NS, _cm("child", ownerReferences=[ref]))
    core.delete_namespaced_config_map("owner", NS)
    held = core.read_namespaced_config_map("owner", NS)
    assert held.metadata.deletion_timestamp is not None
    assert core.read_namespaced_config_map("child", NS) is not None
    core.patch_namespaced_config_map("owner", NS, {"metadata": {"finalizers": None}})
    names = {c.metadata.name for c in core.list_namespaced_config_map(NS).items}
    assert "owner" not in names and "child" not in names
