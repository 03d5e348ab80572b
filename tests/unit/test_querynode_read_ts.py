"""Reads at a fixed timestamp (MVCC), as iterator pages use them: the shard leader reads its growing
data at ``read_ts`` and asks its workers for the sealed segments at the same timestamp, so rows
inserted after it stay invisible and deletes after it are not applied."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from pymilvus import DataType

from common import msgs
from common.channels import pchannel_of
from common.msgstream.memory import MemoryStream
from common.rpc import Router, rpc
from common.schema import Field, Schema
from common.storage.memory import MemoryStorage
from services.querynode.channel import ChannelServer
from services.querynode.delegator import ShardDelegator
from services.querynode.worker import SealedStore

VCH = "dml_0_7v0"


class RecordingWorker:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @rpc
    def query_segments(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"count": 0} if kwargs.get("count_only") else {"rows": {}}

    @rpc
    def apply_deletes(
        self, vchannel: str, deletes: list[list[Any]], ready: list[int] | None = None, trimmed_to: int = 0
    ) -> int:
        return 0


@pytest.fixture
def env() -> Iterator[tuple[ShardDelegator, MemoryStream, RecordingWorker]]:
    schema = Schema("c", "", (Field(field_id=100, name="id", dtype=DataType.INT64, is_primary=True),
                              Field(field_id=101, name="v", dtype=DataType.FLOAT_VECTOR, dim=2)))
    stream, router, worker = MemoryStream(), Router(), RecordingWorker()
    router.register_local("w1", worker)
    ch = ChannelServer(7, VCH, schema, stream, None, [], [1])
    pool = ThreadPoolExecutor(4)
    yield ShardDelegator(ch, SealedStore(), router, pool, MemoryStorage()), stream, worker
    ch.stop()
    pool.shutdown()


def produce(stream: MemoryStream, msg: msgs.Message) -> None:
    stream.produce(pchannel_of(VCH), msgs.encode(msg))


def insert(stream: MemoryStream, pks: list[int], ts: int) -> None:
    ids = np.array(pks, dtype=np.int64)
    produce(stream, msgs.InsertMsg(VCH, 7, 1, 50, ts, ids, {100: ids, 101: np.zeros((len(pks), 2), np.float32)}))


def no_filter(expr: str, params: dict[str, Any] | None) -> None:
    return None


def ids_at(d: ShardDelegator, read_ts: int) -> list[int]:
    reply = d.query(40, 5.0, [], no_filter, {"expr": "", "output_fields": ["id"], "limit": None}, read_ts)
    return sorted(int(p) for p in reply["rows"].get("id", []))


def test_reads_at_a_timestamp_see_that_snapshot_on_the_leader_and_the_workers(env: Any) -> None:
    d, stream, worker = env
    insert(stream, [1, 2], 10)
    produce(stream, msgs.DeleteMsg(VCH, 7, -1, 20, np.array([1], dtype=np.int64)))
    insert(stream, [3], 30)
    produce(stream, msgs.TimeTickMsg(40))
    d.channel.wait_tsafe(40, 5.0)
    d.sync("local://leader", {100: "local://w1"})
    assert ids_at(d, 0) == [2, 3]  # no read timestamp: tsafe, everything so far
    assert ids_at(d, 15) == [1, 2]  # before the delete and the second insert
    assert ids_at(d, 25) == [2]  # after the delete, before the insert
    assert [c["query_ts"] for c in worker.calls] == [40, 15, 25]  # the workers read at the same time
    counted = d.query(40, 5.0, [], no_filter, {"expr": "", "output_fields": [], "count_only": True}, 15)
    assert counted == {"count": 2}
