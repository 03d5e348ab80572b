"""The coordinator's credential and RBAC store (services/coord/rbac.py) on an in-memory KV store."""

from __future__ import annotations

import json

import pytest
from pymilvus.grpc_gen import milvus_pb2

from common.config import SecurityConfig
from common.errors import Code, MilvusError
from common.kv.memory import MemoryKV
from services.coord.rbac import MAX_ROLES, RbacCoord

ROOT = "by-dev/meta"
CRED = f"{ROOT}/root-coord/credential"


@pytest.fixture(scope="module")
def hashed_root() -> RbacCoord:
    """One bootstrapped store whose KV contents later stores copy (bcrypt is slow on purpose)."""
    rbac = RbacCoord(MemoryKV(), ROOT, SecurityConfig())
    rbac.list_cred_users()
    return rbac


@pytest.fixture
def rbac(hashed_root: RbacCoord) -> RbacCoord:
    kv = MemoryKV()
    kv.multi_save({item.key: item.value for item in hashed_root.kv.scan(ROOT)})
    store = RbacCoord(kv, ROOT, SecurityConfig(superusers=["boss"]))
    store.create_credential("alice", "alice-pw")
    store.create_role("reader")
    store.operate_user_role("alice", "reader", True)
    return store


def allowed(rbac: RbacCoord, user: str, object_type: str, name: str, privilege: str, db: str = "default") -> bool:
    return bool(rbac.check(user, object_type, name, privilege, db)["allowed"])


# --- credentials ----------------------------------------------------------------------------
def test_root_is_created_with_the_configured_password_as_a_bcrypt_hash() -> None:
    kv = MemoryKV()
    rbac = RbacCoord(kv, ROOT, SecurityConfig(default_root_password="Sesame-42"))
    assert rbac.authenticate("root", "Sesame-42")
    assert not rbac.authenticate("root", "Milvus")
    stored = json.loads(kv.get(f"{CRED}/users/root") or b"{}")
    assert stored["encrypted_password"].startswith("$2a$10$")
    assert b"Sesame-42" not in b"".join(item.value for item in kv.scan(ROOT))
    assert {r["role"] for r in rbac.select_role()} == {"admin", "public"}


def test_create_update_and_delete_a_user(rbac: RbacCoord) -> None:
    assert rbac.list_cred_users() == ["alice", "root"]
    with pytest.raises(MilvusError, match="user already exists: alice"):
        rbac.create_credential("alice", "other-pw")
    with pytest.raises(MilvusError) as wrong:
        rbac.update_credential("alice", "new-pw-1", old_password="nope")
    assert wrong.value.code == Code.NOT_AUTHENTICATED
    assert wrong.value.message == "old password not correct for alice: not authenticated"
    rbac.update_credential("alice", "new-pw-1", old_password="alice-pw")
    assert rbac.authenticate("alice", "new-pw-1") and not rbac.authenticate("alice", "alice-pw")
    rbac.update_credential("alice", "new-pw-2")  # no old password: the proxy's superuser path
    assert rbac.authenticate("alice", "new-pw-2")
    rbac.delete_credential("alice")
    assert rbac.list_cred_users() == ["root"]
    assert not rbac.authenticate("alice", "new-pw-2")
    assert not list(rbac.kv.scan(f"{CRED}/user-role-mapping/alice/"))
    rbac.delete_credential("nobody")  # deleting a missing user is not an error (Milvus)


def test_root_cannot_be_deleted(rbac: RbacCoord) -> None:
    with pytest.raises(MilvusError) as err:
        rbac.delete_credential("root")
    assert err.value.code == Code.PRIVILEGE_NOT_PERMITTED
    assert "root user cannot be deleted" in err.value.message


def test_unknown_user_and_bad_hash_do_not_authenticate(rbac: RbacCoord) -> None:
    assert not rbac.authenticate("ghost", "x")
    assert not rbac.authenticate("", "")
    rbac.kv.put(f"{CRED}/users/broken", b'{"encrypted_password": "not-a-hash"}')
    assert not rbac.authenticate("broken", "x")


