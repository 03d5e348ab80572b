"""The proxy role: the Milvus gRPC API (19530) and HTTP (9091: health, metrics, REST v2).

Stateless: it validates requests against cached collection metadata, stamps DML with TSO
timestamps, hashes rows to shards and produces them on the DML channels, and fans reads out
to the querynodes serving each shard, merging their results.
"""
