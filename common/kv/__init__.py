"""The metadata KV store: etcd in a cluster, a local store in standalone, a dict in unit tests."""

from common.kv.base import KV, KeyValue, LeaseNotFound, WatchEvent, WatchHandle

__all__ = ["KV", "KeyValue", "LeaseNotFound", "WatchEvent", "WatchHandle"]
