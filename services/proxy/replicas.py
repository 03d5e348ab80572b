"""GetReplicas: how a loaded collection is placed on querynodes, as Milvus reports it.

Clients (pymilvus ``Collection.get_replicas``, birdwatch-style tools) use it to see the replica
groups, the querynodes of each, and which node leads each shard. The placement itself is the
query coordinator's; this handler only asks for it and shapes the reply.
"""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import milvus_pb2

from services.proxy.context import ProxyContext, db_of
from services.proxy.status import guard, ok


class ReplicaHandlers:
    ctx: ProxyContext

    @guard("GetReplicas")
    def GetReplicas(self, request: Any, context: Any) -> Any:
        if request.collection_name:
            collection_id = self.ctx.cache.get(db_of(request, context), request.collection_name).id
        else:
            collection_id = int(request.collectionID)
        placed: list[dict[str, Any]] = self.ctx.coord.call("get_replicas", collection_id=collection_id)
        replicas = []
        for r in placed:
            shards = [
                milvus_pb2.ShardReplica(
                    leaderID=s["leader_id"],
                    leader_addr=s["leader_addr"],
                    dm_channel_name=s["dm_channel_name"],
                    node_ids=s["node_ids"] if request.with_shard_nodes else [],
                )
                for s in r["shard_replicas"]
            ]
            replicas.append(
                milvus_pb2.ReplicaInfo(
                    replicaID=r["id"],
                    collectionID=r["collection_id"],
                    partition_ids=r["partition_ids"],
                    shard_replicas=shards,
                    node_ids=r["node_ids"],
                    resource_group_name=r.get("resource_group") or "__default_resource_group",
                )
            )
        return milvus_pb2.GetReplicasResponse(status=ok(), replicas=replicas)
