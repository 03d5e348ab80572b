"""Start, stop, kill and restart the processes of a local cluster, and remember them on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc

from quiver.devcluster.servers import (
    EtcdServer,
    PulsarLiteServer,
    SeaweedS3Server,
    ServerProcess,
    free_ports,
)

ROLE_ORDER = ("coord", "datanode", "indexnode", "querynode", "proxy")


@dataclass
class ClusterLayout:
    coords: int = 1
    querynodes: int = 2
    datanodes: int = 1
    indexnodes: int = 1
    proxies: int = 1

    def roles(self) -> list[str]:
        counts = {
            "coord": self.coords,
            "datanode": self.datanodes,
            "indexnode": self.indexnodes,
            "querynode": self.querynodes,
            "proxy": self.proxies,
        }
        return [role for role in ROLE_ORDER for _ in range(counts[role])]


@dataclass
class RoleProcess:
    name: str  # e.g. "querynode-2"
    role: str
    args: list[str]
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    grpc_port: int = 0
    http_port: int = 0
    metrics_port: int = 0  # non-proxy roles: Prometheus /metrics (the proxy serves it on http_port)

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", "quiver", "run", self.role, *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        self.terminate()
        self.wait_stopped(timeout)

    def terminate(self) -> None:
        """SIGTERM: the process shuts down cleanly (a querynode first hands its channels over)."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout: float = 30.0) -> None:
        """Until the process has exited; killed if it takes longer than ``timeout``."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class LocalCluster:
    """Everything of one local cluster under ``workdir``."""

    workdir: Path
    layout: ClusterLayout = field(default_factory=ClusterLayout)
    extra_config: dict[str, Any] = field(default_factory=dict)
    servers: dict[str, ServerProcess] = field(default_factory=dict)
    roles: list[RoleProcess] = field(default_factory=list)

    # --- external servers ---------------------------------------------------------------
    def start_servers(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.servers = {
            "etcd": EtcdServer(str(self.workdir / "etcd")),
            "s3": SeaweedS3Server(str(self.workdir / "seaweedfs")),
            "pulsar": PulsarLiteServer(str(self.workdir / "pulsar")),
        }
        for server in self.servers.values():
            server.start()

    @property
    def etcd(self) -> EtcdServer:
        server = self.servers["etcd"]
        assert isinstance(server, EtcdServer)
        return server

    @property
    def s3(self) -> SeaweedS3Server:
        server = self.servers["s3"]
        assert isinstance(server, SeaweedS3Server)
        return server

    @property
    def pulsar(self) -> PulsarLiteServer:
        server = self.servers["pulsar"]
        assert isinstance(server, PulsarLiteServer)
        return server

    def config(self) -> dict[str, Any]:
        s3 = self.s3
        cfg: dict[str, Any] = {
            "host": "127.0.0.1",
            "session_ttl_seconds": 3.0,
            "kv": {"backend": "etcd", "etcd": {"endpoints": [self.etcd.endpoint], "root_path": "quiver"}},
            "stream": {
                "backend": "pulsar",
                "topic_prefix": "quiver",
                "pulsar": {"service_url": self.pulsar.service_url},
            },
            "storage": {
                "backend": "s3",
                "root_path": "files",
                "s3": {
                    "endpoint": s3.endpoint.removeprefix("http://"),
                    "bucket": "quiver",
                    "access_key": s3.access_key,
                    "secret_key": s3.secret_key,
                    "secure": False,
                },
            },
        }
        return _merge(cfg, self.extra_config)

    # --- roles --------------------------------------------------------------------------
    def start_roles(self, timeout: float = 90.0) -> None:
        config_path = self.workdir / "quiver.yaml"
        config_path.write_text(yaml.safe_dump(self.config()))
        env = dict(os.environ)
        env.pop("QUIVER_CONFIG", None)
        counts: dict[str, int] = {}
        for role in self.layout.roles():
            counts[role] = counts.get(role, 0) + 1
            self.add_role(role, config_path, env, start=True)
        self.wait_ready(timeout)

    def add_role(self, role: str, config_path: Path | None = None, env: dict[str, str] | None = None,
                 start: bool = True) -> RoleProcess:
        """Start one more process of ``role`` (scale out)."""
        config_path = config_path or self.workdir / "quiver.yaml"
        index = sum(1 for r in self.roles if r.role == role) + 1
        internal, grpc_port, http_port = free_ports(3)
        args = ["--config", str(config_path), "--internal-port", str(internal), "--log-level", "INFO"]
        role_env = dict(env or os.environ)
        if role == "proxy":
            args += ["--grpc-port", str(grpc_port), "--http-port", str(http_port)]
        else:
            role_env["QUIVER_METRICS_PORT"] = str(http_port)
        proc = RoleProcess(
            f"{role}-{index}", role, args, self.workdir / f"{role}-{index}.log", role_env,
            grpc_port=grpc_port if role == "proxy" else 0, http_port=http_port if role == "proxy" else 0,
            metrics_port=0 if role == "proxy" else http_port,
        )
        self.roles.append(proc)
        if start:
            proc.start()
        return proc

    def live(self, role: str) -> list[RoleProcess]:
        """The processes of ``role`` that are running (scaling tests stop and add them)."""
        return [r for r in self.roles if r.role == role and r.alive()]

    def proxies(self) -> list[RoleProcess]:
        return [r for r in self.roles if r.role == "proxy"]

    def role(self, name: str) -> RoleProcess:
        for r in self.roles:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.proxies()[0].grpc_port}"

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until every process lives and every running proxy reports healthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in self.roles:
                if r.process is not None and not r.alive():
                    raise RuntimeError(f"{r.name} exited with {r.process.returncode}:\n{r.log_tail()}")
            running = [p for p in self.proxies() if p.alive()]
            if running and all(_healthy(p.grpc_port) for p in running):
                return
            time.sleep(0.25)
        tails = "\n".join(f"--- {r.name}\n{r.log_tail(10)}" for r in self.roles)
        raise TimeoutError(f"cluster not ready within {timeout}s\n{tails}")

    def stop(self) -> None:
        """Every role but the coordinators at once, then the coordinators, then the servers at once.

        The whole cluster is going away, so nothing is handed over: querynodes that get SIGTERM
        together find no peer to drain to and exit (a drain only helps when one node leaves;
        stopping them one after another had each wait for the next to take its channels). The
        coordinators go last so the workers' final calls to them (a datanode's last sync) answer.
        """
        for wave in ([r for r in self.roles if r.role != "coord"], [r for r in self.roles if r.role == "coord"]):
            for r in wave:
                r.terminate()
            for r in wave:
                r.wait_stopped()
        with ThreadPoolExecutor(max_workers=max(1, len(self.servers))) as pool:
            list(pool.map(lambda server: server.stop(), self.servers.values()))

    # --- state on disk (for `down` in another process) ----------------------------------
    def save_state(self) -> None:
        state = {
            "roles": [{"name": r.name, "pid": r.pid, "grpc_port": r.grpc_port, "http_port": r.http_port}
                      for r in self.roles],
            "servers": {n: s.process.pid for n, s in self.servers.items() if s.process is not None},
            "uri": self.uri,
        }
        (self.workdir / "state.json").write_text(json.dumps(state, indent=2))


def _healthy(port: int) -> bool:
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            resp = milvus_pb2_grpc.MilvusServiceStub(ch).CheckHealth(milvus_pb2.CheckHealthRequest(), timeout=1)
            return bool(resp.isHealthy)
    except grpc.RpcError:
        return False


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def stop_from_state(workdir: Path, timeout: float = 30.0) -> list[str]:
    """Stop whatever ``state.json`` lists (roles first, then servers); returns what was stopped."""
    path = workdir / "state.json"
    if not path.exists():
        return []
    state = json.loads(path.read_text())
    pids = [(r["name"], r["pid"]) for r in reversed(state["roles"])] + list(state["servers"].items())
    stopped = []
    for name, pid in pids:
        if pid and _signal(pid, signal.SIGTERM):
            stopped.append(name)
    deadline = time.monotonic() + timeout
    for _, pid in pids:
        while pid and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid and _alive(pid):
            _signal(pid, signal.SIGKILL)
    path.unlink()
    return stopped


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True
