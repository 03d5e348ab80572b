"""A whole Quiver cluster on this machine, for development, tests and benchmarks.

``python -m quiver.devcluster up`` (``make cluster``) starts real etcd, SeaweedFS (S3) and
pulsar-lite servers on free loopback ports, then coord, querynodes, a datanode, an indexnode
and a proxy as separate ``quiver run <role>`` processes; ``down`` (``make cluster-down``) stops
all of it. Integration tests drive the same :class:`LocalCluster` and kill or restart single
processes.
"""

from quiver.devcluster.cluster import ClusterLayout, LocalCluster

__all__ = ["ClusterLayout", "LocalCluster"]
