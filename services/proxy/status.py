"""Milvus statuses for responses, and the guard that turns any failure into one.

Every RPC handler returns its response message; a :class:`MilvusError` (or any unexpected
exception) raised inside becomes that response type with ``status`` filled, so clients always
get a code and a message, never a broken stream.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import message_factory
from pymilvus.grpc_gen import common_pb2, milvus_pb2

from common.errors import Code, MilvusError, describe_not_found, legacy_error_code
from common.logs import request_id_from_metadata, request_scope
from common.metrics import LATENCY, REQUESTS
from services.proxy.context import db_of

log = logging.getLogger(__name__)

_SERVICE = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]


def ok() -> common_pb2.Status:
    return common_pb2.Status(error_code=0, code=0)


def status_of(code: int, message: str) -> common_pb2.Status:
    return common_pb2.Status(
        error_code=legacy_error_code(code),  # type: ignore[arg-type]
        code=code,
        reason=message,
        retriable=code in (Code.SERVICE_NOT_READY, Code.RATE_LIMIT),
        detail=message,
    )


def response_class(method: str) -> Any:
    return message_factory.GetMessageClass(_SERVICE.methods_by_name[method].output_type)


def error_response(method: str, code: int, message: str) -> Any:
    cls = response_class(method)
    st = status_of(code, message)
    if cls is common_pb2.Status:
        return st
    resp = cls()
    # the status field is "status" in all but a few responses (AlterCollectionSchema: "alter_status")
    for f in cls.DESCRIPTOR.fields:
        if f.message_type is not None and f.message_type.full_name == common_pb2.Status.DESCRIPTOR.full_name:
            getattr(resp, f.name).CopyFrom(st)
            return resp
    raise MilvusError(code, message)  # a response without a status cannot carry the error: fail the call


def _client_request_id(context: Any) -> str:
    """The id the client sent in ``client-request-id``/``x-request-id`` metadata, else ""."""
    try:
        return request_id_from_metadata(context.invocation_metadata())
    except Exception:  # REST and in-process callers pass contexts without gRPC metadata
        return ""


def _db_name(request: Any, context: Any) -> str:
    try:
        return db_of(request, context)
    except Exception:  # contexts without gRPC metadata (REST, in-process)
        return getattr(request, "db_name", "") or "default"


def guard(method: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a servicer method: MilvusError -> status; anything else -> unexpected error."""

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def handler(self: Any, request: Any, context: Any) -> Any:
            start = time.perf_counter()
            code = 0
            try:
                with request_scope(_client_request_id(context)):
                    return func(self, request, context)
            except MilvusError as exc:
                code = exc.code
                if method == "DescribeCollection" and exc.code == Code.COLLECTION_NOT_FOUND:
                    exc = describe_not_found(request.collection_name, _db_name(request, context))
                return error_response(method, exc.code, exc.message)
            except Exception as exc:
                code = Code.UNEXPECTED
                log.exception("%s failed", method)
                return error_response(method, Code.UNEXPECTED, f"{type(exc).__name__}: {exc}")
            finally:
                REQUESTS.labels(method, str(int(code))).inc()
                LATENCY.labels(method).observe(time.perf_counter() - start)

        return handler

    return wrap


def unimplemented(method: str) -> Callable[..., Any]:
    def handler(self: Any, request: Any, context: Any) -> Any:
        message = f"{method} is not supported by Quiver yet"
        try:
            return error_response(method, Code.UNIMPLEMENTED, message)
        except MilvusError:  # a response type without a status field: say it in gRPC's own terms
            context.abort(grpc.StatusCode.UNIMPLEMENTED, message)

    handler.__name__ = method
    return handler


def all_methods() -> list[str]:
    return [m.name for m in _SERVICE.methods]
