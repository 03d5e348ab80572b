"""The proxy's auth gate (services/proxy/auth.py) against a real RbacCoord behind the in-process RPC."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import grpc
import pytest
from pymilvus.grpc_gen import common_pb2, milvus_pb2

from common.config import SecurityConfig
from common.kv.memory import MemoryKV
from common.rpc import Router
from services.coord.rbac import RbacCoord
from services.proxy import tls
from services.proxy.auth import (
    REQUIREMENTS,
    REST_USER,
    AuthFailure,
    AuthGate,
    current_user,
    guarded,
    object_name,
)


class CountingCaller:
    """A coordinator client that counts calls per method (to see the proxy's caches work)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def call(self, method: str, timeout: float | None = 60.0, **kwargs: Any) -> Any:
        self.calls[method] = self.calls.get(method, 0) + 1
        return self.inner.call(method, timeout=timeout, **kwargs)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def coord() -> RbacCoord:
    rbac = RbacCoord(MemoryKV(), "by-dev/meta", SecurityConfig())
    rbac.create_credential("alice", "alice-pw")
    rbac.create_role("reader")
    rbac.operate_user_role("alice", "reader", True)
    rbac.operate_privilege("reader", "Collection", "c1", "default", "Search", "root", True)
    return rbac


@pytest.fixture
def setup(coord: RbacCoord) -> tuple[AuthGate, CountingCaller, Clock]:
    router = Router()
    router.register_local("coord", coord)
    caller = CountingCaller(router.client("local://coord"))
    clock = Clock()
    security = SecurityConfig(authorization_enabled=True, auth_cache_ttl_seconds=5.0)
    return AuthGate(caller, security, clock), caller, clock


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def failure(fn: Any, *args: Any) -> AuthFailure:
    with pytest.raises(AuthFailure) as err:
        fn(*args)
    return err.value


# --- the privilege table --------------------------------------------------------------------
def test_requirements_come_from_the_request_types() -> None:
    assert REQUIREMENTS["Search"] == ("Collection", "PrivilegeSearch", 3, 0)
    assert REQUIREMENTS["CreateCollection"][:2] == ("Global", "PrivilegeCreateCollection")
    assert REQUIREMENTS["Flush"].names_field == 3
    assert REQUIREMENTS["UpdateCredential"][:2] == ("User", "PrivilegeUpdateUser")
    assert "Connect" not in REQUIREMENTS and "CheckHealth" not in REQUIREMENTS


def test_object_names_are_read_by_field_number() -> None:
    assert object_name(milvus_pb2.SearchRequest(collection_name="c1"), 3) == "c1"
    assert object_name(milvus_pb2.CreateCollectionRequest(collection_name="c1"), -1) == "*"
    select = milvus_pb2.SelectUserRequest(user=milvus_pb2.UserEntity(name="bob"))
    assert object_name(select, REQUIREMENTS["SelectUser"].name_field) == "bob"
    assert object_name(milvus_pb2.SelectUserRequest(), REQUIREMENTS["SelectUser"].name_field) == "*"


# --- authentication -------------------------------------------------------------------------
def test_grpc_credentials(setup: tuple[AuthGate, CountingCaller, Clock]) -> None:
    gate, _, _ = setup
    assert gate.authenticate_grpc([("authorization", b64("alice:alice-pw"))]) == "alice"
    assert failure(gate.authenticate_grpc, []).message == "missing authorization in header"
    assert failure(gate.authenticate_grpc, [("authorization", "%%%")]).message == "invalid token format"
    api_key = failure(gate.authenticate_grpc, [("authorization", b64("some-api-key"))])
    assert api_key.message == "auth check failure, please check api key is correct"
    wrong = failure(gate.authenticate_grpc, [("authorization", b64("alice:nope"))])
    assert wrong.grpc_code == grpc.StatusCode.UNAUTHENTICATED
    assert wrong.message == "auth check failure, please check username and password are correct"


def test_http_credentials(setup: tuple[AuthGate, CountingCaller, Clock]) -> None:
    gate, _, _ = setup
    assert gate.authenticate_http("Bearer alice:alice-pw") == "alice"
    assert gate.authenticate_http("Basic " + b64("root:Milvus")) == "root"
    for header in (None, "", "Bearer alice:nope", "Bearer token-without-colon", "Basic !!!", "Digest x"):
        refused = failure(gate.authenticate_http, header)
        assert (refused.http_status, refused.body()) == (401, {"code": 1800, "message": "user hasn't authenticated"})


def test_verified_credentials_are_cached_for_the_ttl(setup: tuple[AuthGate, CountingCaller, Clock]) -> None:
    gate, caller, clock = setup
    for _ in range(5):
        assert gate.verify("alice", "alice-pw")
    assert caller.calls["authenticate"] == 1
    assert not gate.verify("alice", "wrong")  # failures are not cached
    assert not gate.verify("alice", "wrong")
    assert caller.calls["authenticate"] == 3
    clock.now += 6.0  # expired: one cheap stamp lookup renews it, no second bcrypt check
    assert gate.verify("alice", "alice-pw")
    assert (caller.calls["authenticate"], caller.calls["credential_stamp"]) == (3, 1)
    gate.invalidate()
    assert gate.verify("alice", "alice-pw")
    assert caller.calls["authenticate"] == 4


def test_a_changed_password_ends_a_cached_login(
    coord: RbacCoord, setup: tuple[AuthGate, CountingCaller, Clock]
) -> None:
    gate, _, clock = setup
    coord.create_credential("dave", "dave-pw-1")
    assert gate.verify("dave", "dave-pw-1")
    coord.update_credential("dave", "dave-pw-2")  # through another proxy: this one's cache is not dropped
    assert gate.verify("dave", "dave-pw-1")  # still within the TTL
    clock.now += 6.0
    assert not gate.verify("dave", "dave-pw-1")
    assert gate.verify("dave", "dave-pw-2")


# --- authorization --------------------------------------------------------------------------
def test_privilege_checks_and_their_cache(setup: tuple[AuthGate, CountingCaller, Clock]) -> None:
    gate, caller, clock = setup
    search = milvus_pb2.SearchRequest(collection_name="c1", db_name="default")
    for _ in range(3):
        gate.authorize("Search", search, None, "alice")
    assert caller.calls["check"] == 1
    denied = failure(gate.authorize, "Search", milvus_pb2.SearchRequest(collection_name="c2"), None, "alice")
    assert denied.grpc_code == grpc.StatusCode.PERMISSION_DENIED
    assert denied.message == "PrivilegeSearch: permission deny to alice in the `default` database"
    assert (denied.http_status, denied.code) == (403, 65535)
    create = failure(gate.authorize, "CreateDatabase", milvus_pb2.CreateDatabaseRequest(db_name="x"), None, "alice")
    assert create.message == "PrivilegeCreateDatabase: permission deny to alice in the `*` database"
    gate.authorize("CreateDatabase", milvus_pb2.CreateDatabaseRequest(db_name="x"), None, "root")  # root: always
    calls = caller.calls["check"]
    gate.authorize("SelectUser", milvus_pb2.SelectUserRequest(user=milvus_pb2.UserEntity(name="alice")), None, "alice")
    own_grants = milvus_pb2.SelectGrantRequest(entity=milvus_pb2.GrantEntity(role=milvus_pb2.RoleEntity(name="reader")))
    gate.authorize("SelectGrant", own_grants, None, "alice")
    gate.authorize("GetVersion", milvus_pb2.GetVersionRequest(), None, "alice")  # no privilege needed
    assert caller.calls["check"] == calls + 1  # only SelectGrant asked the coordinator
    failure(gate.authorize, "Flush", milvus_pb2.FlushRequest(collection_names=["c1"]), None, "alice")
    clock.now += 10
    gate.authorize("Search", search, None, "alice")
    assert caller.calls["check"] > calls + 2


def test_listings_are_filtered_to_granted_objects(setup: tuple[AuthGate, CountingCaller, Clock]) -> None:
    gate, _, _ = setup
    shown = milvus_pb2.ShowCollectionsResponse(
        status=common_pb2.Status(), collection_names=["c1", "c2"], collection_ids=[1, 2], created_timestamps=[5, 6]
    )
    out = gate.filter_listing("ShowCollections", milvus_pb2.ShowCollectionsRequest(), None, "alice", shown)
    assert list(out.collection_names) == ["c1"] and list(out.collection_ids) == [1]
    dbs = milvus_pb2.ListDatabasesResponse(status=common_pb2.Status(), db_names=["default", "db2"], db_ids=[1, 2])
    assert list(gate.filter_listing("ListDatabases", None, None, "alice", dbs).db_names) == ["default"]
    assert gate.filter_listing("ListDatabases", None, None, "root", dbs) is dbs


# --- the guard around servicer methods ------------------------------------------------------
class FakeServicer:
    def __init__(self, gate: AuthGate | None) -> None:
        self.ctx = type("Ctx", (), {"auth": gate})()
        self.seen: list[str] = []

    def handler(self, request: Any, context: Any) -> Any:
        self.seen.append(current_user())
        return common_pb2.Status()


def test_guard_runs_handlers_as_the_authenticated_user(setup: tuple[AuthGate, CountingCaller, Clock]) -> None:
    gate, _, _ = setup
    search = guarded("Search", FakeServicer.handler)
    servicer = FakeServicer(gate)
    with pytest.raises(AuthFailure) as unauth:  # in-process (REST) call without a REST user
        search(servicer, milvus_pb2.SearchRequest(collection_name="c1"), None)
    assert unauth.value.http_status == 401
    token = REST_USER.set("alice")
    try:
        search(servicer, milvus_pb2.SearchRequest(collection_name="c1"), None)
        with pytest.raises(AuthFailure) as denied:
            search(servicer, milvus_pb2.SearchRequest(collection_name="c2"), None)
    finally:
        REST_USER.reset(token)
    assert servicer.seen == ["alice"] and denied.value.http_status == 403
    open_servicer = FakeServicer(None)  # authorization disabled: no checks, handlers run as root
    search(open_servicer, milvus_pb2.SearchRequest(collection_name="c2"), None)
    assert open_servicer.seen == ["root"]


# --- TLS settings -----------------------------------------------------------------------------
def test_tls_settings(tmp_path: Path) -> None:
    assert tls.grpc_credentials(SecurityConfig()) is None
    assert tls.uvicorn_ssl(SecurityConfig()) == {}
    with pytest.raises(ValueError, match="server_key_path"):
        tls.grpc_credentials(SecurityConfig(tls_mode=1))
    cert, key, ca = (tmp_path / n for n in ("s.pem", "s.key", "ca.pem"))
    for path in (cert, key, ca):
        path.write_text("x")
    one_way = SecurityConfig(tls_mode=1, server_pem_path=str(cert), server_key_path=str(key))
    assert tls.uvicorn_ssl(one_way) == {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    mutual = one_way.model_copy(update={"tls_mode": 2, "ca_pem_path": str(ca)})
    kwargs = tls.uvicorn_ssl(mutual)
    assert kwargs["ssl_ca_certs"] == str(ca) and kwargs["ssl_cert_reqs"] == 2  # ssl.CERT_REQUIRED
    with pytest.raises(ValueError, match="ca_pem_path"):
        tls.uvicorn_ssl(one_way.model_copy(update={"tls_mode": 2}))
