"""One Quiver per mode for all e2e modules, handed to each module as a fresh server would be.

Starting a local cluster (etcd, SeaweedFS, pulsar-lite and a process per role) takes ~8 s and
stopping it ~4 s on a 2-core machine; once per module that was a third of the whole suite. So
the e2e modules share one standalone server and one cluster, and each module leaves the server
as it found it: between modules :func:`reset` drops every collection (aliases first), every
database but ``default``, every user but ``root``, every role but the built-in ones and every
resource group but the default one. A server that is unhealthy, or that a reset could not clean,
is stopped and the next module gets a new one. The last module of a mode stops its server.

Modules that need a server of their own (other configuration, restarts, TLS, auth) define their
own fixtures and are untouched by this.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pymilvus import MilvusClient
from pymilvus.client.types import ResourceGroupConfig

from tests.e2e.cluster_server import ClusterServer
from tests.e2e.server import StandaloneServer

log = logging.getLogger(__name__)
Server = StandaloneServer | ClusterServer
DEFAULT_RG = "__default_resource_group"
BUILTIN_ROLES = {"admin", "public"}


class SharedServers:
    """The running server of each mode, and how many (module, mode) uses are still to come."""

    def __init__(self) -> None:
        self.running: dict[str, Server] = {}
        self.uses_left: dict[str, int] = {}

    def acquire(self, mode: str, workdir: Path) -> Server:
        srv = self.running.get(mode)
        if srv is not None and not healthy(srv):
            log.warning("the shared %s server is unhealthy: starting a new one", mode)
            self.discard(mode)
            srv = None
        if srv is None:
            srv = StandaloneServer(workdir / "data") if mode == "standalone" else ClusterServer(workdir)
            srv.start()
            self.running[mode] = srv
        return srv

    def release(self, mode: str) -> None:
        """A module is done with the server: clean it for the next one, or stop it after the last."""
        self.uses_left[mode] = self.uses_left.get(mode, 1) - 1
        srv = self.running.get(mode)
        if srv is None:
            return
        if self.uses_left[mode] <= 0:
            self.discard(mode)
            return
        try:
            reset(srv)
        except Exception as exc:  # noqa: BLE001 - any leftover means: give the next module a new server
            log.warning("could not reset the shared %s server (%s): starting a new one", mode, exc)
            self.discard(mode)

    def discard(self, mode: str) -> None:
        srv = self.running.pop(mode, None)
        if srv is not None:
            srv.stop()

    def stop_all(self) -> None:
        for mode in list(self.running):
            self.discard(mode)


def healthy(srv: Server) -> bool:
    try:
        if isinstance(srv, StandaloneServer):
            if srv.proc is None or srv.proc.poll() is not None:
                return False
            srv.wait_ready(10)
        else:
            srv.cluster.wait_ready(10)
        return True
    except (RuntimeError, TimeoutError):
        return False


def reset(srv: Server) -> None:
    """Drop what a module may have left: collections, databases, users, roles, resource groups."""
    c = MilvusClient(uri=srv.uri, user="root", password="Milvus", timeout=60)
    try:
        for db in c.list_databases():
            c.use_database(db)
            for name in c.list_collections():
                for alias in c.list_aliases(name).get("aliases", []):
                    c.drop_alias(alias)
                c.drop_collection(name)
            if db != "default":
                c.drop_database(db)
        c.use_database("default")
        for user in c.list_users():
            if user != "root":
                c.drop_user(user)
        for role in c.list_roles():
            if role not in BUILTIN_ROLES:
                c.drop_role(role, force_drop=True)
        _drop_resource_groups(c)
        left = [g for g in c.list_resource_groups() if g != DEFAULT_RG]
        if c.list_databases() != ["default"] or c.list_collections() or left:
            raise RuntimeError(f"left after the reset: {c.list_databases()}, {c.list_collections()}, {left}")
    finally:
        c.close()


def _drop_resource_groups(c: MilvusClient) -> None:
    groups = [g for g in c.list_resource_groups() if g != DEFAULT_RG]
    if not groups:
        return
    empty = ResourceGroupConfig(requests={"node_num": 0}, limits={"node_num": 0})
    c.update_resource_groups({g: empty for g in groups})
    deadline = time.monotonic() + 30
    while any(c.describe_resource_group(g).num_available_node for g in groups):
        if time.monotonic() > deadline:
            raise RuntimeError(f"resource groups {groups} kept their nodes")
        time.sleep(0.3)
    for g in groups:
        c.drop_resource_group(g)
