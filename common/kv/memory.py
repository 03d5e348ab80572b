"""MemoryKV: the metadata store for unit tests, where nothing has to outlive the process."""

from __future__ import annotations

from common.kv._engine import DEFAULT_MAX_TXN_OPS, EngineKV
from common.kv._watch import DEFAULT_HISTORY_LIMIT


class MemoryKV(EngineKV):
    """A thread-safe in-memory KV with revisions, leases and watches, like a one-node etcd."""

    def __init__(self, history_limit: int = DEFAULT_HISTORY_LIMIT, max_txn_ops: int = DEFAULT_MAX_TXN_OPS) -> None:
        super().__init__(history_limit=history_limit, max_txn_ops=max_txn_ops)
