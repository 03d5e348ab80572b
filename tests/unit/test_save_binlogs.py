"""What the coordinator takes from a datanode's save_binlogs.

One writer per channel: a datanode that lost its channel is refused and lets go.

A datanode whose session expired (a long pause) registers again and still runs its channel
writers, while the coordinator has given those channels to another node. Two writers would flush
the same rows twice and move the checkpoint back and forth, so the coordinator refuses saves from
a node the channel is not watched by (as Milvus's SaveBinlogPaths does), and that node stops the
writer: the new owner replays from the checkpoint whatever was not durable. And the checkpoint's
"synced" (how far deletes are durable, which GetFlushState reads) never goes back. A flush repeated
because the reply to the first was lost adds nothing (its rows would be there twice).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import numpy as np
import pytest
from pymilvus import CollectionSchema, DataType, FieldSchema
from pymilvus.client.prepare import Prepare

from common import msgs
from common.channels import pchannel_of
from common.config import QuiverConfig
from common.errors import Code, MilvusError
from common.msgstream.memory import MemoryStream
from common.storage.memory import MemoryStorage
from services.coord.meta import FLUSHED, GROWING, SegmentInfo
from services.coord.server import Coordinator
from services.datanode.server import DataNode
from tests.unit import test_compaction

VCH = "dml_0_1v0"


def schema_b64() -> str:
    fields = [FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=2)]
    raw = Prepare.get_schema_from_collection_schema("c", CollectionSchema(fields)).SerializeToString()
    return base64.b64encode(raw).decode()


coord = test_compaction.coord  # the fixture: a coordinator on in-memory backends, no background loop


def test_saves_from_a_node_the_channel_is_not_watched_by_are_refused(coord: Coordinator) -> None:
    cp = {"id": None, "ts": 0, "synced": 5}
    coord.data.channel_watchers[VCH] = "tcp://10.0.0.2:1"
    with pytest.raises(MilvusError) as err:
        coord.data.save_binlogs(VCH, [], cp | {"synced": 7}, watcher="tcp://10.0.0.1:1")
    assert err.value.code == Code.CHANNEL_NOT_FOUND
    assert VCH in err.value.message and "tcp://10.0.0.2:1" in err.value.message
    assert VCH not in coord.ctx.catalog.checkpoints  # nothing recorded
    coord.data.save_binlogs(VCH, [], cp, watcher="tcp://10.0.0.2:1")  # the owner
    assert '"synced": 5' in coord.ctx.catalog.checkpoints[VCH]
    coord.data.save_binlogs("dml_1_1v0", [], cp, watcher="tcp://10.0.0.1:1")  # owner unknown (coordinator restart)
    coord.data.save_binlogs(VCH, [], cp)  # a caller that does not say who it is


class Coord:
    """The coordinator as a datanode calls it: saves refused for every node but ``owner``."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.saved: list[dict[str, Any]] = []

    def call(self, method: str, **kw: Any) -> Any:
        if method == "get_recovery_info":
            return {"checkpoint": None, "segments": []}
        if method == "alloc_ids":
            return 1000
        if method in ("report_segment_rows", "delete_floor"):
            return None
        if method == "flushed_segment_ids":
            return []
        if method == "save_binlogs":
            if kw["watcher"] != self.owner:
                raise MilvusError(Code.CHANNEL_NOT_FOUND, f"channel not found[channel={kw['vchannel']}]")
            self.saved.append(kw)
            return None
        raise AssertionError(method)


@pytest.mark.parametrize("owner", [True, False])
def test_a_datanode_refused_a_save_stops_writing_the_channel(owner: bool) -> None:
    cfg = QuiverConfig(kv={"backend": "memory"}, stream={"backend": "memory", "pchannel_count": 2})
    cfg.data.sync_period_seconds = 0.0  # a sync at every tick
    stream = MemoryStream()
    fake = Coord(owner="tcp://me:1" if owner else "tcp://other:1")
    node = DataNode(cfg, stream, MemoryStorage(), fake)  # type: ignore[arg-type]
    try:
        node.watch_channel(1, VCH, schema_b64(), watcher="tcp://me:1")
        writer = node.channels[VCH]
        cols = {100: np.array([1]), 101: np.ones((1, 2), np.float32)}
        stream.produce(pchannel_of(VCH), msgs.encode(msgs.InsertMsg(VCH, 1, 2, 9, 10, np.arange(1), cols)))
        stream.produce(pchannel_of(VCH), msgs.encode(msgs.TimeTickMsg(20)))
        deadline = time.monotonic() + 5
        while not (fake.saved if owner else not writer._thread.is_alive()):
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.01)
        assert node.list_channels() == ([VCH] if owner else [])
        assert bool(fake.saved) == owner
    finally:
        node.stop()


def test_synced_never_goes_back(coord: Coordinator) -> None:
    """A datanode restarted from the checkpoint replays older ticks; what was durable stays so."""
    coord.data.save_binlogs(VCH, [], {"id": "AAAA", "ts": 0, "synced": 50})
    coord.data.save_binlogs(VCH, [], {"id": "AAAB", "ts": 0, "synced": 20})
    assert json.loads(coord.ctx.catalog.checkpoints[VCH]) == {"id": "AAAB", "ts": 0, "synced": 50, "seq": 2}
    coord.data.save_binlogs(VCH, [], {"id": "AAAC", "ts": 0, "synced": 70})
    assert json.loads(coord.ctx.catalog.checkpoints[VCH]) == {"id": "AAAC", "ts": 0, "synced": 70, "seq": 3}


def test_a_repeated_flush_adds_nothing(coord: Coordinator) -> None:
    cid = 1
    coord.ctx.catalog.save_segments(
        [SegmentInfo(id=77, collection_id=cid, partition_id=2, vchannel=VCH, state=GROWING, max_rows=1000)]
    )

    def flush(tag: str) -> dict[str, Any]:
        return {
            "id": 77,
            "flushed": True,
            "num_rows": 3,
            "flush_ts": 9,
            "binlogs": {100: [f"b-{tag}"]},
            "statslogs": [f"s-{tag}"],
            "deltalogs": [f"d-{tag}"],
            "delta_rows": 1,
            "dml_position": "AAAA",
        }

    coord.data.save_binlogs(VCH, [flush("first")])
    coord.data.save_binlogs(VCH, [flush("again")])  # the datanode never got the first reply
    s = coord.ctx.catalog.segments[77]
    assert s.state == FLUSHED and s.num_rows == 3 and s.deleted_rows == 1
    assert (s.binlogs, s.statslogs, s.deltalogs) == ({100: ["b-first"]}, ["s-first"], ["d-first"])
    coord.data.save_binlogs(VCH, [{"id": 77, "deltalogs": ["d-later"], "delta_rows": 2}])  # deletes after it
    assert s.deltalogs == ["d-first", "d-later"] and s.deleted_rows == 3
