"""The image recipe, checked without Docker: base, install, user, entrypoint, exposed ports, the
build context that .dockerignore leaves, and the HEALTHCHECK command run against a live /healthz."""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from tests.k8s.paths import OPERATOR, ROOT


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = path.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _one(instr: list[tuple[str, str]], word: str) -> str:
    found = [rest for w, rest in instr if w == word]
    assert found, f"no {word}"
    return found[-1]


def test_quiver_image_recipe() -> None:
    instr = _instructions(ROOT / "Dockerfile")
    froms = [rest for w, rest in instr if w == "FROM"]
    assert froms and all(f.startswith("python:3.11-slim") for f in froms)
    runs = " ".join(rest for w, rest in instr if w == "RUN")
    assert 'pip install --prefix=/install ".[cluster]"' in runs
    assert "useradd" in runs
    user = _one(instr, "USER")
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) >= 1000  # numeric, non-root
    assert json.loads(_one(instr, "ENTRYPOINT")) == ["quiver"]
    assert json.loads(_one(instr, "CMD")) == ["run", "standalone"]
    assert set(_one(instr, "EXPOSE").split()) == {"19530", "9091"}
    assert "/healthz" in _one(instr, "HEALTHCHECK")


def _ignored(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    for pattern in patterns:
        pattern = pattern.removeprefix("**/")
        if any(fnmatch.fnmatch("/".join(parts[: i + 1]), pattern) for i in range(len(parts))):
            return True
        if any(fnmatch.fnmatch(p, pattern) for p in parts) and "/" not in pattern:
            return True
    return False


def test_build_context_has_what_pip_needs_and_nothing_heavy() -> None:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    for heavy in (".git", ".venv", "quiver-data", "tests", "helm", "operator"):
        assert _ignored(heavy, patterns), heavy
    assert _ignored("common/__pycache__/x.pyc", patterns)
    for needed in ("pyproject.toml", "common/config.py", "services/proxy/server.py", "quiver/cli.py"):
        assert (ROOT / needed).exists() and not _ignored(needed, patterns), needed


@pytest.mark.parametrize(("code", "healthy"), [(200, True), (503, False)])
def test_healthcheck_command_follows_healthz(code: int, healthy: bool) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(code if self.path == "/healthz" else 404)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hc = _one(_instructions(ROOT / "Dockerfile"), "HEALTHCHECK")
        cmd = json.loads(hc[hc.index("CMD") + 3:].strip())
        env = {**os.environ, "QUIVER_HTTP_PORT": str(port)}
        proc = subprocess.run(["python3", *cmd[1:]], env=env, capture_output=True, timeout=30)
        assert (proc.returncode == 0) == healthy, proc.stderr
    finally:
        server.shutdown()


def test_operator_image_recipe() -> None:
    instr = _instructions(OPERATOR / "Dockerfile")
    assert _one(instr, "FROM").startswith("python:3.11-slim")
    assert _one(instr, "USER").split(":")[0] == "10001"
    assert json.loads(_one(instr, "ENTRYPOINT"))[0] == "quiver-operator"
