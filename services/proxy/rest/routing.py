"""How a REST v2 request reaches a route and how every failure becomes Milvus's envelope.

FastAPI would answer a bad body with HTTP 422 and its own JSON; Milvus answers HTTP 200 with
code 1801 (not JSON / wrong types) or 1802 (a required parameter is missing). The route class
here makes that translation for these routes only, so /healthz and /metrics keep FastAPI's
defaults. The per-request context carries what Milvus reads from headers: the database
(``dbName`` in the body wins over the ``DB-Name`` header), whether 64-bit integers may be sent
as JSON numbers (``Accept-Type-Allow-Int64``, on by default as in Milvus), and the
``Authorization: Bearer user:password|token`` credential (checked by the auth middleware when
authorization is enabled; a call it lets through may still lack a privilege: HTTP 403).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from common.errors import Code
from services.proxy.auth import AuthFailure
from services.proxy.rest.envelope import (
    INCORRECT_FORMAT,
    MISSING_PARAMETERS,
    TITLES,
    EnvelopeResponse,
    RestError,
    failed,
    rest_error,
)

log = logging.getLogger(__name__)

DEFAULT_DB = "default"
_MISSING = {"missing", "string_too_short"}


def _param_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def validation_error(exc: RequestValidationError) -> RestError:
    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            return rest_error(INCORRECT_FORMAT, str(err.get("msg", "invalid JSON")))
    for err in errors:
        if tuple(err.get("loc", ())) == ("body",) and err.get("type") == "missing":
            return RestError(
                INCORRECT_FORMAT, f"{TITLES[INCORRECT_FORMAT]}, the request body should be nil, however {{}} is valid"
            )
    missing = [_param_name(tuple(e.get("loc", ()))) for e in errors if e.get("type") in _MISSING]
    if missing:
        names = ", ".join(dict.fromkeys(missing))
        return rest_error(MISSING_PARAMETERS, f"required parameter(s) not set: {names}")
    details = "; ".join(f"{_param_name(tuple(e.get('loc', ())))}: {e.get('msg', '')}" for e in errors)
    return rest_error(INCORRECT_FORMAT, details)


def _as_json(request: Request) -> None:
    """Read every body as JSON whatever its Content-Type (curl -d sends form-urlencoded), as Milvus does."""
    headers = [(k, v) for k, v in request.scope.get("headers", []) if k.lower() != b"content-type"]
    headers.append((b"content-type", b"application/json"))
    request.scope["headers"] = headers
    if hasattr(request, "_headers"):
        del request._headers


class RestRoute(APIRoute):
    """Routes whose every failure is a Milvus envelope with HTTP 200."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            _as_json(request)
            try:
                return await inner(request)
            except RequestValidationError as exc:
                return failed(validation_error(exc))
            except RestError as exc:
                return failed(exc)
            except AuthFailure as exc:  # a privilege the caller lacks: HTTP 403, as Milvus
                return EnvelopeResponse(exc.body(), status_code=exc.http_status)
            except Exception as exc:  # a bug in the translation layer: still answer in Milvus's shape
                log.exception("REST %s failed", request.url.path)
                return failed(RestError(Code.UNEXPECTED, f"{type(exc).__name__}: {exc}"))

        return handler


@dataclass(frozen=True)
class RestContext:
    header_db: str
    allow_int64: bool
    credential: str

    def db(self, body_db: str = "") -> str:
        return body_db or self.header_db or DEFAULT_DB


def _parse_bool(raw: str | None, default: bool) -> bool:
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    return default


def rest_context(
    authorization: str | None = Header(default=None, description="Bearer user:password, or Bearer token"),
    db_name: str | None = Header(default=None, alias="DB-Name", description="database, if not in the body"),
    allow_int64: str | None = Header(
        default=None, alias="Accept-Type-Allow-Int64", description="false: 64-bit integers come back as strings"
    ),
) -> RestContext:
    credential = (authorization or "").removeprefix("Bearer ").strip()
    return RestContext(header_db=db_name or "", allow_int64=_parse_bool(allow_int64, True), credential=credential)
