"""The systems the bench compares: one small class per table column.

A target knows how to make itself ready (install a virtualenv, start a server) and hands the
orchestrator an ``Endpoint``: which Python runs the workload, which module, and the URI to give
it. Adding a column means adding one class here and one line in ``TARGETS``. A target that cannot
run raises ``TargetUnavailable`` with a reason a person can act on; the bench then shows ``n/a``
and that reason in the column instead of stopping.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

MILVUS_LITE_VERSION = "2.5.1"
# Exact pins so that the baseline column means the same thing on every machine and every run.
# setuptools<80: milvus-lite 2.5.1 still imports pkg_resources, which setuptools 80 dropped.
LITE_REQUIREMENTS = (
    f"milvus-lite=={MILVUS_LITE_VERSION}",
    "pymilvus==2.5.18",
    "setuptools<80",
    "numpy>=1.26,<3",
)
LITE_IMPORT_CHECK = "import milvus_lite, pymilvus, numpy; print(pymilvus.__version__)"
# GetVersion is how Quiver says it is ready; a server without it (milvus-lite over TCP, for a
# `uri=` target) counts as ready once it lists collections.
READY_PROBE = """
import sys
from pymilvus import MilvusClient
c = MilvusClient(uri=sys.argv[1], timeout=10)
try:
    print(c.get_server_version())
except Exception as exc:
    if "UNIMPLEMENTED" not in repr(exc):
        raise
    c.list_collections()
    print("unknown (GetVersion not implemented)")
