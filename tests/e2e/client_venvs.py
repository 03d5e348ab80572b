"""Virtualenvs holding older, unmodified pymilvus releases, for the client-compatibility e2e tests.

Quiver must work with real pymilvus 2.5.x, 2.6.x and 3.0.x as their users install them. The
project's own venv holds only one pymilvus, so each other release gets a virtualenv of its own
under ``.venv-clients/`` at the repository root (gitignored). A venv is built once per exact
version and reused by later runs: a stamp file, written only after the install and an import
check succeed, marks it complete, so a build cut short is redone rather than trusted. A file
lock per version lets two test runs on one machine share the cache safely.

A build that fails because the package index cannot be reached raises ``IndexUnreachable``
(the tests skip on that and only that); any other failure raises ``VenvBuildError`` with pip's
output.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".venv-clients"

# The newest release of each older pymilvus line (from `pip index versions pymilvus`), pinned so a
# run is reproducible. The current 3.0.x line is the one in the project's own venv.
PYMILVUS_RELEASES: tuple[str, ...] = ("2.5.18", "2.6.17")
# What each client venv holds besides pymilvus: the client scripts build their data with numpy.
EXTRA_REQUIREMENTS: tuple[str, ...] = ("numpy",)

PIP_TIMEOUT_S = 900.0
STAMP_NAME = "quiver-client-venv.json"


class VenvBuildError(RuntimeError):
    """A client venv could not be built for a reason other than the index being unreachable."""


class IndexUnreachable(VenvBuildError):
    """pip could not reach the package index, so no client venv can be built on this machine."""


@dataclass(frozen=True)
class ClientEnv:
    """A Python interpreter with one pymilvus release installed."""

    pymilvus_version: str
    python: Path
    build_seconds: float = 0.0  # 0 when the venv came from the cache (or is the project's own)
    own_venv: bool = False

    @property
    def tag(self) -> str:
        """A name usable in collection names and test ids: ``2.5.18`` -> ``2_5_18``."""
        return self.pymilvus_version.replace(".", "_").replace("-", "_")


def own_env() -> ClientEnv:
    """The interpreter running the tests, with the project's pymilvus (3.0.x)."""
    import pymilvus

    return ClientEnv(pymilvus_version=pymilvus.__version__, python=Path(sys.executable), own_venv=True)


def venv_dir(version: str) -> Path:
    py = f"py{sys.version_info.major}.{sys.version_info.minor}"
    return CACHE_DIR / f"pymilvus-{version}-{py}"


def _requirements(version: str) -> list[str]:
    return [f"pymilvus=={version}", *EXTRA_REQUIREMENTS]


def _stamp(version: str) -> dict[str, object]:
    return {"requirements": _requirements(version), "python": sys.version.split()[0]}


def _venv_python(path: Path) -> Path:
    return path / "bin" / "python"


def _run(cmd: list[str], timeout: float = PIP_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def installed_version(python: Path) -> str | None:
    """The pymilvus version that ``python`` imports, or None if it cannot import it."""
    if not python.exists():
        return None
    res = _run([str(python), "-I", "-c", "import pymilvus; print(pymilvus.__version__)"], timeout=120)
    return res.stdout.strip() if res.returncode == 0 else None


def _is_cached(version: str) -> bool:
    path = venv_dir(version)
    stamp = path / STAMP_NAME
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return recorded == _stamp(version) and installed_version(_venv_python(path)) == version


def index_reachable() -> bool:
    """Whether pip, with this machine's configuration, can list pymilvus releases from the index."""
    try:
        res = _run([sys.executable, "-m", "pip", "index", "versions", "pymilvus"], timeout=180)
    except subprocess.TimeoutExpired:
        return False
    return res.returncode == 0 and "Available versions" in res.stdout


@contextmanager
def _locked(version: str) -> Iterator[None]:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / f".pymilvus-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_env(version: str) -> ClientEnv:
    """Return a venv with ``pymilvus==version`` (and numpy), building it if it is not cached."""
    path = venv_dir(version)
    python = _venv_python(path)
    with _locked(version):
        if _is_cached(version):
            return ClientEnv(pymilvus_version=version, python=python)
        started = time.monotonic()
        shutil.rmtree(path, ignore_errors=True)
        made = _run([sys.executable, "-m", "venv", str(path)], timeout=300)
        if made.returncode != 0:
            raise VenvBuildError(f"python -m venv {path} failed:\n{made.stdout}\n{made.stderr}")
        cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *_requirements(version)]
        try:
            res = _run(cmd)
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(path, ignore_errors=True)
            if not index_reachable():
                raise IndexUnreachable(f"pip install timed out and the package index is unreachable: {exc}") from exc
            raise VenvBuildError(f"{' '.join(cmd)} timed out after {PIP_TIMEOUT_S}s") from exc
        if res.returncode != 0:
            shutil.rmtree(path, ignore_errors=True)
            output = f"{' '.join(cmd)} exited {res.returncode}:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
            if not index_reachable():
                raise IndexUnreachable(f"the package index is unreachable; {output}")
            raise VenvBuildError(output)
        got = installed_version(python)
        if got != version:
            probe = _run([str(python), "-I", "-c", "import pymilvus"], timeout=120)
            raise VenvBuildError(f"venv {path} imports pymilvus {got!r}, wanted {version}:\n{probe.stderr[-4000:]}")
        (path / STAMP_NAME).write_text(json.dumps(_stamp(version)))
        return ClientEnv(pymilvus_version=version, python=python, build_seconds=time.monotonic() - started)