# --- roles ----------------------------------------------------------------------------------
def test_roles_users_and_limits(rbac: RbacCoord) -> None:
    with pytest.raises(MilvusError, match=r'role \[name:"reader"\] already exists'):
        rbac.create_role("reader")
    assert rbac.select_role("reader", include_user_info=True) == [{"role": "reader", "users": ["alice"]}]
    assert rbac.select_role("nope") == []
    assert rbac.select_user("alice", include_role_info=True) == [{"user": "alice", "roles": ["reader"]}]
    for i in range(MAX_ROLES - 3):
        rbac.create_role(f"r{i}")
    with pytest.raises(MilvusError, match="number of roles has reached the limit"):
        rbac.create_role("one_too_many")
    with pytest.raises(MilvusError, match="not found the user"):
        rbac.operate_user_role("ghost", "reader", True)
    with pytest.raises(MilvusError, match="not found the role"):
        rbac.operate_user_role("alice", "ghost_role", True)
    rbac.operate_user_role("alice", "reader", False)
    rbac.operate_user_role("alice", "reader", False)  # removing twice is fine
    assert rbac.user_roles("alice") == []


def test_default_roles_cannot_be_dropped_and_granted_roles_need_force(rbac: RbacCoord) -> None:
    for role in ("admin", "public"):
        with pytest.raises(MilvusError) as err:
            rbac.drop_role(role)
        assert err.value.code == Code.PRIVILEGE_NOT_PERMITTED
        assert f"the role[{role}] is a default role, which can't be dropped" in err.value.message
    rbac.operate_privilege("reader", "Collection", "c1", "default", "Search", "root", True)
    with pytest.raises(MilvusError, match="fail to drop the role that it has privileges"):
        rbac.drop_role("reader")
    rbac.drop_role("reader", force_drop=True)
    assert rbac.user_roles("alice") == []
    assert not list(rbac.kv.scan(f"{CRED}/grantee-privileges/reader/"))
    with pytest.raises(MilvusError, match="not found the role"):
        rbac.drop_role("reader")


# --- privileges: Collection, Global, User objects -------------------------------------------
def test_collection_privilege_is_scoped_to_collection_and_database(rbac: RbacCoord) -> None:
    assert not allowed(rbac, "alice", "Collection", "c1", "PrivilegeSearch")
    rbac.operate_privilege("reader", "Collection", "c1", "default", "Search", "root", True)
    rbac.operate_privilege("reader", "Collection", "c1", "default", "Search", "root", True)  # twice: fine
    assert allowed(rbac, "alice", "Collection", "c1", "PrivilegeSearch")
    assert not allowed(rbac, "alice", "Collection", "c2", "PrivilegeSearch")
    assert not allowed(rbac, "alice", "Collection", "c1", "PrivilegeInsert")
    assert not allowed(rbac, "alice", "Collection", "c1", "PrivilegeSearch", db="other")
    rbac.operate_privilege("reader", "Collection", "*", "default", "Insert", "root", True)
    assert allowed(rbac, "alice", "Collection", "any", "PrivilegeInsert")
    rbac.operate_privilege("reader", "Collection", "c1", "default", "Search", "root", False)
    assert not allowed(rbac, "alice", "Collection", "c1", "PrivilegeSearch")
    key = f"{CRED}/grantee-privileges/reader/Collection/default.*"
    grantee_id = rbac.kv.get(key)
    assert grantee_id and rbac.kv.get(f"{CRED}/grantee-id/{grantee_id.decode()}/PrivilegeInsert") == b"root"


def test_global_privilege_name_is_always_star(rbac: RbacCoord) -> None:
    rbac.operate_privilege("reader", "Global", "whatever", "default", "CreateCollection", "root", True)
    assert allowed(rbac, "alice", "Global", "*", "PrivilegeCreateCollection")
    assert not allowed(rbac, "alice", "Global", "*", "PrivilegeDropCollection")
    grants = rbac.select_grant("reader", db_name="default")
    expected = {"object": "Global", "object_name": "*", "db_name": "default", "privilege": "CreateCollection"}
    assert grants == [expected | {"grantor": "root"}]
    assert rbac.select_grant("reader", db_name="other") == []


