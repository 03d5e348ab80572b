"""LocalKV: the metadata store of standalone mode, durable in a file of the data directory.

Behaves like MemoryKV (same engine) and commits every write transaction to SQLite before it
is visible, so a put that returned survives a kill -9. Revisions continue across reopen.
Leases are process-local: keys still attached to a lease when the file is reopened belonged
to a process that is gone, and are deleted on open (one transaction).
"""

from __future__ import annotations

import os

from common.kv._engine import DEFAULT_MAX_TXN_OPS, EngineKV
from common.kv._sqlite import SqlitePersister, StoreLocked
from common.kv._watch import DEFAULT_HISTORY_LIMIT

DEFAULT_FILE_NAME = "kv.sqlite"

__all__ = ["DEFAULT_FILE_NAME", "LocalKV", "StoreLocked"]


class LocalKV(EngineKV):
    """A durable single-process KV.

    ``path`` is the database file, or an existing directory to hold ``kv.sqlite``.
    ``synchronous="FULL"`` adds an fsync per write for durability across power loss.
    Like etcd, a multi_save holds at most ``max_txn_ops`` puts and deletes.
    Raises :class:`StoreLocked` if another LocalKV has the file open.
    """

    def __init__(
        self,
        path: str,
        synchronous: str = "NORMAL",
        history_limit: int = DEFAULT_HISTORY_LIMIT,
        max_txn_ops: int = DEFAULT_MAX_TXN_OPS,
    ) -> None:
        if os.path.isdir(path):
            path = os.path.join(path, DEFAULT_FILE_NAME)
        self.path = path
        persister = SqlitePersister(path, synchronous)
        try:
            revision, entries = persister.load()
            super().__init__(entries, revision, persister, history_limit, max_txn_ops)
        except BaseException:
            persister.close()
            raise
