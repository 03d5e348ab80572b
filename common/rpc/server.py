"""Turn a role object into an RPC dispatcher: only methods marked with :func:`rpc` are callable.

The call envelope may carry the caller's request id under a reserved key; the dispatcher restores
it so the callee's log lines share it with the caller's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from common.codec import pack, unpack
from common.errors import Code, MilvusError
from common.logs import request_scope

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# Reserved key of the call envelope: the caller's request id, restored in the callee (common/logs.py).
REQUEST_ID_KEY = "__quiver_request_id__"


def rpc(func: F) -> F:
    """Mark a method as callable by other roles."""
    func.__quiver_rpc__ = True  # type: ignore[attr-defined]
    return func


class RpcServer:
    """Dispatches encoded calls to the ``@rpc`` methods of one or more handler objects."""

    def __init__(self, *handlers: object) -> None:
        self._methods: dict[str, Callable[..., Any]] = {}
        for handler in handlers:
            for name in dir(type(handler)):
                attr = getattr(type(handler), name, None)
                if callable(attr) and getattr(attr, "__quiver_rpc__", False):
                    if name in self._methods:
                        raise ValueError(f"rpc method {name} defined twice")
                    self._methods[name] = getattr(handler, name)

    def dispatch(self, method: str, payload: bytes) -> bytes:
        func = self._methods.get(method)
        if func is None:
            return pack({"e": [int(Code.UNIMPLEMENTED), f"unknown method {method}"]})
        kwargs = unpack(payload)
        try:
            with request_scope(kwargs.pop(REQUEST_ID_KEY, "")):
                result = func(**kwargs)
        except MilvusError as exc:
            return pack({"e": [exc.code, exc.message]})
        except Exception as exc:  # an internal failure must reach the caller, not kill the server
            log.exception("rpc %s failed", method)
            return pack({"e": [int(Code.UNEXPECTED), f"{type(exc).__name__}: {exc}"]})
        return pack({"r": result})