def test_cluster_level_privileges_apply_across_databases(rbac: RbacCoord) -> None:
    rbac.operate_privilege("reader", "Global", "*", "default", "CreateDatabase", "root", True)
    answer = rbac.check("alice", "Global", "*", "PrivilegeCreateDatabase", "other")
    assert answer == {"allowed": True, "db": "*"}


def test_user_object_privilege(rbac: RbacCoord) -> None:
    rbac.create_credential("bob", "bob-pw-1")
    assert not allowed(rbac, "alice", "User", "bob", "PrivilegeSelectUser")
    rbac.operate_privilege("reader", "User", "bob", "default", "SelectUser", "root", True)
    assert allowed(rbac, "alice", "User", "bob", "PrivilegeSelectUser")
    assert not allowed(rbac, "alice", "User", "bob", "PrivilegeUpdateUser")


def test_invalid_grants_are_refused_with_milvus_messages(rbac: RbacCoord) -> None:
    with pytest.raises(MilvusError, match="the object entity in the request is nil or invalid"):
        rbac.operate_privilege("reader", "Table", "*", "default", "Search", "root", True)
    with pytest.raises(MilvusError, match=r"not found the privilege name\[Fly\] in object\[Global\]"):
        rbac.operate_privilege("reader", "Global", "*", "default", "Fly", "root", True)
    with pytest.raises(MilvusError, match=r"not found the privilege name\[Search\] in object\[Global\]"):
        rbac.operate_privilege("reader", "Global", "*", "default", "Search", "root", True)
    with pytest.raises(MilvusError, match="not found the role"):
        rbac.operate_privilege("ghost", "Global", "*", "default", "All", "root", True)
    with pytest.raises(MilvusError, match="can not operate the built-in privilege group"):
        rbac.operate_privilege("reader", "Global", "*", "default", "ClusterAdmin", "root", True)
    with pytest.raises(MilvusError, match=r"not found the privilege name\[Fly\]"):
        rbac.operate_privilege("reader", "Global", "c", "default", "Fly", "root", True, version="v2")


def test_admin_role_root_user_and_public_defaults(rbac: RbacCoord) -> None:
    assert allowed(rbac, "root", "Global", "*", "PrivilegeDropDatabase")
    assert allowed(rbac, "alice", "Global", "*", "PrivilegeDescribeCollection")  # public
    assert allowed(rbac, "alice", "Collection", "c9", "PrivilegeIndexDetail", db="elsewhere")  # public
    assert not allowed(rbac, "alice", "Global", "*", "PrivilegeDropDatabase")
    rbac.operate_user_role("alice", "admin", True)
    assert allowed(rbac, "alice", "Global", "*", "PrivilegeDropDatabase")


def test_all_and_v1_groups(rbac: RbacCoord) -> None:
    rbac.operate_privilege("reader", "Collection", "c1", "default", "ReadOnly", "root", True)
    assert allowed(rbac, "alice", "Collection", "c1", "PrivilegeQuery")
    assert not allowed(rbac, "alice", "Collection", "c2", "PrivilegeQuery")
    assert not allowed(rbac, "alice", "Collection", "c1", "PrivilegeInsert")
    rbac.operate_privilege("reader", "Global", "*", "db2", "All", "root", True)
    assert allowed(rbac, "alice", "Collection", "x", "PrivilegeInsert", db="db2")
    assert allowed(rbac, "alice", "Global", "*", "PrivilegeCreateCollection", db="db2")
    assert not allowed(rbac, "alice", "Global", "*", "PrivilegeCreateCollection", db="default")


# --- privilege groups (v2) --------------------------------------------------------------------
def test_builtin_v2_groups_and_their_scope_rules(rbac: RbacCoord) -> None:
    rbac.operate_privilege("reader", "Global", "c1", "default", "CollectionReadOnly", "root", True, version="v2")
    assert allowed(rbac, "alice", "Collection", "c1", "PrivilegeSearch")
    assert allowed(rbac, "alice", "Global", "*", "PrivilegeDescribeCollection")
    assert not allowed(rbac, "alice", "Collection", "c2", "PrivilegeSearch")
    assert not allowed(rbac, "alice", "Collection", "c1", "PrivilegeInsert")
    with pytest.raises(MilvusError) as err:
        rbac.operate_privilege("reader", "Global", "*", "default", "ClusterReadOnly", "root", True, version="v2")
    assert err.value.code == Code.PARAMETER_INVALID
    assert "dbName and collectionName should be * for the cluster level privilege: ClusterReadOnly" in err.value.message
    with pytest.raises(MilvusError, match="collectionName should be \\* for the database level privilege"):
        rbac.operate_privilege("reader", "Global", "c1", "default", "DatabaseAdmin", "root", True, version="v2")
    rbac.operate_privilege("reader", "Global", "*", "*", "ClusterReadOnly", "root", True, version="v2")
    assert allowed(rbac, "alice", "Global", "*", "PrivilegeListDatabases")
    assert any(g["privilege"] == "ClusterReadOnly" for g in rbac.select_grant("reader"))


