"""The QuiverCluster CustomResourceDefinition, built in Python so the shared pieces (a component,
an in-cluster dependency) are written once; ``python -m quiver_operator.crd`` prints the YAML
kept in operator/deploy/crd.yaml (a test checks the two agree).

A CRD schema must be structural: no $ref, so the helpers below inline each piece.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

Obj = dict[str, Any]
QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _free_object(description: str = "") -> Obj:
    out: Obj = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if description:
        out["description"] = description
    return out


def _resources() -> Obj:
    quantity = {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": QUANTITY,
        "x-kubernetes-int-or-string": True,
    }
    return {
        "type": "object",
        "description": "Kubernetes resource requests and limits of each pod.",
        "properties": {
            "limits": {"type": "object", "additionalProperties": dict(quantity)},
            "requests": {"type": "object", "additionalProperties": dict(quantity)},
        },
    }


def _component(extra: Obj | None = None) -> Obj:
    props: Obj = {
        "replicas": {"type": "integer", "minimum": 0, "default": 1, "description": "Number of pods of this role."},
        "image": {"type": "string", "description": "Overrides components.image for this role."},
        "resources": _resources(),
        "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}},
        "tolerations": {"type": "array", "items": _free_object()},
        "affinity": _free_object(),
        "env": {
            "type": "array",
            "description": "Extra environment variables (e.g. QUIVER_QUERY__MEMORY_BUDGET_MB).",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "value": {"type": "string"}, "valueFrom": _free_object()},
            },
        },
    }
    props.update(extra or {})
    return {"type": "object", "properties": props}


def _in_cluster() -> Obj:
    return {
        "type": "object",
        "description": "Run this dependency in the cluster as a StatefulSet managed by the operator.",
        "properties": {
            "replicas": {
                "type": "integer",
                "minimum": 1,
                "description": "etcd members (odd); MinIO and Pulsar run one pod.",
            },
            "image": {"type": "string"},
            "storageSize": {"type": "string", "pattern": QUANTITY},
            "storageClassName": {"type": "string"},
            "deletionPolicy": {
                "type": "string",
                "enum": ["Retain", "Delete"],
                "default": "Retain",
                "description": "Delete: remove the StatefulSet and Services with the QuiverCluster.",
            },
            "pvcDeletion": {"type": "boolean", "default": False, "description": "With Delete, remove the PVCs too."},
        },
    }


def _rule(condition: str, message: str) -> list[Obj]:
    return [{"rule": f"!has(self.external) || !self.external || ({condition})", "message": message}]


def _dependencies() -> Obj:
    secret = "A Secret in the same namespace with the keys {}."
    etcd = {
        "type": "object",
        "x-kubernetes-validations": _rule(
            "has(self.endpoints) && size(self.endpoints) > 0",
            "dependencies.etcd.endpoints is required when dependencies.etcd.external is true",
        ),
        "properties": {
            "external": {"type": "boolean", "default": False},
            "endpoints": {"type": "array", "items": {"type": "string", "pattern": r"^[^\s/]+:[0-9]+$"}},
            "secretRef": {"type": "string", "description": secret.format("username and password")},
            "inCluster": _in_cluster(),
        },
    }
    storage = {
        "type": "object",
        "x-kubernetes-validations": _rule(
            "has(self.endpoint) && size(self.endpoint) > 0 && has(self.secretRef)",
            "dependencies.storage.endpoint and secretRef are required when dependencies.storage.external is true",
        ),
        "properties": {
            "external": {"type": "boolean", "default": False},
            "type": {"type": "string", "enum": ["MinIO", "S3"]},
            "endpoint": {"type": "string", "description": "host:port or URL of the S3 API."},
            "secretRef": {"type": "string", "description": secret.format("accesskey and secretkey")},
            "bucket": {"type": "string", "minLength": 3, "maxLength": 63},
            "rootPath": {"type": "string"},
            "region": {"type": "string"},
            "secure": {"type": "boolean"},
            "inCluster": _in_cluster(),
        },
    }
    pulsar = {
        "type": "object",
        "x-kubernetes-validations": _rule(
            "has(self.endpoint) && size(self.endpoint) > 0",
            "dependencies.pulsar.endpoint is required when dependencies.pulsar.external is true",
        ),
        "properties": {
            "external": {"type": "boolean", "default": False},
            "endpoint": {"type": "string", "description": "pulsar://host:6650 (or host:port)."},
            "secretRef": {"type": "string", "description": secret.format("token")},
            "tenant": {"type": "string"},
            "namespace": {"type": "string"},
            "inCluster": _in_cluster(),
        },
    }
    return {
        "type": "object",
        "description": "etcd, object storage and Pulsar: external (endpoints) or in-cluster. In standalone mode "
        "a dependency that is neither external nor given an inCluster block uses Quiver's embedded backend.",
        "properties": {"etcd": etcd, "storage": storage, "pulsar": pulsar},
    }


def _spec() -> Obj:
    service_type = {"type": "string", "enum": ["ClusterIP", "NodePort", "LoadBalancer"], "default": "ClusterIP"}
    return {
        "type": "object",
        "properties": {
            "mode": {
                "type": "string",
                "enum": ["standalone", "cluster"],
                "default": "cluster",
                "description": "standalone: one pod with its data on a PVC; cluster: one Deployment per role.",
            },
            "dataDeletion": {
                "type": "boolean",
                "default": False,
                "description": "On deletion also delete the standalone data PVC and the PVCs of in-cluster "
                "dependencies whose deletionPolicy is Delete. Object storage content is never deleted.",
            },
            "config": _free_object("Merged last into the Quiver YAML configuration (Quiver's config field names)."),
            "components": {
                "type": "object",
                "properties": {
                    "image": {"type": "string", "description": "Image of every role unless the role sets its own."},
                    "imagePullPolicy": {"type": "string", "enum": ["Always", "IfNotPresent", "Never"]},
                    "imagePullSecrets": {
                        "type": "array",
                        "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
                    },
                    "standalone": _component(
                        {"storageSize": {"type": "string", "pattern": QUANTITY}, "storageClassName": {"type": "string"}}
                    ),
                    "proxy": _component({"serviceType": service_type}),
                    "mixCoord": _component(
                        {"activeStandby": {"type": "boolean", "description": "Implied by replicas > 1."}}
                    ),
                    "queryNode": _component(),
                    "dataNode": _component(),
                    "indexNode": _component(),
                },
            },
            "dependencies": _dependencies(),
        },
    }


def _status() -> Obj:
    condition = {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
        },
    }
    return {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {
            "status": {"type": "string", "enum": ["Pending", "Healthy", "Unhealthy", "Invalid", "Deleting"]},
            "message": {"type": "string"},
            "endpoint": {"type": "string"},
            "mode": {"type": "string"},
            "observedGeneration": {"type": "integer", "format": "int64"},
            "replicas": {"type": "object", "additionalProperties": {"type": "integer"}},
            "conditions": {"type": "array", "items": condition},
        },
    }


def crd() -> Obj:
    columns = [
        {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
        {"name": "Status", "type": "string", "jsonPath": ".status.status"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="QuiverReady")].status'},
        {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    schema = {
        "type": "object",
        "description": "A Quiver vector database (Milvus 2.x protocol), standalone or a cluster of roles.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": _spec(),
            "status": _status(),
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "quiverclusters.quiver.io", "labels": {"app.kubernetes.io/name": "quiver-operator"}},
        "spec": {
            "group": "quiver.io",
            "scope": "Namespaced",
            "names": {
                "kind": "QuiverCluster",
                "listKind": "QuiverClusterList",
                "plural": "quiverclusters",
                "singular": "quivercluster",
                "shortNames": ["qc"],
                "categories": ["quiver"],
            },
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


HEADER = "# Generated by `python -m quiver_operator.crd` (operator/quiver_operator/crd.py): edit that, not this.\n"


def render() -> str:
    return HEADER + yaml.safe_dump(crd(), sort_keys=False, width=120)


if __name__ == "__main__":
    sys.stdout.write(render())
