"""Calls between roles: one codec, two transports (in-process and TCP), one client shape.

Roles expose plain Python objects; a :class:`~common.rpc.server.RpcServer` turns one into a
dispatcher of ``method(**kwargs)`` calls, and :class:`~common.rpc.client.RpcClient` calls it
through whichever transport the endpoint names: ``local://name`` (standalone: same process,
still encoded, so behaviour is identical) or ``tcp://host:port/name`` (cluster).
"""

from common.rpc.client import Caller, ResolvingClient, Router, RpcClient
from common.rpc.server import RpcServer, rpc

__all__ = ["Caller", "ResolvingClient", "Router", "RpcClient", "RpcServer", "rpc"]
