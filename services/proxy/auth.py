"""Authentication and privilege checks in front of every Milvus RPC and REST call (``authorizationEnabled``).

As Milvus's proxy interceptors do: a gRPC call must carry the ``authorization`` metadata
(base64 ``user:password``, as pymilvus sends it) and a REST call ``Authorization: Bearer
user:password`` (or Basic); then the privilege the request's protobuf type declares (pymilvus's
``privilege_ext_obj`` option: object type, privilege and the field naming the object) is checked
against the caller's roles. Unauthenticated gRPC calls end with UNAUTHENTICATED, denied ones
with PERMISSION_DENIED and Milvus's "<Privilege>: permission deny to <user> in the `<db>`
database"; REST answers 401 (code 1800) and 403. The coordinator owns users and grants
(``authenticate``/``check``); this proxy caches both answers for ``auth_cache_ttl_seconds`` so a
search pays no coordinator round trip, and drops its cache whenever an RBAC call passes through it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, NamedTuple

import grpc
from pymilvus.grpc_gen import common_pb2, milvus_pb2

from common.config import SecurityConfig
from common.rpc import Caller
from services.proxy.context import db_of

ROOT = "root"
ANY = "*"
NEED_AUTHENTICATE = 1800  # merr.ErrNeedAuthenticate, the REST layer's code
UNEXPECTED = 65535
_CACHE_LIMIT = 100_000

# The user a call runs as: set by the guard for the handler, and by the REST middleware for the guard.
CURRENT_USER: ContextVar[str] = ContextVar("quiver_current_user", default="")
REST_USER: ContextVar[str] = ContextVar("quiver_rest_user", default="")

# RPCs after which this proxy forgets what it cached (their effect may change any answer).
RBAC_CHANGES = frozenset(
    {
        "UpdateCredential",
        "DeleteCredential",
        "DropRole",
        "OperateUserRole",
        "OperatePrivilege",
        "OperatePrivilegeV2",
        "DropPrivilegeGroup",
        "OperatePrivilegeGroup",
    }
)


class AuthFailure(Exception):
    """A refused call: the gRPC status to end it with, or the HTTP status and envelope for REST."""

    def __init__(self, grpc_code: grpc.StatusCode, http_status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.grpc_code = grpc_code
        self.http_status = http_status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def unauthenticated(message: str) -> AuthFailure:
    return AuthFailure(grpc.StatusCode.UNAUTHENTICATED, 401, NEED_AUTHENTICATE, message)


def rest_unauthenticated() -> AuthFailure:
    return unauthenticated("user hasn't authenticated")


class Requirement(NamedTuple):
    """What an RPC needs: a privilege (metastore name) on an object of a type, named by request fields."""

    object_type: str
    privilege: str
    name_field: int  # field number of the object's name; -1: the object is "*"; 0: see names_field
    names_field: int  # field number of a repeated field naming several objects (Flush)


def _requirements() -> dict[str, Requirement]:
    service = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]
    ext = common_pb2.privilege_ext_obj
    table = {}
    for method in service.methods:
        options = method.input_type.GetOptions()
        if options.HasExtension(ext):
            e = options.Extensions[ext]
            table[method.name] = Requirement(
                common_pb2.ObjectType.Name(e.object_type),
                common_pb2.ObjectPrivilege.Name(e.object_privilege),
                e.object_name_index,
                e.object_name_indexs,
            )
    return table


# RPC name -> requirement, from the same protobuf options Milvus's interceptor reads. RPCs without
# one (Connect, GetVersion, CheckHealth, HasCollection, ShowCollections, ListDatabases, ...) need
# only an authenticated caller.
REQUIREMENTS: dict[str, Requirement] = _requirements()


def object_name(request: Any, number: int) -> str:
    """The object a request names by field number; a message field gives its first field ("" -> "*")."""
    if number <= 0:
        return ANY
    field = request.DESCRIPTOR.fields_by_number.get(number)
    if field is None:
        return ANY
    value = getattr(request, field.name)
    if field.message_type is not None:
        first = value.DESCRIPTOR.fields_by_number.get(1)
        return str(getattr(value, first.name)) if first is not None and getattr(value, first.name) else ANY
    return str(value)


def object_names(request: Any, number: int) -> list[str]:
    field = request.DESCRIPTOR.fields_by_number.get(number) if number > 0 else None
    return [str(v) for v in getattr(request, field.name)] if field is not None else []


def current_user() -> str:
    """The authenticated caller of the running RPC (root when authentication is off)."""
    return CURRENT_USER.get() or ROOT


class AuthGate:
    """Verifies credentials and privileges for one proxy, with short-lived caches of both answers."""

    def __init__(self, coord: Caller, security: SecurityConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._coord = coord
        self.security = security
        self._ttl = security.auth_cache_ttl_seconds
        self._clock = clock
        self._creds: dict[tuple[str, bytes], tuple[str, float]] = {}
        self._checks: dict[tuple[str, ...], tuple[bool, str, float]] = {}

    # --- caches ---------------------------------------------------------------------------
    def invalidate(self) -> None:
        self._creds = {}
        self._checks = {}

    def _remember(self, cache: dict[Any, Any], key: Any, value: Any) -> None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = value

    # --- authentication -------------------------------------------------------------------
    def verify(self, user: str, password: str) -> bool:
        """Whether ``password`` is ``user``'s.

        A success is remembered as a sha256 of the password with the stored credential's stamp;
        within the TTL no coordinator is asked, after it one cheap stamp lookup renews it while
        the password is unchanged, so bcrypt runs (in the coordinator) only on a first login.
        """
        key = (user, hashlib.sha256(f"{password}{user}".encode()).digest())
        now = self._clock()
        cached = self._creds.get(key)
        if cached is not None:
            stamp, until = cached
            if until > now:
                return True
            if stamp and self._coord.call("credential_stamp", username=user) == stamp:
                self._remember(self._creds, key, (stamp, now + self._ttl))
                return True
            self._creds.pop(key, None)
        stamp = str(self._coord.call("authenticate", username=user, password=password))
        if stamp:
            self._remember(self._creds, key, (stamp, now + self._ttl))
        return bool(stamp)

    def authenticate_grpc(self, metadata: Any) -> str:
        """The user named by gRPC ``authorization`` metadata, or :class:`AuthFailure` (UNAUTHENTICATED)."""
        raw = next((value for key, value in metadata or () if key == "authorization"), None)
        if not raw:
            raise unauthenticated("missing authorization in header")
        try:
            token = base64.b64decode(raw, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise unauthenticated("invalid token format") from None
        if ":" not in token:  # an API key: Milvus verifies those only through a hook plugin
            raise unauthenticated("auth check failure, please check api key is correct")
        user, _, password = token.partition(":")
        if not self.verify(user, password):
            raise unauthenticated("auth check failure, please check username and password are correct")
        return user

    def authenticate_http(self, header: str | None) -> str:
        """The user of an HTTP ``Authorization`` header (Basic, or Bearer user:password), else 401/1800."""
        scheme, _, value = (header or "").strip().partition(" ")
        token = ""
        if scheme.lower() == "basic":
            try:
                token = base64.b64decode(value.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                token = ""
        elif scheme.lower() == "bearer":
            token = value.strip()
        user, sep, password = token.partition(":")
        if not sep or not user or not self.verify(user, password):
            raise rest_unauthenticated()
        return user

    def identify(self, context: Any) -> str:
        """Who is calling: gRPC metadata for gRPC calls, the REST middleware's user for in-process ones."""
        if isinstance(context, grpc.ServicerContext):
            return self.authenticate_grpc(context.invocation_metadata())
        user = REST_USER.get()
        if not user:
            raise rest_unauthenticated()
        return user

    # --- authorization --------------------------------------------------------------------
    def allowed(self, user: str, object_type: str, name: str, privilege: str, db: str, own_role: str = "") -> str:
        """The database the policy applies in when ``user`` may, else raises PERMISSION_DENIED."""
        key = (user, object_type, name, privilege, db, own_role)
        now = self._clock()
        hit = self._checks.get(key)
        if hit is None or hit[2] <= now:
            answer = self._coord.call(
                "check",
                user=user,
                object_type=object_type,
                object_name=name,
                privilege=privilege,
                db=db,
                own_role=own_role,
            )
            hit = (bool(answer["allowed"]), str(answer["db"]), now + self._ttl)
            self._remember(self._checks, key, hit)
        if not hit[0]:
            raise AuthFailure(
                grpc.StatusCode.PERMISSION_DENIED,
                403,
                UNEXPECTED,
                f"{privilege}: permission deny to {user} in the `{hit[1]}` database",
            )
        return hit[1]

    def authorize(self, method: str, request: Any, context: Any, user: str) -> None:
        """Check the privilege ``method`` requires (Milvus's PrivilegeInterceptor rules)."""
        need = REQUIREMENTS.get(method)
        if need is None or user == ROOT:
            return
        db = db_of(request, context)
        if need.name_field != 0:
            names = [object_name(request, need.name_field)]
        else:
            names = object_names(request, need.names_field)
            if not names:  # Milvus permits a many-object call only when it names some
                names = [""]
        if need.object_type == "User" and names == [user]:
            return  # users may read and change their own user object
        own_role = request.entity.role.name if method == "SelectGrant" else ""
        for name in names:
            self.allowed(user, need.object_type, name, need.privilege, db, own_role)

    # --- what a caller may see ------------------------------------------------------------
    def filter_listing(self, method: str, request: Any, context: Any, user: str, response: Any) -> Any:
        """ListDatabases and ShowCollections show only what the caller holds grants on."""
        if user == ROOT or response.status.code != 0:
            return response
        if method == "ListDatabases":
            names = list(response.db_names)
            keep = set(self._coord.call("visible_databases", user=user, names=names))
        else:
            names = list(response.collection_names)
            keep = set(self._coord.call("visible_collections", user=user, db=db_of(request, context), names=names))
        if len(keep) == len(names):
            return response
        picked = [i for i, n in enumerate(names) if n in keep]
        out = type(response)()
        out.CopyFrom(response)
        for field in response.DESCRIPTOR.fields:  # the parallel per-item lists of the reply
            values = getattr(response, field.name)
            if hasattr(values, "extend") and len(values) == len(names):
                kept = [values[i] for i in picked]
                target = getattr(out, field.name)
                del target[:]
                target.extend(kept)
        return out


