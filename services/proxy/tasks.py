"""The proxy's task queues, after Milvus: DDL runs one at a time in arrival order; DML and
DQL run concurrently, each bounded, so a flood of searches cannot starve inserts or DDL.

A handler validates and resolves (Milvus's pre-execute), talks to the cluster (execute) and
shapes the reply (post-execute) inside the callable it hands a queue; queues only decide when
and where that callable runs.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class SerialQueue:
    """One worker thread: tasks run strictly in the order they were enqueued."""

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def run(self, fn: Callable[[], T]) -> T:
        # Run in the caller's context so its request id (common/logs.py) follows the task.
        fut: Future[T] = self._pool.submit(contextvars.copy_context().run, fn)
        return fut.result()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class BoundedQueue:
    """Runs tasks in the caller's thread, at most ``limit`` at once."""

    def __init__(self, limit: int) -> None:
        self._sem = threading.BoundedSemaphore(limit)

    def run(self, fn: Callable[[], T]) -> T:
        with self._sem:
            return fn()

    def close(self) -> None:
        pass


class Scheduler:
    def __init__(self, dml_limit: int = 64, dql_limit: int = 64) -> None:
        self.ddl = SerialQueue("proxy-ddl")
        self.dml = BoundedQueue(dml_limit)
        self.dql = BoundedQueue(dql_limit)

    def run_ddl(self, fn: Callable[[], T]) -> T:
        return self.ddl.run(fn)

    def close(self) -> None:
        self.ddl.close()
