"""Authentication and RBAC end to end: a standalone Quiver with ``authorization_enabled``, pymilvus and REST.

Every MilvusService RPC is refused without credentials and with wrong ones; each privilege object
type (Global, Collection, User) is denied to a role without the privilege and allowed once it is
granted; REST v2 needs ``Authorization: Bearer user:password``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import message_factory
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException
from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc

from tests.e2e.server import StandaloneServer

pytestmark = pytest.mark.e2e

ROOT_TOKEN = "root:Milvus"
LOGIN_FAILED = (MilvusException, grpc.RpcError)  # a new connection, or one pymilvus reused
_SERVICE = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]


def auth_metadata(token: str) -> list[tuple[str, str]]:
    return [("authorization", base64.b64encode(token.encode()).decode())]


@dataclass
class SecureStandalone(StandaloneServer):
    """A standalone server whose readiness probe authenticates (and speaks TLS when given credentials)."""

    token: str = ROOT_TOKEN
    channel_credentials: grpc.ChannelCredentials | None = None
    server_name: str = "localhost"

    def channel(self) -> grpc.Channel:
        target = f"127.0.0.1:{self.grpc_port}"
        if self.channel_credentials is None:
            return grpc.insecure_channel(target)
        options = [("grpc.ssl_target_name_override", self.server_name)]
        return grpc.secure_channel(target, self.channel_credentials, options=options)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with self.channel() as ch:
                    stub = milvus_pb2_grpc.MilvusServiceStub(ch)
                    metadata = auth_metadata(self.token)
                    resp = stub.CheckHealth(milvus_pb2.CheckHealthRequest(), timeout=1, metadata=metadata)
                    if resp.isHealthy:
                        return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready in {timeout}s:\n{self.log()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureStandalone]:
    workdir = Path(tmp_path_factory.mktemp("quiver-auth"))
    env = {"QUIVER_SECURITY__AUTHORIZATION_ENABLED": "true", "QUIVER_SECURITY__SUPERUSERS": '["root"]'}
    srv = SecureStandalone(workdir / "data", extra_env=env)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def root(server: SecureStandalone) -> Iterator[MilvusClient]:
    client = MilvusClient(uri=server.uri, token=ROOT_TOKEN)
    yield client
    client.close()


def login(server: SecureStandalone, user: str, password: str) -> MilvusClient:
    """A client for ``user`` that has made one call (pymilvus may share an earlier connection)."""
    client = MilvusClient(uri=server.uri, user=user, password=password)
    client.get_server_version()
    return client


def user_with_role(root: MilvusClient, user: str, role: str, password: str = "pass-word-1") -> None:
    root.create_user(user, password)
    root.create_role(role)
    root.grant_role(user, role)


def denied(call: Any, *args: Any, **kwargs: Any) -> str:
    """Run a pymilvus call that must be refused with PERMISSION_DENIED; return the message."""
    with pytest.raises(grpc.RpcError) as err:
        call(*args, **kwargs)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, err.value
    return str(err.value.details())


def unary_methods() -> list[Any]:
    return [m for m in _SERVICE.methods if not m.client_streaming and not m.server_streaming]


def call_raw(channel: grpc.Channel, method: Any, metadata: list[tuple[str, str]] | None) -> Any:
    request = message_factory.GetMessageClass(method.input_type)()
    response_class = message_factory.GetMessageClass(method.output_type)
    rpc = channel.unary_unary(
        f"/{_SERVICE.full_name}/{method.name}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_class.FromString,
    )
    return rpc(request, timeout=10, metadata=metadata)


# --- authentication -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "token, message",
    [
        (None, "missing authorization in header"),
        ("root:wrong-password", "auth check failure, please check username and password are correct"),
        ("nobody:Milvus", "auth check failure, please check username and password are correct"),
    ],
)
def test_every_rpc_is_refused_without_valid_credentials(
    server: SecureStandalone, token: str | None, message: str
) -> None:
    methods = unary_methods()
    assert len(methods) > 100
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        for method in methods:
            with pytest.raises(grpc.RpcError) as err:
                call_raw(channel, method, auth_metadata(token) if token else None)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, method.name
            assert err.value.details() == message, method.name


def test_valid_credentials_reach_the_handlers(server: SecureStandalone) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        by_name = {m.name: m for m in _SERVICE.methods}
        for name in ("Connect", "GetVersion", "CheckHealth", "ListDatabases", "ShowCollections", "ListCredUsers"):
            response = call_raw(channel, by_name[name], auth_metadata(ROOT_TOKEN))
            assert response.status.code == 0, name


def test_pymilvus_connects_only_with_valid_credentials(server: SecureStandalone, root: MilvusClient) -> None:
    for kwargs in ({}, {"token": "root:nope"}, {"user": "root", "password": "nope"}):
        with pytest.raises(MilvusException) as err:
            MilvusClient(uri=server.uri, **kwargs)
        cause = err.value.__cause__
        assert isinstance(cause, grpc.RpcError) and cause.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "default" in root.list_databases()
    assert "root" in root.list_users()


def test_credentials_lifecycle(server: SecureStandalone, root: MilvusClient) -> None:
    root.create_user("carol", "carol-pw-1")
    carol = login(server, "carol", "carol-pw-1")
    with pytest.raises(MilvusException, match="old password not correct for carol"):
        carol.update_password("carol", "wrong-old", "carol-pw-2")
    carol.update_password("carol", "carol-pw-1", "carol-pw-2")  # one's own password: no privilege needed
    login(server, "carol", "carol-pw-2").close()
    with pytest.raises(LOGIN_FAILED):
        login(server, "carol", "carol-pw-1")
    root.update_password("carol", "anything", "carol-pw-3")  # root is a configured superuser
    login(server, "carol", "carol-pw-3").close()
    with pytest.raises(MilvusException, match="root user cannot be deleted"):
        root.drop_user("root")
    root.drop_user("carol")
    with pytest.raises(LOGIN_FAILED):
        login(server, "carol", "carol-pw-3")
    assert "carol" not in root.list_users()


# --- one test per privilege object type -----------------------------------------------------
def test_global_object_privilege(server: SecureStandalone, root: MilvusClient) -> None:
    user_with_role(root, "gina", "r_global")
    gina = login(server, "gina", "pass-word-1")
    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    message = denied(gina.create_collection, "g_coll", schema=schema)
    assert message == "PrivilegeCreateCollection: permission deny to gina in the `default` database"
    root.grant_privilege("r_global", "Global", "CreateCollection", "*")
    gina.create_collection("g_coll", schema=schema)
    assert root.has_collection("g_coll")
    denied(gina.drop_collection, "g_coll")
    root.revoke_privilege("r_global", "Global", "CreateCollection", "*")
    denied(gina.create_collection, "g_coll2", schema=schema)


def test_collection_object_privilege(server: SecureStandalone, root: MilvusClient) -> None:
    for name in ("c_open", "c_closed"):
        root.create_collection(name, dimension=4, consistency_level="Strong")
        root.insert(name, [{"id": i, "vector": [float(i), 0.5, 0.25, 1.0]} for i in range(5)])
    user_with_role(root, "cole", "r_coll")
    cole = login(server, "cole", "pass-word-1")
    message = denied(cole.search, "c_open", [[1.0, 0.5, 0.25, 1.0]], limit=1)
    assert message == "PrivilegeSearch: permission deny to cole in the `default` database"
    root.grant_privilege("r_coll", "Collection", "Search", "c_open")
    hits = cole.search("c_open", [[1.0, 0.5, 0.25, 1.0]], limit=1)
    assert hits[0][0]["id"] == 1
    denied(cole.search, "c_closed", [[1.0, 0.5, 0.25, 1.0]], limit=1)
    denied(cole.insert, "c_open", [{"id": 9, "vector": [0.0, 0.0, 0.0, 1.0]}])
    assert cole.list_collections() == ["c_open"]  # listings show only what the user holds grants on
    assert cole.list_databases() == ["default"]


def test_user_object_privilege(server: SecureStandalone, root: MilvusClient) -> None:
    user_with_role(root, "ursula", "r_user")
    root.create_user("victor", "victor-pw-1")
    ursula = login(server, "ursula", "pass-word-1")
    assert ursula.describe_user("ursula")["roles"] == ("r_user",)  # one's own user object: always
    denied(ursula.describe_user, "victor")
    root.grant_privilege("r_user", "User", "SelectUser", "victor")
    assert ursula.describe_user("victor")["user_name"] == "victor"
    denied(ursula.update_password, "victor", "victor-pw-1", "victor-pw-2")


def test_privilege_groups_and_grant_v2(server: SecureStandalone, root: MilvusClient) -> None:
    root.create_collection("c_group", dimension=4, consistency_level="Strong")
    user_with_role(root, "pete", "r_group")
    pete = login(server, "pete", "pass-word-1")
    denied(pete.query, "c_group", filter="id >= 0")
    root.create_privilege_group("pg_reader")
    root.add_privileges_to_group("pg_reader", ["Query", "Search"])
    groups = {g["privilege_group"]: g["privileges"] for g in root.list_privilege_groups()}
    assert set(groups["pg_reader"]) == {"Query", "Search"} and "CollectionReadOnly" in groups
    root.grant_privilege_v2("r_group", "pg_reader", "c_group", db_name="default")
    assert pete.query("c_group", filter="id >= 0") == []
    denied(pete.insert, "c_group", [{"id": 1, "vector": [0.0, 0.0, 0.0, 1.0]}])
    root.grant_privilege_v2("r_group", "CollectionReadWrite", "c_group", db_name="default")
    pete.insert("c_group", [{"id": 1, "vector": [0.0, 0.0, 0.0, 1.0]}])
    privileges = {p["privilege"] for p in root.describe_role("r_group")["privileges"]}
    assert privileges == {"pg_reader", "CollectionReadWrite"}


# --- REST -------------------------------------------------------------------------------------
def test_rest_needs_bearer_credentials(server: SecureStandalone, root: MilvusClient) -> None:
    root.create_collection("c_rest", dimension=4)
    user_with_role(root, "rita", "r_rest")
    url = f"http://127.0.0.1:{server.http_port}/v2/vectordb/collections/describe"
    body = {"collectionName": "c_rest"}
    with httpx.Client(timeout=30) as http:
        for headers in ({}, {"Authorization": "Bearer root:wrong"}, {"Authorization": "Bearer not-a-user-password"}):
            reply = http.post(url, json=body, headers=headers)
            assert reply.status_code == 401
            assert reply.json() == {"code": 1800, "message": "user hasn't authenticated"}
        ok = http.post(url, json=body, headers={"Authorization": f"Bearer {ROOT_TOKEN}"})
        assert ok.status_code == 200 and ok.json()["data"]["collectionName"] == "c_rest"
        basic = http.post(url, json=body, auth=("root", "Milvus"))
        assert basic.status_code == 200 and basic.json()["code"] == 0
        rita = {"Authorization": "Bearer rita:pass-word-1"}
        drop = f"http://127.0.0.1:{server.http_port}/v2/vectordb/collections/drop"
        refused = http.post(drop, json=body, headers=rita)
        assert refused.status_code == 403
        assert refused.json()["message"] == "PrivilegeDropCollection: permission deny to rita in the `default` database"
        root.grant_privilege("r_rest", "Global", "DropCollection", "*")
        assert http.post(drop, json=body, headers=rita).json() == {"code": 0, "data": {}}
        assert http.get(f"http://127.0.0.1:{server.http_port}/healthz").status_code == 200  # probes need no login
    assert not root.has_collection("c_rest")
