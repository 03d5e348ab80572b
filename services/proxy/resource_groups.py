"""Resource-group RPCs of the Milvus API (pymilvus ``utility.*_resource_group``, ``MilvusClient``).

Create/Drop/List/Describe/UpdateResourceGroups, TransferNode and TransferReplica: the proxy
checks the names (Milvus's rules) and converts between the protobuf messages and the query
coordinator's plain records; the coordinator owns the groups (services/coord/resource_groups.py).
"""

from __future__ import annotations

import re
from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2, rg_pb2

from common.errors import Code, MilvusError, invalid
from services.proxy.context import ProxyContext, db_of
from services.proxy.status import guard, ok

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_NAME_LENGTH = 255


def validate_rg_name(name: str) -> None:
    if not name:
        raise invalid("resource group name couldn't be empty")
    msg = f"Invalid resource group name {name}."
    if len(name) > MAX_NAME_LENGTH:
        raise invalid(f"{msg} the length of a resource group name must be less than {MAX_NAME_LENGTH} characters")
    if not (name[0] == "_" or (name[0].isascii() and name[0].isalpha())):
        raise invalid(f"{msg} the first character of a resource group name must be an underscore or letter")
    if not _NAME.match(name):
        raise invalid(f"{msg} resource group name can only contain numbers, letters and underscores")


def config_to_dict(cfg: rg_pb2.ResourceGroupConfig, given: bool) -> dict[str, Any] | None:
    """The coordinator's config record; None when the request carried none (Milvus: requests=limits=0)."""
    if not given:
        return None
    if cfg.HasField("node_filter") and len(cfg.node_filter.node_labels):
        # Milvus places only query nodes carrying these labels; Quiver's nodes have no labels
        raise MilvusError(Code.UNIMPLEMENTED, "resource group node_filter (node labels) is not supported by Quiver yet")
    out: dict[str, Any] = {
        "transfer_from": [{"resource_group": t.resource_group} for t in cfg.transfer_from],
        "transfer_to": [{"resource_group": t.resource_group} for t in cfg.transfer_to],
    }
    if cfg.HasField("requests"):
        out["requests"] = {"node_num": cfg.requests.node_num}
    if cfg.HasField("limits"):
        out["limits"] = {"node_num": cfg.limits.node_num}
    return out


def config_to_proto(cfg: dict[str, Any]) -> rg_pb2.ResourceGroupConfig:
    return rg_pb2.ResourceGroupConfig(
        requests=rg_pb2.ResourceGroupLimit(node_num=int(cfg["requests"]["node_num"])),
        limits=rg_pb2.ResourceGroupLimit(node_num=int(cfg["limits"]["node_num"])),
        transfer_from=[rg_pb2.ResourceGroupTransfer(resource_group=t["resource_group"]) for t in cfg["transfer_from"]],
        transfer_to=[rg_pb2.ResourceGroupTransfer(resource_group=t["resource_group"]) for t in cfg["transfer_to"]],
    )


class ResourceGroupHandlers:
    ctx: ProxyContext

    @guard("CreateResourceGroup")
    def CreateResourceGroup(self, request: Any, context: Any) -> Any:
        validate_rg_name(request.resource_group)
        cfg = config_to_dict(request.config, request.HasField("config"))
        self.ctx.coord.call("create_resource_group", name=request.resource_group, config=cfg)
        return ok()

    @guard("DropResourceGroup")
    def DropResourceGroup(self, request: Any, context: Any) -> Any:
        self.ctx.coord.call("drop_resource_group", name=request.resource_group)
        return ok()

    @guard("UpdateResourceGroups")
    def UpdateResourceGroups(self, request: Any, context: Any) -> Any:
        configs = {name: config_to_dict(cfg, True) for name, cfg in request.resource_groups.items()}
        self.ctx.coord.call("update_resource_groups", configs=configs)
        return ok()

    @guard("ListResourceGroups")
    def ListResourceGroups(self, request: Any, context: Any) -> Any:
        names = self.ctx.coord.call("list_resource_groups")
        return milvus_pb2.ListResourceGroupsResponse(status=ok(), resource_groups=names)

    @guard("DescribeResourceGroup")
    def DescribeResourceGroup(self, request: Any, context: Any) -> Any:
        d = self.ctx.coord.call("describe_resource_group", name=request.resource_group)
        rg = milvus_pb2.ResourceGroup(
            name=d["name"],
            capacity=d["capacity"],
            num_available_node=d["num_available_node"],
            num_loaded_replica=d["num_loaded_replica"],
            num_outgoing_node=d["num_outgoing_node"],
            num_incoming_node=d["num_incoming_node"],
            config=config_to_proto(d["config"]),
            nodes=[common_pb2.NodeInfo(node_id=n["node_id"], address=n["address"], hostname=n["hostname"])
                   for n in d["nodes"]],
        )
        return milvus_pb2.DescribeResourceGroupResponse(status=ok(), resource_group=rg)

    @guard("TransferNode")
    def TransferNode(self, request: Any, context: Any) -> Any:
        self.ctx.coord.call(
            "transfer_node", source=request.source_resource_group, target=request.target_resource_group,
            num_node=request.num_node,
        )
        return ok()

    @guard("TransferReplica")
    def TransferReplica(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        self.ctx.coord.call(
            "transfer_replica", source=request.source_resource_group, target=request.target_resource_group,
            collection_id=meta.id, num_replica=request.num_replica,
        )
        return ok()