def _refuse(context: Any, failure: AuthFailure) -> Any:
    if isinstance(context, grpc.ServicerContext):
        context.abort(failure.grpc_code, failure.message)
    raise failure


def _succeeded(response: Any) -> bool:
    status = response if isinstance(response, common_pb2.Status) else getattr(response, "status", None)
    return status is None or (status.code == 0 and status.error_code == 0)


def guarded(method: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a servicer method: authenticate and authorize first when the proxy has an :class:`AuthGate`."""

    @functools.wraps(handler)
    def call(self: Any, request: Any, context: Any) -> Any:
        gate: AuthGate | None = self.ctx.auth
        if gate is None:
            return handler(self, request, context)
        try:
            user = gate.identify(context)
            gate.authorize(method, request, context, user)
        except AuthFailure as failure:
            return _refuse(context, failure)
        token = CURRENT_USER.set(user)
        try:
            response = handler(self, request, context)
        finally:
            CURRENT_USER.reset(token)
        if method in RBAC_CHANGES and _succeeded(response):
            gate.invalidate()
        if method in ("ListDatabases", "ShowCollections"):
            response = gate.filter_listing(method, request, context, user, response)
        return response

    return call


def install(servicer_class: type, methods: list[str]) -> None:
    """Put the auth guard in front of ``methods`` of ``servicer_class`` (outside their error guard)."""
    for name in methods:
        setattr(servicer_class, name, guarded(name, getattr(servicer_class, name)))


class RestAuthMiddleware:
    """ASGI middleware: REST v2 calls need credentials (401 + code 1800 otherwise); the user rides in REST_USER."""

    def __init__(self, app: Any, gate: AuthGate, prefix: str = "/v2/vectordb") -> None:
        self.app = app
        self.gate = gate
        self.prefix = prefix

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse

        header = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == b"authorization"), None)
        try:
            user = await run_in_threadpool(self.gate.authenticate_http, header)
        except AuthFailure as failure:
            await JSONResponse(failure.body(), status_code=failure.http_status)(scope, receive, send)
            return
        token = REST_USER.set(user)
        try:
            await self.app(scope, receive, send)
        finally:
            REST_USER.reset(token)
