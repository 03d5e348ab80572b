"""The Quiver operator: a Kopf controller for the QuiverCluster custom resource (quiver.io/v1alpha1).

The pure parts (spec parsing, manifest building, rollout planning, status) live in their own
modules and are unit-tested without a cluster; ``handlers`` wires them to Kubernetes.
Run it with ``kopf run -m quiver_operator.handlers --all-namespaces``.
"""

__version__ = "0.1.0"
