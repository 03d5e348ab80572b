"""A local cluster with the same face as :class:`StandaloneServer`, so e2e tests run on both."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from quiver.devcluster import ClusterLayout, LocalCluster


@dataclass
class ClusterServer:
    workdir: Path
    layout: ClusterLayout | None = None

    def __post_init__(self) -> None:
        self.cluster = LocalCluster(self.workdir, self.layout or ClusterLayout())

    @property
    def grpc_port(self) -> int:
        return self.cluster.proxies()[0].grpc_port

    @property
    def http_port(self) -> int:
        return self.cluster.proxies()[0].http_port

    @property
    def uri(self) -> str:
        return self.cluster.uri

    def start(self) -> None:
        self.cluster.start_servers()
        self.cluster.start_roles()

    def stop(self) -> None:
        self.cluster.stop()

    def log(self) -> str:
        return "\n".join(f"--- {r.name}\n{r.log_tail(20)}" for r in self.cluster.roles)