c.close()
"""


class TargetUnavailable(Exception):
    """The target cannot be benchmarked here; the message says why and is shown in the table."""


@dataclass
class RunContext:
    """Paths and settings shared by every target in one bench run."""

    repo: Path  # the Quiver checkout
    work: Path  # cache and scratch root (.bench/): virtualenvs, data sets, logs
    logs: Path  # this run's log directory
    tmp: Path  # this run's scratch directory, removed at the end
    main_python: Path  # Quiver's virtualenv python (the one running the orchestrator)
    pypath: Path  # a directory holding only the `bench` package, for PYTHONPATH
    startup_timeout: float = 90.0

    def log(self, message: str) -> None:
        print(f"[bench] {message}", flush=True)


@dataclass
class Endpoint:
    """How to run the workload against a ready target."""

    python: Path
    uri: str
    module: str = "bench.workload_milvus"
    env: dict[str, str] = field(default_factory=dict)


class Target:
    """Base class of a table column. Subclasses set ``kind``/``default_label`` and ``running``."""

    kind = "target"
    default_label = "target"

    def __init__(self, suffix: str = "", label: str | None = None) -> None:
        self.name = self.kind + (f"#{suffix}" if suffix else "")
        self.label = label or (self.default_label + (f" #{suffix}" if suffix else ""))

    def prepare(self, ctx: RunContext) -> None:
        """Install or check what the target needs; may take minutes the first time."""

    @contextmanager
    def running(self, ctx: RunContext) -> Iterator[Endpoint]:
        """Start the target, yield its endpoint, stop it afterwards."""
        raise TargetUnavailable(f"{self.kind} is not implemented")
        yield  # pragma: no cover


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])[-400:]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop_process_group(proc: subprocess.Popen[bytes], grace_s: float = 20.0) -> None:
    """Stop a child started with ``start_new_session=True`` and everything it spawned."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            # the leader is gone; make sure nothing it spawned is left behind
            os.killpg(proc.pid, signal.SIGKILL)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def child_env(ctx: RunContext) -> dict[str, str]:
    """Environment for workload and probe processes: only `bench` added to the import path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(ctx.pypath)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("GRPC_VERBOSITY", "ERROR")
    return env


# --------------------------------------------------------------------------------------------
class MilvusLiteTarget(Target):
    """The real Milvus engine, embedded: milvus-lite 2.5.1 in its own cached virtualenv."""

    kind = "milvus-lite"
    default_label = f"milvus-lite {MILVUS_LITE_VERSION}"

    def venv(self, ctx: RunContext) -> Path:
        return ctx.work / "venv-lite"

    def prepare(self, ctx: RunContext) -> None:
        ctx.work.mkdir(parents=True, exist_ok=True)
        with (ctx.work / "venv-lite.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two benches at once must not build the venv twice
            self._ensure_venv(ctx)

    def _ensure_venv(self, ctx: RunContext) -> None:
        venv = self.venv(ctx)
        python = venv / "bin" / "python"
        stamp = venv / ".bench-stamp.json"
        wanted = {"requirements": list(LITE_REQUIREMENTS), "base_python": sys.version.split()[0]}
        if python.exists() and stamp.exists():
            try:
                ok = json.loads(stamp.read_text()) == wanted
            except ValueError:
                ok = False
            if ok and self._import_check(python, ctx) is not None:
                return
        ctx.log(f"creating {venv} ({' '.join(LITE_REQUIREMENTS)}); first run only")
        shutil.rmtree(venv, ignore_errors=True)
        log = ctx.logs / "venv-lite-install.log"
        base_python = getattr(sys, "_base_executable", sys.executable)
        with log.open("wb") as fh:
            steps = [
                [base_python, "-m", "venv", str(venv)],
                [str(python), "-m", "pip", "install", "--disable-pip-version-check", *LITE_REQUIREMENTS],
            ]
            for cmd in steps:
                rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=900).returncode
                if rc != 0:
                    shutil.rmtree(venv, ignore_errors=True)
                    raise TargetUnavailable(
                        f"installing milvus-lite failed: `{' '.join(cmd[-3:])}` exited {rc}: {_tail(log)} (see {log})"
                    )
        version = self._import_check(python, ctx)
        if version is None:
            raise TargetUnavailable(f"milvus-lite installed but does not import; see {log}")
        stamp.write_text(json.dumps(wanted))

    @staticmethod
    def _import_check(python: Path, ctx: RunContext) -> str | None:
        res = subprocess.run(
            [str(python), "-c", LITE_IMPORT_CHECK],
            capture_output=True,
            text=True,
            timeout=120,
            env=child_env(ctx),
        )
        return res.stdout.strip() if res.returncode == 0 else None

    @contextmanager
    def running(self, ctx: RunContext) -> Iterator[Endpoint]:
        # pymilvus starts the embedded server itself when given a local file as URI
        d = ctx.tmp / self.name.replace("#", "-")
        d.mkdir(parents=True, exist_ok=True)
        yield Endpoint(python=self.venv(ctx) / "bin" / "python", uri=str(d / "lite.db"))


class QuiverStandaloneTarget(Target):
    """`quiver run standalone` as a subprocess on free ports with a scratch data directory."""

    kind = "quiver-standalone"
    default_label = "quiver-standalone"

    def command(self, ctx: RunContext, data_dir: Path, grpc_port: int, http_port: int) -> list[str]:
        return [
            str(ctx.main_python), "-m", "quiver", "run", "standalone",
            "--data-dir", str(data_dir), "--grpc-port", str(grpc_port), "--http-port", str(http_port),
        ]  # fmt: skip

    @contextmanager
    def running(self, ctx: RunContext) -> Iterator[Endpoint]:
        data_dir = ctx.tmp / (self.name.replace("#", "-") + "-data")
        data_dir.mkdir(parents=True, exist_ok=True)
        grpc_port = free_port()
        http_port = free_port()
        while http_port == grpc_port:
            http_port = free_port()
        uri = f"http://127.0.0.1:{grpc_port}"
        log = ctx.logs / f"{self.name.replace('#', '-')}-server.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                self.command(ctx, data_dir, grpc_port, http_port),
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(ctx.repo),
                start_new_session=True,
            )
        try:
            version = wait_until_ready(ctx, uri, grpc_port, log, proc.poll)
            ctx.log(f"{self.name} answers on {uri} (version {version})")
            yield Endpoint(python=ctx.main_python, uri=uri)
        finally:
            stop_process_group(proc)


def wait_until_ready(
    ctx: RunContext,
    uri: str,
    port: int,
    log: Path | None = None,
    exited: Callable[[], int | None] | None = None,
) -> str:
    """Wait until pymilvus' GetVersion answers on ``uri``; return the version it reports."""
    deadline = time.monotonic() + ctx.startup_timeout
    last = ""
    where = f" (log: {log})" if log else ""
    while True:
        rc = exited() if exited else None
        if rc is not None:
            tail = _tail(log) if log else ""
            raise TargetUnavailable(f"server exited with code {rc} before answering: {tail}{where}")
        if time.monotonic() > deadline:
            raise TargetUnavailable(
                f"server did not answer GetVersion on {uri} within {ctx.startup_timeout:.0f}s"
                f"{': ' + last if last else ''}{where}"
            )
        if port_open(port):
            try:
                res = subprocess.run(
                    [str(ctx.main_python), "-c", READY_PROBE, uri],
                    capture_output=True, text=True, timeout=30, env=child_env(ctx),
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                last = "GetVersion probe timed out"
            else:
                if res.returncode == 0:
                    return res.stdout.strip()
                last = (res.stderr.strip().splitlines() or ["probe failed"])[-1][:200]
        time.sleep(0.5)


class QuiverClusterTarget(Target):
    """A local Quiver cluster: real etcd, SeaweedFS and pulsar-lite, and every role as a process
    (1 coord, 2 querynodes, 1 datanode, 1 indexnode, 1 proxy), started with quiver.devcluster."""

    kind = "quiver-cluster"
    default_label = "quiver-cluster"

    def prepare(self, ctx: RunContext) -> None:
        env = child_env(ctx) | {"VENV": str(ctx.main_python.parent.parent)}
        script = str(ctx.repo / "scripts" / "install-servers.sh")
        res = subprocess.run(["bash", script], capture_output=True, text=True, timeout=900, env=env)
        if res.returncode != 0:
            raise TargetUnavailable(f"installing etcd/SeaweedFS/pulsar-lite failed: {res.stderr.strip()[-300:]}")

    @contextmanager
    def running(self, ctx: RunContext) -> Iterator[Endpoint]:
        from quiver.devcluster import LocalCluster

        cluster = LocalCluster(ctx.tmp / (self.name.replace("#", "-") + "-cluster"))
        try:
            cluster.start_servers()
            cluster.start_roles()
            proxy = cluster.proxies()[0]
            version = wait_until_ready(
                ctx, cluster.uri, proxy.grpc_port, proxy.log_path, proxy.process.poll if proxy.process else None
            )
            ctx.log(f"{self.name} answers on {cluster.uri} (version {version}); logs in {cluster.workdir}")
            yield Endpoint(python=ctx.main_python, uri=cluster.uri)
        except (RuntimeError, TimeoutError, OSError) as exc:
            raise TargetUnavailable(f"local cluster did not start: {exc}") from exc
        finally:
            cluster.stop()


class FaissRawTarget(Target):
    """The same indexes and parameters driven directly with faiss, in-process (search rows only)."""

    kind = "faiss-raw"
    default_label = "faiss-raw"

    def prepare(self, ctx: RunContext) -> None:
        res = subprocess.run(
            [str(ctx.main_python), "-c", "import faiss"],
            capture_output=True,
            text=True,
            timeout=60,
            env=child_env(ctx),
        )
        if res.returncode != 0:
            raise TargetUnavailable(f"faiss does not import in {ctx.main_python}: {res.stderr.strip()[-200:]}")

    @contextmanager
    def running(self, ctx: RunContext) -> Iterator[Endpoint]:
        yield Endpoint(python=ctx.main_python, uri="", module="bench.workload_faiss")


class UriTarget(Target):
    """Any Milvus-protocol server that is already running (e.g. a cluster started by hand)."""

    kind = "uri"

    def __init__(self, uri: str, suffix: str = "", label: str | None = None) -> None:
        super().__init__(suffix, label or uri)
        self.uri = uri
        self.name = f"uri:{uri}" + (f"#{suffix}" if suffix else "")

    def prepare(self, ctx: RunContext) -> None:
        port = int(self.uri.rsplit(":", 1)[-1].split("/")[0])
        wait_until_ready(ctx, self.uri, port)

    @contextmanager
    def running(self, ctx: RunContext) -> Iterator[Endpoint]:
        yield Endpoint(python=ctx.main_python, uri=self.uri)


TARGETS: dict[str, type[Target]] = {
    t.kind: t for t in (MilvusLiteTarget, QuiverStandaloneTarget, QuiverClusterTarget, FaissRawTarget)
}


def make_target(spec: str) -> Target:
    """Build a target from a command-line spec.

    ``milvus-lite``, ``quiver-standalone``, ``quiver-cluster``, ``faiss-raw``, or
    ``uri=http://host:port`` for a server already running. ``NAME#TAG`` runs a second, separately
    labelled instance (``milvus-lite#2`` compares milvus-lite with itself, to see the noise).
    """
    spec = spec.strip()
    if spec.startswith("uri="):
        uri, _, suffix = spec[4:].partition("#")
        return UriTarget(uri, suffix)
    kind, _, suffix = spec.partition("#")
    if kind not in TARGETS:
        raise SystemExit(f"unknown target {kind!r}; known: {', '.join(TARGETS)}, uri=URI")
    return TARGETS[kind](suffix)
