"""REST v2 /users/*, /roles/*, /privilege_groups/* and /jobs/import/*.

These translate to the RBAC and import RPCs. The RBAC ones are served by the servicer's
credential and RBAC handlers (the same privilege checks as over gRPC apply when authorization is
enabled); the import RPCs still answer the servicer's "not supported" status (code 10).
"""

from __future__ import annotations

import base64

from fastapi import APIRouter, Depends, Response
from pymilvus.grpc_gen import milvus_pb2

from services.proxy.rest import models as m
from services.proxy.rest.envelope import Gateway, ok
from services.proxy.rest.routing import RestContext, rest_context


def _b64(password: str) -> str:
    return base64.b64encode(password.encode()).decode()  # credentials travel base64-encoded, as pymilvus sends them


def register_users(router: APIRouter, gw: Gateway) -> None:
    @router.post("/users/list", summary="List users")
    def list_users(req: m.DatabaseReq | None = None) -> Response:
        return ok(list(gw.call("ListCredUsers", milvus_pb2.ListCredUsersRequest()).usernames))

    @router.post("/users/describe", summary="Roles of a user")
    def describe_user(req: m.UserReq) -> Response:
        request = milvus_pb2.SelectUserRequest(user=milvus_pb2.UserEntity(name=req.userName), include_role_info=True)
        results = gw.call("SelectUser", request).results
        return ok([r.name for res in results if res.user.name == req.userName for r in res.roles])

    @router.post("/users/create", summary="Create a user")
    def create_user(req: m.PasswordReq) -> Response:
        gw.call(
            "CreateCredential", milvus_pb2.CreateCredentialRequest(username=req.userName, password=_b64(req.password))
        )
        return ok()

    @router.post("/users/update_password", summary="Change a user's password")
    def update_password(req: m.NewPasswordReq) -> Response:
        request = milvus_pb2.UpdateCredentialRequest(
            username=req.userName, oldPassword=_b64(req.password), newPassword=_b64(req.newPassword)
        )
        gw.call("UpdateCredential", request)
        return ok()

    @router.post("/users/drop", summary="Drop a user")
    def drop_user(req: m.UserReq) -> Response:
        gw.call("DeleteCredential", milvus_pb2.DeleteCredentialRequest(username=req.userName))
        return ok()

    def user_role(req: m.UserRoleReq, kind: int) -> Response:
        request = milvus_pb2.OperateUserRoleRequest(username=req.userName, role_name=req.roleName, type=kind)  # type: ignore[arg-type]
        gw.call("OperateUserRole", request)
        return ok()

    @router.post("/users/grant_role", summary="Grant a role to a user")
    def grant_role(req: m.UserRoleReq) -> Response:
        return user_role(req, milvus_pb2.AddUserToRole)

    @router.post("/users/revoke_role", summary="Revoke a role from a user")
    def revoke_role(req: m.UserRoleReq) -> Response:
        return user_role(req, milvus_pb2.RemoveUserFromRole)


