"""A small Kubernetes REST client for plain-dict objects: get, list, create, merge-patch, delete.

The manifest builders produce dicts, so the operator talks REST with dicts too instead of the
typed models of the kubernetes package; that package is only used to load the credentials
(in-cluster service account, or a kubeconfig) and for its HTTP pool.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import kubernetes
from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]

# kind -> (API prefix, plural); only what the operator manages.
KINDS: dict[str, tuple[str, str]] = {
    "ConfigMap": ("/api/v1", "configmaps"),
    "Secret": ("/api/v1", "secrets"),
    "Service": ("/api/v1", "services"),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "StatefulSet": ("/apis/apps/v1", "statefulsets"),
}


class KubeError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Kube:
    def __init__(self, api_client: Any) -> None:
        self.api = api_client

    @classmethod
    def from_environment(cls) -> Kube:
        """In a pod: the service account; elsewhere: $KUBECONFIG or ~/.kube/config."""
        try:
            kubernetes.config.load_incluster_config()
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()
        return cls(kubernetes.client.ApiClient())

    @staticmethod
    def path(kind: str, namespace: str, name: str | None = None) -> str:
        prefix, plural = KINDS[kind]
        out = f"{prefix}/namespaces/{quote(namespace)}/{plural}"
        return f"{out}/{quote(name)}" if name else out

    def _headers(self, content_type: str) -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        for auth in self.api.configuration.auth_settings().values():
            if auth.get("in") == "header" and auth.get("value"):
                headers[auth["key"]] = auth["value"]
        return headers

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> Obj:
        url = self.api.configuration.host.rstrip("/") + path
        try:
            resp = self.api.rest_client.request(
                method, url, query_params=query, headers=self._headers(content_type), body=body, _request_timeout=30
            )
        except ApiException as exc:
            raise KubeError(int(exc.status or 0), str(exc.body or exc.reason)) from exc
        data = resp.data.decode() if isinstance(resp.data, bytes) else resp.data
        return json.loads(data) if data else {}

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            return self.request("GET", self.path(kind, namespace, name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: str, namespace: str, label_selector: str = "") -> list[Obj]:
        query = {"labelSelector": label_selector} if label_selector else None
        items = self.request("GET", self.path(kind, namespace), query=query).get("items") or []
        return list(items)

    def create(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        return self.request("POST", self.path(obj["kind"], meta["namespace"]), body=obj)

    def patch(self, kind: str, namespace: str, name: str, patch: Obj) -> Obj:
        return self.request(
            "PATCH", self.path(kind, namespace, name), body=patch, content_type="application/merge-patch+json"
        )

    def apply(self, obj: Obj) -> Obj:
        """Create ``obj``, or merge-patch the live object to it (fields we do not set are kept)."""
        meta = obj["metadata"]
        live = self.get(obj["kind"], meta["namespace"], meta["name"])
        if live is None:
            return self.create(obj)
        return self.patch(obj["kind"], meta["namespace"], meta["name"], obj)

    def ensure(self, obj: Obj) -> Obj:
        """Create ``obj`` if it is missing, never change it (PVCs, generated Secrets)."""
        meta = obj["metadata"]
        live = self.get(obj["kind"], meta["namespace"], meta["name"])
        return live if live is not None else self.create(obj)

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        try:
            self.request("DELETE", self.path(kind, namespace, name), body={"propagationPolicy": "Background"})
            return True
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
