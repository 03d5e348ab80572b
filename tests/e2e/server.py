"""Start and stop a real Quiver standalone process for end-to-end tests.

The server runs as the user would run it (``python -m quiver run standalone``) on free
loopback ports with its own data directory; tests can stop it gently, kill -9 it, and start
it again on the same data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc

from quiver.devcluster.servers import free_ports


def _http_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@dataclass
class StandaloneServer:
    data_dir: Path
    grpc_port: int = 0
    http_port: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def __post_init__(self) -> None:
        if not self.grpc_port or not self.http_port:
            self.grpc_port, self.http_port = free_ports(2)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    def start(self, timeout: float = 60.0) -> None:
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        env = dict(os.environ) | self.extra_env
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child process owns it
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "quiver",
                "run",
                "standalone",
                "--data-dir",
                str(self.data_dir),
                "--grpc-port",
                str(self.grpc_port),
                "--http-port",
                str(self.http_port),
                "--log-level",
                "WARNING",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}") as ch:
                    stub = milvus_pb2_grpc.MilvusServiceStub(ch)
                    resp = stub.CheckHealth(milvus_pb2.CheckHealthRequest(), timeout=1)
                    if resp.isHealthy and _http_ok(self.http_port):
                        return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path and self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM, as a service manager would; waits for a clean exit."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """kill -9: no chance to flush or clean up."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self.proc = None
