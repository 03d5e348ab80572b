"""Credential and RBAC handlers: users, roles, grants and privilege groups (Milvus's RBAC RPCs).

The proxy validates names and passwords and decodes the base64 passwords pymilvus sends, as
Milvus's proxy does; the coordinator stores everything and enforces existence and limits.
These RPCs work whether or not authorization is enabled; with it on, the auth guard in front of
them has already checked the caller's privilege (CreateOwnership, ManageOwnership, ...).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pymilvus.grpc_gen import milvus_pb2

from common.errors import Code, MilvusError, invalid
from services.proxy.auth import current_user
from services.proxy.context import ProxyContext, db_of
from services.proxy.status import guard, ok

MAX_USERNAME = 32
MIN_PASSWORD, MAX_PASSWORD = 6, 256
MAX_NAME = 255
DEFAULT_ROLES = ("admin", "public")


def _decode_password(raw: str, username: str) -> str:
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid(f"decode password fail key:{username}") from None


def validate_username(name: str) -> None:
    name = name.strip()
    if not name:
        raise invalid("username should not be empty")
    if len(name) > MAX_USERNAME:
        raise invalid(
            f"invalid username {name} with length {len(name)}, the length of username must be less than {MAX_USERNAME}"
        )
    if not name[0].isascii() or not name[0].isalpha():
        raise invalid(f"invalid user name {name}, the first character must be a letter, but got {name[0]}")
    for c in name[1:]:
        if not (c.isascii() and (c.isalnum() or c == "_")):
            raise invalid(f"invalid user name {name}, username must contain only numbers, letters and underscores")


def validate_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise invalid(
            f"invalid password length: the length of password must be great than {MIN_PASSWORD} "
            f"and less than {MAX_PASSWORD} characters"
        )


def validate_name(name: str, kind: str) -> None:
    """Role and privilege group names: a letter or underscore, then letters, digits and underscores."""
    name = name.strip()
    if not name:
        raise invalid(f"{kind} should be not empty")
    if len(name) > MAX_NAME:
        raise invalid(f"the length of {kind} must be not greater than limit {MAX_NAME}")
    if not (name[0] == "_" or (name[0].isascii() and name[0].isalpha())):
        raise invalid(f"the first character of {kind} must be an underscore or letter")
    for i, c in enumerate(name[1:], start=1):
        if not (c == "_" or (c.isascii() and c.isalnum())):
            raise invalid(f"{kind} can only contain numbers, letters and underscores, found {c} at {i}")


class RbacHandlers:
    ctx: ProxyContext

    # --- credentials ----------------------------------------------------------------------
    @guard("CreateCredential")
    def CreateCredential(self, request: Any, context: Any) -> Any:
        validate_username(request.username)
        password = _decode_password(request.password, request.username)
        validate_password(password)
        self.ctx.coord.call("create_credential", username=request.username, password=password)
        return ok()

    @guard("UpdateCredential")
    def UpdateCredential(self, request: Any, context: Any) -> Any:
        validate_username(request.username)
        new_password = _decode_password(request.newPassword, request.username)
        validate_password(new_password)
        old_password: str | None = _decode_password(request.oldPassword, request.username)
        if current_user() in self.ctx.cfg.security.superusers:
            old_password = None  # a superuser resets passwords without knowing the old one
        self.ctx.coord.call(
            "update_credential", username=request.username, new_password=new_password, old_password=old_password
        )
        return ok()

    @guard("DeleteCredential")
    def DeleteCredential(self, request: Any, context: Any) -> Any:
        validate_username(request.username)
        self.ctx.coord.call("delete_credential", username=request.username)
        return ok()

    @guard("ListCredUsers")
    def ListCredUsers(self, request: Any, context: Any) -> Any:
        return milvus_pb2.ListCredUsersResponse(status=ok(), usernames=self.ctx.coord.call("list_cred_users"))

    # --- roles ----------------------------------------------------------------------------
    @guard("CreateRole")
    def CreateRole(self, request: Any, context: Any) -> Any:
        validate_name(request.entity.name, "role name")
        self.ctx.coord.call("create_role", name=request.entity.name)
        return ok()

    @guard("DropRole")
    def DropRole(self, request: Any, context: Any) -> Any:
        validate_name(request.role_name, "role name")
        self.ctx.coord.call("drop_role", name=request.role_name, force_drop=bool(request.force_drop))
        return ok()

    @guard("OperateUserRole")
    def OperateUserRole(self, request: Any, context: Any) -> Any:
        validate_username(request.username)
        validate_name(request.role_name, "role name")
        add = request.type == milvus_pb2.AddUserToRole
        self.ctx.coord.call("operate_user_role", username=request.username, role_name=request.role_name, add=add)
        return ok()

    @guard("SelectRole")
    def SelectRole(self, request: Any, context: Any) -> Any:
        role = request.role.name if request.HasField("role") else ""
        found = self.ctx.coord.call("select_role", role_name=role, include_user_info=request.include_user_info)
        results = [
            milvus_pb2.RoleResult(
                role=milvus_pb2.RoleEntity(name=r["role"]), users=[milvus_pb2.UserEntity(name=u) for u in r["users"]]
            )
            for r in found
        ]
        return milvus_pb2.SelectRoleResponse(status=ok(), results=results)

    @guard("SelectUser")
    def SelectUser(self, request: Any, context: Any) -> Any:
        user = request.user.name if request.HasField("user") else ""
        found = self.ctx.coord.call("select_user", username=user, include_role_info=request.include_role_info)
        results = [
            milvus_pb2.UserResult(
                user=milvus_pb2.UserEntity(name=u["user"]), roles=[milvus_pb2.RoleEntity(name=r) for r in u["roles"]]
            )
            for u in found
        ]
        return milvus_pb2.SelectUserResponse(status=ok(), results=results)

    # --- grants ---------------------------------------------------------------------------
    def _operate(self, role: str, object_type: str, name: str, db: str, privilege: str, grant: bool, v: str) -> None:
        validate_name(role, "role name")
        if not privilege:
            raise invalid("privilege name should be not empty")
        self.ctx.coord.call(
            "operate_privilege",
            role=role,
            object_type=object_type,
            object_name=name,
            db_name=db,
            privilege=privilege,
            grantor=current_user(),
            grant=grant,
            version=v,
        )

    @guard("OperatePrivilege")
    def OperatePrivilege(self, request: Any, context: Any) -> Any:
        e = request.entity
        if not e.object_name:
            raise invalid("the object name in the grant entity is empty")
        db = e.db_name or db_of(request, context)
        grant = request.type == milvus_pb2.Grant
        self._operate(e.role.name, e.object.name, e.object_name, db, e.grantor.privilege.name, grant, request.version)
        return ok()

    @guard("OperatePrivilegeV2")
    def OperatePrivilegeV2(self, request: Any, context: Any) -> Any:
        db = request.db_name or db_of(request, context)
        collection = request.collection_name or "*"
        grant = request.type == milvus_pb2.Grant
        self._operate(request.role.name, "Global", collection, db, request.grantor.privilege.name, grant, "v2")
        return ok()

    @guard("SelectGrant")
    def SelectGrant(self, request: Any, context: Any) -> Any:
        e = request.entity
        if not e.role.name:
            raise MilvusError(Code.UNEXPECTED, "the role entity is nil")
        found = self.ctx.coord.call(
            "select_grant",
            role=e.role.name,
            object_type=e.object.name if e.HasField("object") else "",
            object_name=e.object_name,
            db_name=e.db_name or db_of(request, context),
        )
        entities = [
            milvus_pb2.GrantEntity(
                role=milvus_pb2.RoleEntity(name=e.role.name),
                object=milvus_pb2.ObjectEntity(name=g["object"]),
                object_name=g["object_name"],
                db_name=g["db_name"],
                grantor=milvus_pb2.GrantorEntity(
                    user=milvus_pb2.UserEntity(name=g["grantor"]),
                    privilege=milvus_pb2.PrivilegeEntity(name=g["privilege"]),
                ),
            )
            for g in found
        ]
        return milvus_pb2.SelectGrantResponse(status=ok(), entities=entities)

    # --- privilege groups -----------------------------------------------------------------
    @guard("CreatePrivilegeGroup")
    def CreatePrivilegeGroup(self, request: Any, context: Any) -> Any:
        validate_name(request.group_name, "privilege group name")
        self.ctx.coord.call("create_privilege_group", name=request.group_name)
        return ok()

    @guard("DropPrivilegeGroup")
    def DropPrivilegeGroup(self, request: Any, context: Any) -> Any:
        validate_name(request.group_name, "privilege group name")
        self.ctx.coord.call("drop_privilege_group", name=request.group_name)
        return ok()

    @guard("ListPrivilegeGroups")
    def ListPrivilegeGroups(self, request: Any, context: Any) -> Any:
        groups = [
            milvus_pb2.PrivilegeGroupInfo(
                group_name=g["group_name"], privileges=[milvus_pb2.PrivilegeEntity(name=p) for p in g["privileges"]]
            )
            for g in self.ctx.coord.call("list_privilege_groups")
        ]
        return milvus_pb2.ListPrivilegeGroupsResponse(status=ok(), privilege_groups=groups)

    @guard("OperatePrivilegeGroup")
    def OperatePrivilegeGroup(self, request: Any, context: Any) -> Any:
        validate_name(request.group_name, "privilege group name")
        privileges = [p.name for p in request.privileges]
        for name in privileges:
            validate_name(name, "privilege name")
        add = request.type == milvus_pb2.AddPrivilegesToGroup
        self.ctx.coord.call("operate_privilege_group", name=request.group_name, privileges=privileges, add=add)
        return ok()
