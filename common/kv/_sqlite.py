"""The durable half of LocalKV: every write transaction committed to SQLite in WAL mode.

The whole key space is also held in memory by the engine, so SQLite is written on each
transaction and read once, on open. WAL with ``synchronous=NORMAL`` keeps a committed
transaction across a kill -9 of the process (the OS has the WAL pages); ``FULL`` also keeps
it across a power loss, at the cost of an fsync per write.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3

from common.kv._engine import Put

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, "
    "mod_revision INTEGER NOT NULL, lease INTEGER) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


class StoreLocked(RuntimeError):
    """Another KV (in this or another process) has the same database file open."""


class SqlitePersister:
    """Owns the database file (and an exclusive lock beside it) for one LocalKV."""

    def __init__(self, path: str, synchronous: str = "NORMAL") -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"bad synchronous mode {synchronous!r}")
        self.path = path
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        self._lock_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise StoreLocked(f"KV store {path} is already open") from None
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        for statement in _SCHEMA:
            self._conn.execute(statement)

    def load(self) -> tuple[int, list[tuple[str, bytes, int, int | None]]]:
        """The stored revision and every (key, value, mod_revision, lease) row."""
        row = self._conn.execute("SELECT value FROM meta WHERE name = 'revision'").fetchone()
        revision = int(row[0]) if row else 0
        rows = self._conn.execute("SELECT key, value, mod_revision, lease FROM kv").fetchall()
        return revision, [(str(k), bytes(v), int(m), None if ls is None else int(ls)) for k, v, m, ls in rows]

    def commit(self, revision: int, puts: list[Put], deletes: list[str]) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if puts:
                conn.executemany(
                    "INSERT OR REPLACE INTO kv (key, value, mod_revision, lease) VALUES (?, ?, ?, ?)",
                    [(key, value, revision, lease) for key, value, lease in puts],
                )
            if deletes:
                conn.executemany("DELETE FROM kv WHERE key = ?", [(key,) for key in deletes])
            conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('revision', ?)", (revision,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._conn.close()
        os.close(self._lock_fd)
