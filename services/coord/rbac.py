"""Users, roles, grants and privilege groups: Milvus's credential and RBAC metadata, held by the coordinator.

Everything lives in the KV store under Milvus's rootcoord layout, so an etcd written by Quiver
reads like Milvus's (``{root}/meta/root-coord/credential/users/<user>`` holds
``{"encrypted_password": <bcrypt>}``; roles, user-role mappings, grantee and grantee-id keys and
``root-coord/privilege-group/<name>`` follow Milvus's catalog). Passwords are stored only as
bcrypt hashes (cost 10, ``$2a$`` as Go writes them). Proxies call :meth:`RbacCoord.authenticate`
and :meth:`RbacCoord.check` and cache the answers briefly; the answers come from an in-memory
copy of the policies that every change here refreshes (only the active coordinator writes them).
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

import bcrypt
from pymilvus.grpc_gen import milvus_pb2

from common.config import SecurityConfig
from common.errors import Code, MilvusError, invalid
from common.kv.base import KV
from common.rpc import rpc
from services.coord.rbac_privileges import (
    ANY,
    BUILTIN_GROUPS,
    CLUSTER,
    COLLECTION,
    DATABASE,
    DEFAULT_ROLES,
    GLOBAL,
    OBJECT_PRIVILEGES,
    OBJECT_TYPES,
    ROLE_ADMIN,
    ROLE_PUBLIC,
    USER_ROOT,
    Grant,
    api_name,
    custom_group_meta_name,
    expand,
    is_defined,
    level_of,
    meta_name,
    object_type_of,
    permits,
    policy_db,
)

MAX_USERS = 100  # Milvus's proxy.maxUserNum
MAX_ROLES = 10  # Milvus's proxy.maxRoleNum, admin and public included
BCRYPT_COST = 10
ROLE_NOT_FOUND = "not found the role, maybe the role isn't existed or internal system error"
USER_NOT_FOUND = "not found the user, maybe the user isn't existed or internal system error"
# The public role's grants at first start (Milvus's proxy.enablePublicPrivilege).
_PUBLIC_GRANTS = ((GLOBAL, "DescribeCollection"), (GLOBAL, "ListAliases"), (COLLECTION, "IndexDetail"))


def _fail(message: str) -> MilvusError:
    return MilvusError(Code.UNEXPECTED, message)


def _stamp(stored: bytes) -> str:
    return hashlib.sha256(stored).hexdigest()[:16]


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_COST, prefix=b"2a")).decode()


class _Keys:
    def __init__(self, meta_root: str) -> None:
        cred = f"{meta_root}/root-coord/credential"
        self.users = f"{cred}/users/"
        self.roles = f"{cred}/roles/"
        self.mappings = f"{cred}/user-role-mapping/"
        self.grantees = f"{cred}/grantee-privileges/"
        self.grantee_ids = f"{cred}/grantee-id/"
        self.groups = f"{meta_root}/root-coord/privilege-group/"

    def grantee(self, role: str, object_type: str, db: str, name: str) -> str:
        return f"{self.grantees}{role}/{object_type}/{db}.{name}"


class RbacCoord:
    """The coordinator's credential and RBAC RPCs (Milvus rootcoord's credential/RBAC part)."""

    def __init__(self, kv: KV, meta_root: str, security: SecurityConfig) -> None:
        self.kv = kv
        self.security = security
        self.keys = _Keys(meta_root)
        self._lock = threading.RLock()
        self._ready = False
        self._policies: list[Grant] | None = None
        self._roles_of: dict[str, list[str]] | None = None

    # --- storage --------------------------------------------------------------------------
    def _bootstrap(self) -> None:
        """Root user, the admin and public roles and public's grants, created once (lazily: bcrypt is slow)."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            puts: dict[str, bytes] = {}
            if self.kv.get(self.keys.users + USER_ROOT) is None:
                puts[self.keys.users + USER_ROOT] = self._credential(self.security.default_root_password)
            for role in DEFAULT_ROLES:
                if self.kv.get(self.keys.roles + role) is None:
                    puts[self.keys.roles + role] = b""
            if puts:
                self.kv.multi_save(puts)
                for object_type, privilege in _PUBLIC_GRANTS:
                    self._alter_grant(Grant(ROLE_PUBLIC, object_type, ANY, ANY, meta_name(privilege), USER_ROOT), True)
            self._ready = True

    @staticmethod
    def _credential(password: str) -> bytes:
        return json.dumps({"encrypted_password": hash_password(password)}).encode()

    def _changed(self) -> None:
        self._policies = None
        self._roles_of = None

    def _names(self, prefix: str) -> list[str]:
        return [kv.key[len(prefix) :] for kv in self.kv.scan(prefix)]

    def _stored_grants(self) -> list[Grant]:
        out = []
        for kv in self.kv.scan(self.keys.grantees):
            role, object_type, scoped = kv.key[len(self.keys.grantees) :].split("/", 2)
            db, _, name = scoped.partition(".")
            prefix = f"{self.keys.grantee_ids}{kv.value.decode()}/"
            for item in self.kv.scan(prefix):
                out.append(Grant(role, object_type, db, name, item.key[len(prefix) :], item.value.decode()))
        return out

    def _custom_groups(self) -> dict[str, tuple[str, ...]]:
        groups = {}
        for kv in self.kv.scan(self.keys.groups):
            info = milvus_pb2.PrivilegeGroupInfo.FromString(kv.value)
            groups[info.group_name] = tuple(p.name for p in info.privileges)
        return groups

    def _all_groups(self) -> dict[str, tuple[str, ...]]:
        return {**self._custom_groups(), **BUILTIN_GROUPS}

    def _policy_rows(self) -> list[Grant]:
        policies = self._policies
        if policies is None:
            with self._lock:
                policies = expand(self._stored_grants(), self._all_groups())
                self._policies = policies
        return policies

    def _roles(self, user: str) -> list[str]:
        roles_of = self._roles_of
        if roles_of is None:
            with self._lock:
                roles_of = {}
                for key in self._names(self.keys.mappings):
                    name, _, role = key.partition("/")
                    roles_of.setdefault(name, []).append(role)
                self._roles_of = roles_of
        return roles_of.get(user, [])

    def _alter_grant(self, grant: Grant, add: bool) -> None:
        key = self.keys.grantee(grant.role, grant.object_type, grant.db, grant.object_name)
        grantee_id = self.kv.get(key)
        if grantee_id is None:
            if not add:
                return  # revoking what was never granted is not an error (Milvus: ignorable)
            grantee_id = hashlib.md5(key.encode()).hexdigest().encode()  # noqa: S324 - an id, as Milvus's
            self.kv.put(key, grantee_id)
        id_key = f"{self.keys.grantee_ids}{grantee_id.decode()}/{grant.privilege}"
        if add:
            if self.kv.get(id_key) is None:
                self.kv.put(id_key, grant.grantor.encode())
        else:
            self.kv.delete(id_key)
            if not self.kv.scan(f"{self.keys.grantee_ids}{grantee_id.decode()}/"):
                self.kv.delete(key)
        self._changed()

    def _require_role(self, role: str) -> None:
        if not role or self.kv.get(self.keys.roles + role) is None:
            raise _fail(ROLE_NOT_FOUND)

    def _user_exists(self, user: str) -> bool:
        return bool(user) and self.kv.get(self.keys.users + user) is not None

    # --- credentials ----------------------------------------------------------------------
    @rpc
    def create_credential(self, username: str, password: str) -> None:
        self._bootstrap()
        with self._lock:
            if self._user_exists(username):
                raise _fail(f"user already exists: {username}")
            if len(self._names(self.keys.users)) >= MAX_USERS:
                raise _fail("unable to add user because the number of users has reached the limit")
            self.kv.put(self.keys.users + username, self._credential(password))

    @rpc
    def update_credential(self, username: str, new_password: str, old_password: str | None = None) -> None:
        """Set a new password; ``old_password`` None skips the check (the proxy allows that for superusers)."""
        self._bootstrap()
        with self._lock:
            if old_password is not None and not self.authenticate(username, old_password):
                raise MilvusError(Code.NOT_AUTHENTICATED, f"old password not correct for {username}: not authenticated")
            if not self._user_exists(username):
                raise _fail(f"found no credential: {username}")
            self.kv.put(self.keys.users + username, self._credential(new_password))

    @rpc
    def delete_credential(self, username: str) -> None:
        self._bootstrap()
        if username == USER_ROOT:
            raise MilvusError(Code.PRIVILEGE_NOT_PERMITTED, "root user cannot be deleted: privilege not permitted")
        with self._lock:
            prefix = f"{self.keys.mappings}{username}/"
            self.kv.multi_save({}, [self.keys.users + username, *(prefix + r for r in self._names(prefix))])
            self._changed()

    @rpc
    def list_cred_users(self) -> list[str]:
        self._bootstrap()
        return self._names(self.keys.users)

    @rpc
    def authenticate(self, username: str, password: str) -> str:
        """The credential's stamp when ``password`` is ``username``'s, else "" (bcrypt check; unknown users fail).

        The stamp (a digest of the stored hash) lets a proxy re-validate a cached login cheaply
        with :meth:`credential_stamp` instead of paying for bcrypt again.
        """
        self._bootstrap()
        raw = self.kv.get(self.keys.users + username) if username else None
        if raw is None:
            return ""
        hashed = str(json.loads(raw).get("encrypted_password", ""))
        try:
            matches = bcrypt.checkpw(password.encode(), hashed.encode())
        except ValueError:
            matches = False
        return _stamp(raw) if matches else ""

    @rpc
    def credential_stamp(self, username: str) -> str:
        """The stamp of ``username``'s stored credential ("" when there is none): changes with the password."""
        self._bootstrap()
        raw = self.kv.get(self.keys.users + username) if username else None
        return _stamp(raw) if raw is not None else ""

    # --- roles ----------------------------------------------------------------------------
    @rpc
    def create_role(self, name: str) -> None:
        self._bootstrap()
        with self._lock:
            if self.kv.get(self.keys.roles + name) is not None:
                raise _fail(f'role [name:"{name}"] already exists')
            if len(self._names(self.keys.roles)) >= MAX_ROLES:
                raise _fail("unable to create role because the number of roles has reached the limit")
            self.kv.put(self.keys.roles + name, b"")

    @rpc
    def drop_role(self, name: str, force_drop: bool = False) -> None:
        self._bootstrap()
        if name in DEFAULT_ROLES:
            raise MilvusError(
                Code.PRIVILEGE_NOT_PERMITTED,
                f"the role[{name}] is a default role, which can't be dropped: privilege not permitted",
            )
        with self._lock:
            self._require_role(name)
            grants = [g for g in self._stored_grants() if g.role == name]
            if grants and not force_drop:
                raise _fail("fail to drop the role that it has privileges. Use REVOKE API to revoke privileges")
            for grant in grants:
                self._alter_grant(grant, False)
            doomed = [self.keys.roles + name]
            for key in self._names(self.keys.mappings):
                if key.partition("/")[2] == name:
                    doomed.append(self.keys.mappings + key)
            self.kv.multi_save({}, doomed)
            self._changed()

    @rpc
    def operate_user_role(self, username: str, role_name: str, add: bool) -> None:
        self._bootstrap()
        with self._lock:
            self._require_role(role_name)
            key = f"{self.keys.mappings}{username}/{role_name}"
            if add:
                if not self._user_exists(username):
                    raise _fail(USER_NOT_FOUND)
                self.kv.put(key, b"")
            else:
                self.kv.delete(key)
            self._changed()

    @rpc
    def select_role(self, role_name: str = "", include_user_info: bool = False) -> list[dict[str, Any]]:
        """[{"role": name, "users": [...]}]; a named role that does not exist gives []."""
        self._bootstrap()
        roles = self._names(self.keys.roles)
        if role_name:
            roles = [r for r in roles if r == role_name]
        users: dict[str, list[str]] = {}
        if include_user_info:
            for key in self._names(self.keys.mappings):
                user, _, role = key.partition("/")
                users.setdefault(role, []).append(user)
        return [{"role": r, "users": users.get(r, [])} for r in roles]

    @rpc
    def select_user(self, username: str = "", include_role_info: bool = False) -> list[dict[str, Any]]:
        """[{"user": name, "roles": [...]}]; a named user that does not exist gives []."""
        self._bootstrap()
        names = self._names(self.keys.users)
        if username:
            names = [u for u in names if u == username]
        return [{"user": u, "roles": self._roles(u) if include_role_info else []} for u in names]

    @rpc
    def user_roles(self, username: str) -> list[str]:
        self._bootstrap()
        return list(self._roles(username))

    # --- grants ---------------------------------------------------------------------------
    def _grant_of(
        self, role: str, object_type: str, object_name: str, db_name: str, privilege: str, grantor: str, version: str
    ) -> Grant:
        """Validate a grant as Milvus's rootcoord does and turn it into the stored row."""
        if object_type not in OBJECT_TYPES:
            raise _fail("the object entity in the request is nil or invalid")
        self._require_role(role)
        if not self._user_exists(grantor):
            raise _fail(USER_NOT_FOUND)
        custom = self._custom_groups()
        if version == "v2":
            if privilege != ANY and privilege not in custom and not is_defined(privilege):
                raise _fail(f"not found the privilege name[{privilege}]")
            self._check_group_scope(privilege, db_name, object_name, {**custom, **BUILTIN_GROUPS})
            object_type = object_type_of(privilege)
        else:
            if privilege in custom:
                raise _fail(f"can not operate the custom privilege group [{privilege}]")
            if privilege in BUILTIN_GROUPS:
                raise _fail(f"can not operate the built-in privilege group [{privilege}]")
            if privilege != ANY and privilege not in OBJECT_PRIVILEGES[object_type]:
                raise _fail(f"not found the privilege name[{privilege}] in object[{object_type}]")
            if object_type == GLOBAL:
                object_name = ANY
        stored = custom_group_meta_name(privilege) if privilege in custom else meta_name(privilege)
        return Grant(role, object_type, policy_db(stored, db_name), object_name, stored, grantor)

    @staticmethod
    def _check_group_scope(group: str, db: str, collection: str, groups: dict[str, tuple[str, ...]]) -> None:
        members = groups.get(group)
        if not members:
            return
        level = level_of(members[0])
        if level == CLUSTER and (db != ANY or collection != ANY):
            raise invalid(f"dbName and collectionName should be * for the cluster level privilege: {group}")
        if level == DATABASE and collection not in ("", ANY):
            raise invalid(f"collectionName should be * for the database level privilege: {group}")
        if level == COLLECTION and db == ANY and collection not in ("", ANY):
            raise invalid(f"please specify database name for the collection level privilege: {group}")

    @rpc
    def operate_privilege(
        self,
        role: str,
        object_type: str,
        object_name: str,
        db_name: str,
        privilege: str,
        grantor: str,
        grant: bool,
        version: str = "",
    ) -> None:
        """Grant or revoke ``privilege`` (API name, a group or ``*``); granting twice or revoking nothing is fine."""
        self._bootstrap()
        with self._lock:
            row = self._grant_of(role, object_type, object_name, db_name, privilege, grantor, version)
            self._alter_grant(row, grant)

    @rpc
    def select_grant(
        self, role: str, object_type: str = "", object_name: str = "", db_name: str = ANY
    ) -> list[dict[str, str]]:
        """A role's grants in ``db_name`` (and in ``*``), optionally of one object type / object."""
        self._bootstrap()
        self._require_role(role)
        if object_type and object_type not in OBJECT_TYPES:
            supported = sorted(OBJECT_TYPES)
            raise _fail(f"not found the object type[name: {object_type}], supported the object types: {supported}")
        out = []
        for g in self._stored_grants():
            if g.role != role or (object_type and g.object_type != object_type):
                continue
            if object_name and g.object_name != object_name:
                continue
            if ANY not in (g.db, db_name) and g.db != db_name:
                continue
            out.append(
                {
                    "object": g.object_type,
                    "object_name": g.object_name,
                    "db_name": g.db,
                    "privilege": api_name(g.privilege),
                    "grantor": g.grantor,
                }
            )
        return out

    # --- privilege groups -------------------------------------------------------------------
    @rpc
    def create_privilege_group(self, name: str) -> None:
        self._bootstrap()
        if is_defined(name):
            raise invalid(
                f"privilege group name [{name}] is defined by built in privileges or privilege groups in system"
            )
        with self._lock:
            if self.kv.get(self.keys.groups + name) is not None:
                raise invalid(f"privilege group [{name}] already exists")
            self.kv.put(self.keys.groups + name, milvus_pb2.PrivilegeGroupInfo(group_name=name).SerializeToString())

    @rpc
    def drop_privilege_group(self, name: str) -> None:
        """Dropping a missing or built-in group does nothing; one still granted to a role is refused."""
        self._bootstrap()
        with self._lock:
            if self.kv.get(self.keys.groups + name) is None:
                return
            stored = custom_group_meta_name(name)
            for g in self._stored_grants():
                if g.privilege == stored:
                    raise _fail(f"privilege group [{name}] is used by role [{g.role}]")
            self.kv.delete(self.keys.groups + name)
            self._changed()

    @rpc
    def list_privilege_groups(self) -> list[dict[str, Any]]:
        self._bootstrap()
        return [{"group_name": n, "privileges": list(p)} for n, p in self._all_groups().items()]

    @rpc
    def operate_privilege_group(self, name: str, privileges: list[str], add: bool) -> None:
        self._bootstrap()
        with self._lock:
            groups = self._custom_groups()
            if name not in groups:
                raise invalid(f"there is no privilege group name [{name}]")
            wanted: list[str] = []
            for p in privileges:
                if p in BUILTIN_GROUPS:
                    wanted.extend(BUILTIN_GROUPS[p])
                elif is_defined(p):
                    wanted.append(p)
                else:
                    raise invalid(
                        f"there is no privilege name or privilege group name [{p}] defined in system to operate"
                    )
            current = list(groups[name])
            if add:
                current += [p for p in wanted if p not in current]
            else:
                current = [p for p in current if p not in wanted]
            info = milvus_pb2.PrivilegeGroupInfo(
                group_name=name, privileges=[milvus_pb2.PrivilegeEntity(name=p) for p in dict.fromkeys(current)]
            )
            self.kv.put(self.keys.groups + name, info.SerializeToString())
            self._changed()

    # --- what proxies ask -----------------------------------------------------------------
    @rpc
    def check(
        self, user: str, object_type: str, object_name: str, privilege: str, db: str, own_role: str = ""
    ) -> dict[str, Any]:
        """{"allowed": bool, "db": the database the policy was checked in}; ``privilege`` is a metastore name.

        ``own_role`` (SelectGrant's role) is allowed when the user holds that role, as Milvus allows
        users to read their own roles' grants.
        """
        self._bootstrap()
        scope = policy_db(privilege, db or "default")
        if user == USER_ROOT:
            return {"allowed": True, "db": scope}
        roles = [*self._roles(user), ROLE_PUBLIC]
        if own_role and own_role in roles:
            return {"allowed": True, "db": scope}
        allowed = permits(self._policy_rows(), roles, object_type, scope, object_name or "", privilege)
        return {"allowed": allowed, "db": scope}

    def _sees_everything(self, user: str) -> bool:
        return user == USER_ROOT or ROLE_ADMIN in self._roles(user)

    @rpc
    def visible_databases(self, user: str, names: list[str]) -> list[str]:
        """The databases ListDatabases shows ``user``: those its own roles (not public) hold grants in."""
        self._bootstrap()
        if self._sees_everything(user):
            return names
        roles = set(self._roles(user))
        dbs = {g.db for g in self._stored_grants() if g.role in roles}
        return names if ANY in dbs else [n for n in names if n in dbs]

    @rpc
    def visible_collections(self, user: str, db: str, names: list[str]) -> list[str]:
        """The collections ShowCollections shows ``user`` in ``db`` (Milvus's rule).

        Global "All", or a Collection grant or collection-level group on ``*``, shows every
        collection; Collection grants on named collections show those.
        """
        self._bootstrap()
        if self._sees_everything(user):
            return names
        roles = set(self._roles(user))
        seen: set[str] = set()
        for g in self._stored_grants():
            if g.role not in roles or g.db not in (ANY, db):
                continue
            privilege = api_name(g.privilege)
            if g.object_type == GLOBAL and privilege == "All":
                return names
            if g.object_type == COLLECTION or privilege.startswith("Collection") and privilege in BUILTIN_GROUPS:
                if g.object_name == ANY:
                    return names
                seen.add(g.object_name)
        return [n for n in names if n in seen]