def register_roles(router: APIRouter, gw: Gateway) -> None:
    @router.post("/roles/list", summary="List roles")
    def list_roles(req: m.DatabaseReq | None = None) -> Response:
        return ok([r.role.name for r in gw.call("SelectRole", milvus_pb2.SelectRoleRequest()).results])

    @router.post("/roles/describe", summary="Privileges of a role")
    def describe_role(req: m.RoleReq, ctx: RestContext = Depends(rest_context)) -> Response:
        entity = milvus_pb2.GrantEntity(role=milvus_pb2.RoleEntity(name=req.roleName), db_name=ctx.db(req.dbName))
        grants = gw.call("SelectGrant", milvus_pb2.SelectGrantRequest(entity=entity)).entities
        return ok(
            [
                {
                    "objectType": g.object.name,
                    "objectName": g.object_name,
                    "privilege": g.grantor.privilege.name,
                    "dbName": g.db_name,
                    "grantor": g.grantor.user.name,
                }
                for g in grants
            ]
        )

    @router.post("/roles/create", summary="Create a role")
    def create_role(req: m.RoleReq) -> Response:
        gw.call("CreateRole", milvus_pb2.CreateRoleRequest(entity=milvus_pb2.RoleEntity(name=req.roleName)))
        return ok()

    @router.post("/roles/drop", summary="Drop a role")
    def drop_role(req: m.RoleReq) -> Response:
        gw.call("DropRole", milvus_pb2.DropRoleRequest(role_name=req.roleName))
        return ok()

    def privilege(req: m.GrantReq, ctx: RestContext, kind: int) -> Response:
        entity = milvus_pb2.GrantEntity(
            role=milvus_pb2.RoleEntity(name=req.roleName),
            object=milvus_pb2.ObjectEntity(name=req.objectType),
            object_name=req.objectName,
            db_name=ctx.db(req.dbName),
            grantor=milvus_pb2.GrantorEntity(privilege=milvus_pb2.PrivilegeEntity(name=req.privilege)),
        )
        gw.call("OperatePrivilege", milvus_pb2.OperatePrivilegeRequest(entity=entity, type=kind))  # type: ignore[arg-type]
        return ok()

    @router.post("/roles/grant_privilege", summary="Grant a privilege to a role")
    def grant_privilege(req: m.GrantReq, ctx: RestContext = Depends(rest_context)) -> Response:
        return privilege(req, ctx, milvus_pb2.Grant)

    @router.post("/roles/revoke_privilege", summary="Revoke a privilege from a role")
    def revoke_privilege(req: m.GrantReq, ctx: RestContext = Depends(rest_context)) -> Response:
        return privilege(req, ctx, milvus_pb2.Revoke)

    def privilege_v2(req: m.GrantV2Req, kind: int) -> Response:
        request = milvus_pb2.OperatePrivilegeV2Request(
            role=milvus_pb2.RoleEntity(name=req.roleName),
            grantor=milvus_pb2.GrantorEntity(privilege=milvus_pb2.PrivilegeEntity(name=req.privilege)),
            type=kind,  # type: ignore[arg-type]
            db_name=req.dbName,
            collection_name=req.collectionName,
        )
        gw.call("OperatePrivilegeV2", request)
        return ok()

    @router.post("/roles/grant_privilege_v2", summary="Grant a privilege on a database/collection")
    def grant_privilege_v2(req: m.GrantV2Req) -> Response:
        return privilege_v2(req, milvus_pb2.Grant)

    @router.post("/roles/revoke_privilege_v2", summary="Revoke a privilege on a database/collection")
    def revoke_privilege_v2(req: m.GrantV2Req) -> Response:
        return privilege_v2(req, milvus_pb2.Revoke)

    @router.post("/privilege_groups/list", summary="List privilege groups")
    def list_privilege_groups(req: m.EmptyReq | None = None) -> Response:
        groups = gw.call("ListPrivilegeGroups", milvus_pb2.ListPrivilegeGroupsRequest()).privilege_groups
        found = [
            {"privilegeGroupName": g.group_name, "privileges": ",".join(p.name for p in g.privileges)} for g in groups
        ]
        return ok({"privilegeGroups": found})

    @router.post("/privilege_groups/create", summary="Create a privilege group")
    def create_privilege_group(req: m.PrivilegeGroupReq) -> Response:
        gw.call("CreatePrivilegeGroup", milvus_pb2.CreatePrivilegeGroupRequest(group_name=req.privilegeGroupName))
        return ok()

    @router.post("/privilege_groups/drop", summary="Drop a privilege group")
    def drop_privilege_group(req: m.PrivilegeGroupReq) -> Response:
        gw.call("DropPrivilegeGroup", milvus_pb2.DropPrivilegeGroupRequest(group_name=req.privilegeGroupName))
        return ok()

    def group_privileges(req: m.PrivilegeGroupReq, kind: int) -> Response:
        request = milvus_pb2.OperatePrivilegeGroupRequest(
            group_name=req.privilegeGroupName,
            privileges=[milvus_pb2.PrivilegeEntity(name=p) for p in req.privileges],
            type=kind,  # type: ignore[arg-type]
        )
        gw.call("OperatePrivilegeGroup", request)
        return ok()

    @router.post("/privilege_groups/add_privileges_to_group", summary="Add privileges to a group")
    def add_privileges(req: m.PrivilegeGroupReq) -> Response:
        return group_privileges(req, milvus_pb2.AddPrivilegesToGroup)

    @router.post("/privilege_groups/remove_privileges_from_group", summary="Remove privileges from a group")
    def remove_privileges(req: m.PrivilegeGroupReq) -> Response:
        return group_privileges(req, milvus_pb2.RemovePrivilegesFromGroup)
