"""Names of DML channels, in Milvus's scheme.

Physical channels are topics ``{prefix}-rootcoord-dml_{i}``; a collection's shard is a virtual
channel ``{pchannel}_{collectionID}v{shard}`` carried on one physical channel.
"""

from __future__ import annotations


def pchannel_name(prefix: str, index: int) -> str:
    return f"{prefix}-rootcoord-dml_{index}"


def all_pchannels(prefix: str, count: int) -> list[str]:
    return [pchannel_name(prefix, i) for i in range(count)]


def vchannel_name(pchannel: str, collection_id: int, shard: int) -> str:
    return f"{pchannel}_{collection_id}v{shard}"


def pchannel_of(vchannel: str) -> str:
    """The physical channel a vchannel rides on."""
    return vchannel.rsplit("_", 1)[0]
