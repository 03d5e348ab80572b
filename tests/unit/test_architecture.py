"""The dependency rules of ARCHITECTURE.md, enforced: roles never import each other, and
common/ never imports a role (import-linter contracts in pyproject.toml)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("proxy", "coord", "querynode", "datanode", "indexnode")


def test_import_linter_contracts_hold() -> None:
    linter = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "KEPT" in proc.stdout and "BROKEN" not in proc.stdout


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_no_role_imports_another_even_lazily() -> None:
    """Also catches imports inside functions, which import-linter sees too, but spelled out."""
    bad = []
    for role in ROLES:
        for path in (ROOT / "services" / role).rglob("*.py"):
            for mod in _imports(path):
                parts = mod.split(".")
                if parts[0] == "services" and len(parts) > 1 and parts[1] != role:
                    bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, bad


def test_common_imports_no_role() -> None:
    bad = [
        f"{p.relative_to(ROOT)} imports {m}"
        for p in (ROOT / "common").rglob("*.py")
        for m in _imports(p)
        if m.split(".")[0] in ("services", "quiver")
    ]
    assert not bad, bad