def test_custom_privilege_groups(rbac: RbacCoord) -> None:
    with pytest.raises(MilvusError, match=r"privilege group name \[CollectionAdmin\] is defined by built in"):
        rbac.create_privilege_group("CollectionAdmin")
    with pytest.raises(MilvusError, match=r"there is no privilege group name \[pg\]"):
        rbac.operate_privilege_group("pg", ["Insert"], True)
    rbac.create_privilege_group("pg")
    rbac.operate_privilege_group("pg", ["Insert", "Search", "Insert"], True)
    with pytest.raises(MilvusError, match="defined in system to operate"):
        rbac.operate_privilege_group("pg", ["Fly"], True)
    groups = {g["group_name"]: g["privileges"] for g in rbac.list_privilege_groups()}
    assert groups["pg"] == ["Insert", "Search"] and "ClusterAdmin" in groups
    stored = milvus_pb2.PrivilegeGroupInfo.FromString(rbac.kv.get(f"{ROOT}/root-coord/privilege-group/pg") or b"")
    assert [p.name for p in stored.privileges] == ["Insert", "Search"]
    rbac.operate_privilege("reader", "Global", "c1", "default", "pg", "root", True, version="v2")
    assert allowed(rbac, "alice", "Collection", "c1", "PrivilegeInsert")
    with pytest.raises(MilvusError, match=r"privilege group \[pg\] is used by role \[reader\]"):
        rbac.drop_privilege_group("pg")
    rbac.operate_privilege_group("pg", ["Insert"], False)
    assert not allowed(rbac, "alice", "Collection", "c1", "PrivilegeInsert")
    assert allowed(rbac, "alice", "Collection", "c1", "PrivilegeSearch")
    rbac.operate_privilege("reader", "Global", "c1", "default", "pg", "root", False, version="v2")
    rbac.drop_privilege_group("pg")
    rbac.drop_privilege_group("pg")  # twice, and built-in names: no-ops
    rbac.drop_privilege_group("ClusterAdmin")
    assert "pg" not in {g["group_name"] for g in rbac.list_privilege_groups()}


# --- what listings show -----------------------------------------------------------------------
def test_visible_databases_and_collections(rbac: RbacCoord) -> None:
    assert rbac.visible_databases("alice", ["default", "db2"]) == []  # public's grants do not count
    assert rbac.visible_collections("alice", "default", ["c1", "c2"]) == []
    rbac.operate_privilege("reader", "Collection", "c1", "default", "Search", "root", True)
    assert rbac.visible_databases("alice", ["default", "db2"]) == ["default"]
    assert rbac.visible_collections("alice", "default", ["c1", "c2"]) == ["c1"]
    assert rbac.visible_collections("alice", "db2", ["c1"]) == []
    rbac.operate_privilege("reader", "Global", "*", "db2", "All", "root", True)
    assert rbac.visible_collections("alice", "db2", ["c1", "c3"]) == ["c1", "c3"]
    assert rbac.visible_collections("root", "db9", ["z"]) == ["z"]


def test_select_grant_of_a_missing_role_or_object_type_fails(rbac: RbacCoord) -> None:
    with pytest.raises(MilvusError, match="not found the role"):
        rbac.select_grant("ghost")
    with pytest.raises(MilvusError, match=r"not found the object type\[name: Table\]"):
        rbac.select_grant("reader", object_type="Table")
    assert rbac.check("alice", "Global", "*", "PrivilegeSelectOwnership", "default", own_role="reader")["allowed"]
