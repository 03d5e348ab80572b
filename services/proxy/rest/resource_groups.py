"""REST v2 /resource_groups/{create,drop,alter,describe,list,transfer_replica}.

Milvus's shapes (internal/distributed/proxy/httpserver/resource_group_handler_v2.go): a group's
config is ``{"requests": {"node_num": n}, "limits": {...}, "transfer_from": [{"resource_group":
...}], "transfer_to": [...]}``; ``alter`` takes ``{"resource_groups": {name: config}}``;
``transfer_replica`` takes ``sourceRgName``, ``targetRgName``, ``collectionName`` and
``replicaNum``. ``describe`` answers ``{"resource_group": ...}`` with the protobuf
ResourceGroup's field names, leaving out empty fields as Go's ``omitempty`` does.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from google.protobuf.message import Message
from pymilvus.grpc_gen import milvus_pb2, rg_pb2

from services.proxy.rest import models as m
from services.proxy.rest.envelope import Gateway, ok
from services.proxy.rest.routing import RestContext, rest_context


def _config(cfg: m.ResourceGroupConfig) -> rg_pb2.ResourceGroupConfig:
    out = rg_pb2.ResourceGroupConfig(
        requests=rg_pb2.ResourceGroupLimit(node_num=cfg.requests.node_num),
        limits=rg_pb2.ResourceGroupLimit(node_num=cfg.limits.node_num),
        transfer_from=[rg_pb2.ResourceGroupTransfer(resource_group=t.resource_group) for t in cfg.transfer_from],
        transfer_to=[rg_pb2.ResourceGroupTransfer(resource_group=t.resource_group) for t in cfg.transfer_to],
    )
    if cfg.node_filter is not None:
        for key, value in cfg.node_filter.node_labels.items():
            out.node_filter.node_labels.add(key=key, value=value)
    return out


def _repeated(field: Any) -> bool:
    flag = getattr(field, "is_repeated", None)  # protobuf >= 5.28; ``label`` before (gone in newer releases)
    return bool(flag) if flag is not None else bool(field.label == field.LABEL_REPEATED)


def as_go_json(msg: Message) -> dict[str, Any]:
    """A protobuf message as Go's encoding/json renders the generated struct: proto field names,
    numbers as numbers (int64 too), unset and empty fields left out (``omitempty``)."""
    out: dict[str, Any] = {}
    for field, value in msg.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            entry = field.message_type.fields_by_name["value"]
            out[field.name] = {k: as_go_json(v) if entry.message_type else v for k, v in value.items()}
        elif _repeated(field):
            out[field.name] = [as_go_json(v) if field.message_type else v for v in value]
        elif field.message_type is not None:
            out[field.name] = as_go_json(value)
        else:
            out[field.name] = value
    return out


def register(router: APIRouter, gw: Gateway) -> None:
    @router.post("/resource_groups/create", summary="Create a resource group")
    def create(req: m.ResourceGroupReq) -> Response:
        request = milvus_pb2.CreateResourceGroupRequest(resource_group=req.name)
        if req.config is not None:
            request.config.CopyFrom(_config(req.config))
        gw.call("CreateResourceGroup", request)
        return ok()

    @router.post("/resource_groups/drop", summary="Drop a resource group")
    def drop(req: m.ResourceGroupReq) -> Response:
        gw.call("DropResourceGroup", milvus_pb2.DropResourceGroupRequest(resource_group=req.name))
        return ok()

    @router.post("/resource_groups/alter", summary="Change the config of resource groups")
    def alter(req: m.UpdateResourceGroupReq) -> Response:
        request = milvus_pb2.UpdateResourceGroupsRequest()
        for name, cfg in req.resource_groups.items():
            request.resource_groups[name].CopyFrom(_config(cfg))
        gw.call("UpdateResourceGroups", request)
        return ok()

    @router.post("/resource_groups/describe", summary="Nodes, replicas and config of a resource group")
    def describe(req: m.ResourceGroupReq) -> Response:
        reply = gw.call("DescribeResourceGroup", milvus_pb2.DescribeResourceGroupRequest(resource_group=req.name))
        return ok({"resource_group": as_go_json(reply.resource_group)})

    @router.post("/resource_groups/list", summary="Names of the resource groups")
    def list_groups(req: m.EmptyReq | None = None) -> Response:
        return ok(list(gw.call("ListResourceGroups", milvus_pb2.ListResourceGroupsRequest()).resource_groups))

    @router.post("/resource_groups/transfer_replica", summary="Move replicas of a collection to another group")
    def transfer_replica(req: m.TransferReplicaReq, ctx: RestContext = Depends(rest_context)) -> Response:
        request = milvus_pb2.TransferReplicaRequest(
            source_resource_group=req.sourceRgName,
            target_resource_group=req.targetRgName,
            collection_name=req.collectionName,
            num_replica=req.replicaNum,
            db_name=ctx.db(req.dbName),
        )
        gw.call("TransferReplica", request)
        return ok()
