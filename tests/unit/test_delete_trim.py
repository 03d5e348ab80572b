"""Shard leaders forget deletes every copy has: the buffer's trim, the copies' watermarks, the refusal.

The leader's buffer (services/querynode/delete_log.py) drops deletes at or below a point the
coordinator computes from the segments' delta-log watermarks (services/coord/delta_watermark.py);
a worker refuses a catch-up from a buffer trimmed past its copy's watermark (worker.SealedStore).
The whole loop, through a standalone Quiver: tests/unit/test_replicas_delegator.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from common.errors import Code, MilvusError
from services.coord.delta_watermark import ChannelSync, channel_sync, covered_from, watermark
from services.coord.meta import FLUSHED, SegmentInfo
from services.querynode import delete_log
from services.querynode.delete_log import DeleteLog, select
from services.querynode.worker import SealedStore
from tests.unit.test_growing_deletes import growing_segment

VCH = "dml_0_1v0"


def _all(log: DeleteLog) -> list[tuple[list[int], int]]:
    return [(sorted(k.tolist()), ts) for k, ts in select(log.snapshot(), lambda keys: np.ones(len(keys), bool))]


@pytest.mark.parametrize("pack_every", [2, 4096])  # trimmed packed chunks, and loose messages
def test_trim_forgets_deletes_at_or_below_the_point_and_earlier_snapshots_stay_whole(
    pack_every: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delete_log, "PACK_EVERY", pack_every)
    log = DeleteLog()
    for ts in (30, 10, 50, 20, 40):  # consumed out of timestamp order (several proxies)
        log.append(np.array([ts, ts + 1], dtype=np.int64), ts)
    before = log.snapshot()
    full = _all(log)
    log.trim(25)
    assert _all(log) == [([30, 31], 30), ([40, 41], 40), ([50, 51], 50)]
    assert log.trimmed_to == 25
    assert [(sorted(k.tolist()), ts) for k, ts in select(before, lambda keys: np.ones(len(keys), bool))] == full
    log.trim(10)  # never backwards
    assert log.trimmed_to == 25 and len(_all(log)) == 3
    log.append(np.array([7], dtype=np.int64), 60)
    log.trim(60)
    assert _all(log) == [] and log.nbytes() == 0


def _store_with(deltas_ts: dict[int, int]) -> SealedStore:
    store = SealedStore()
    for sid, wm in deltas_ts.items():
        seg = growing_segment("int")
        seg.segment_id, seg.vchannel, seg.sealed, seg.deltas_ts = sid, VCH, True, wm
        seg.append({"id": np.array([sid], dtype=np.int64), "v": np.zeros((1, 2), np.float32)}, 5, 1)
        store.add(seg, ready=False)
    return store


def test_a_catch_up_from_a_buffer_trimmed_past_a_copy_refuses_that_copy_only() -> None:
    store = _store_with({1: 100, 2: 40})
    with pytest.raises(MilvusError) as err:
        store.apply_deletes(VCH, [(np.array([1, 2], dtype=np.int64), 120)], ready=[1, 2], trimmed_to=80)
    assert err.value.code == Code.SEGMENT_LOAD_FAILED
    assert "segment 2" in err.value.message and "up to ts 40" in err.value.message and "80" in err.value.message
    assert store.is_ready(1) and store.get(2) is None  # released: the coordinator loads it again
    seg = store.get(1)
    assert seg is not None and seg.apply_delete(np.array([1], dtype=np.int64), 130) == 0  # the catch-up hit it


def test_a_copy_that_replaces_another_keeps_the_higher_watermark() -> None:
    store = _store_with({1: 100})
    store.apply_deletes(VCH, [], ready=[1])
    newer = growing_segment("int")
    newer.segment_id, newer.vchannel, newer.sealed, newer.deltas_ts = 1, VCH, True, 60
    newer.append({"id": np.array([1], dtype=np.int64), "v": np.zeros((1, 2), np.float32)}, 5, 1)
    store.add(newer)  # another index version of the same rows
    assert store.get(1) is newer and newer.deltas_ts == 100 and store.is_ready(1)


def _segment(**fields: int) -> SegmentInfo:
    return SegmentInfo(id=1, collection_id=1, partition_id=1, vchannel=VCH, state=FLUSHED, **fields)


def test_watermarks_of_flushed_imported_and_compacted_segments() -> None:
    sync = channel_sync(json.dumps({"id": "AA", "ts": 0, "synced": 500, "seq": 7}))
    assert sync == ChannelSync(500, 7)
    assert channel_sync(None) == ChannelSync(0, 0)
    assert watermark(_segment(), sync) == 500  # written by the datanode: the channel's "synced"
    imported = _segment(delta_floor_ts=300, delta_covered_seq=covered_from(sync))
    assert watermark(imported, sync) == 300  # committed now: complete to its rows' timestamp only
    assert watermark(imported, ChannelSync(600, 8)) == 300  # that save's sync may have begun before the commit
    assert watermark(imported, ChannelSync(700, 9)) == 700  # the next one took it in
    late = _segment(delta_floor_ts=900, delta_covered_seq=covered_from(ChannelSync(700, 9)))
    assert watermark(late, ChannelSync(800, 11)) == 900  # rows newer than anything synced
