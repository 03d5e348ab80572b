"""Milvus's REST v2 reply envelope, its REST-only error codes, and the in-process RPC call.

Every REST v2 reply is HTTP 200 with a JSON body: ``{"code": 0, "data": ...}`` on success,
``{"code": N, "message": "..."}`` on failure, where N is the same merr code a gRPC client
would see in ``status.code`` (plus the 1800-1806 codes that only the REST layer produces).
Keeping that shape, and the one place that turns a response ``status`` into an error, here
lets each route be a few lines of request building and reply shaping.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
from fastapi import Response
from pymilvus.grpc_gen import common_pb2

from common.errors import Code

log = logging.getLogger(__name__)

# merr codes of Milvus's high-level RESTful API (pkg/util/merr: "high-level restful api related").
NEED_AUTHENTICATE = 1800
INCORRECT_FORMAT = 1801
MISSING_PARAMETERS = 1802
MARSHAL_SCHEMA = 1803
INVALID_INSERT_DATA = 1804
INVALID_SEARCH_RESULT = 1805
CHECK_PRIMARY_KEY = 1806

TITLES = {
    NEED_AUTHENTICATE: "user hasn't authenticated",
    INCORRECT_FORMAT: "can only accept json format request",
    MISSING_PARAMETERS: "missing required parameters",
    MARSHAL_SCHEMA: "fail to marshal collection schema",
    INVALID_INSERT_DATA: "fail to deal the insert data",
    INVALID_SEARCH_RESULT: "fail to parse search result",
    CHECK_PRIMARY_KEY: "please check the primary key and its' type can only in [int, string]",
}


class RestError(Exception):
    """A failure to answer as ``{"code": code, "message": message}`` (always with HTTP 200)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def rest_error(code: int, detail: str) -> RestError:
    """One of the REST-only errors, worded as Milvus words it: "<title>, error: <detail>"."""
    return RestError(code, f"{TITLES[code]}, error: {detail}")


def invalid_parameter(detail: str) -> RestError:
    return RestError(Code.PARAMETER_INVALID, f"{detail}: invalid parameter")


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()  # as Go's encoding/json renders []byte
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


class EnvelopeResponse(Response):
    """JSON via orjson: float32 values keep their short form (0.1, not 0.10000000149...)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def ok(data: Any = None, **extra: Any) -> EnvelopeResponse:
    body: dict[str, Any] = {"code": 0, "data": {} if data is None else data}
    body.update(extra)
    return EnvelopeResponse(body)


def failed(err: RestError) -> EnvelopeResponse:
    return EnvelopeResponse(err.body())


def status_of(response: Any) -> common_pb2.Status | None:
    if isinstance(response, common_pb2.Status):
        return response
    if "status" in response.DESCRIPTOR.fields_by_name:
        return response.status  # type: ignore[no-any-return]
    return None


def check(response: Any) -> Any:
    """The response itself, or a RestError carrying its status's code and reason."""
    st = status_of(response)
    if st is not None and (st.code != 0 or st.error_code != 0):
        code = st.code or (Code.UNEXPECTED if st.error_code else 0)
        raise RestError(code, st.reason or st.detail or f"error code {st.error_code}")
    return response


class _CallContext:
    """Stands in for grpc.ServicerContext: handlers only read the ``dbname`` metadata."""

    def __init__(self, db_name: str) -> None:
        self._metadata = (("dbname", db_name),) if db_name else ()

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata


class Gateway:
    """Calls MilvusServicer methods in-process, as the gRPC server would, and checks the status."""

    def __init__(self, servicer: Any) -> None:
        self._servicer = servicer

    def call(self, method: str, request: Any) -> Any:
        return check(self.raw(method, request))

    def raw(self, method: str, request: Any) -> Any:
        handler: Callable[[Any, Any], Any] = getattr(self._servicer, method)
        db_name = getattr(request, "db_name", "") or ""
        return handler(request, _CallContext(db_name))

    def try_call(self, method: str, request: Any) -> tuple[Any, str]:
        """(response, "") or (None, error message): for the optional parts of a reply."""
        try:
            return self.call(method, request), ""
        except RestError as exc:
            return None, exc.message
