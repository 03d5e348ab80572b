"""free_ports: the loopback ports local clusters and test servers are started on."""

from __future__ import annotations

import random
import socket

import pytest

from quiver.devcluster import servers
from quiver.devcluster.servers import free_ports


def test_a_port_is_not_handed_out_twice_even_while_nobody_binds_it() -> None:
    # A cluster asks for every role's ports before any child has bound its own: ports handed out
    # but not bound yet must not come back (CI lost a role to "address already in use").
    seen: set[int] = set()
    for _ in range(200):
        ports = free_ports(3)
        assert len(set(ports)) == 3
        assert not seen & set(ports)
        seen.update(ports)


def test_ports_are_outside_the_ephemeral_range_and_bindable() -> None:
    low, high = servers._ephemeral_range()
    for port in free_ports(5):
        assert not low <= port <= high
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))


def test_a_port_in_use_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    (port,) = free_ports(1)
    monkeypatch.setattr(servers, "_handed_out", set())  # as if another process had chosen it
    real_sample = random.sample
    # the busy port is the first one tried
    monkeypatch.setattr(random, "sample", lambda pop, k: [port] + [p for p in real_sample(pop, k) if p != port])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        assert port not in free_ports(3)
