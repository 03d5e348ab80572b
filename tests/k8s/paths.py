"""Where the deployment artifacts live, and the Kubernetes versions they are validated against."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "quiver"
OPERATOR = ROOT / "operator"
# Recent Kubernetes minor versions every rendered manifest must validate against.
KUBE_VERSIONS = ("1.31.0", "1.34.0", "1.37.0")
