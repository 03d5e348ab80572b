"""The shard leader's delete log (services/querynode/delete_log.py): packed, it must hand a catch-up
exactly the (key, ts) deletes the per-message list did, for any split into chunks and slices."""

from __future__ import annotations

import numpy as np
import pytest

from services.querynode import delete_log
from services.querynode.delete_log import DeleteLog, select


def _pairs(deletes: list[tuple[np.ndarray, int]]) -> list[tuple[object, int]]:
    return sorted((k.item() if hasattr(k, "item") else k, ts) for keys, ts in deletes for k in keys)


def _naive(messages: list[tuple[np.ndarray, int]], keep: set[object]) -> list[tuple[object, int]]:
    return sorted((k.item(), ts) for pks, ts in messages for k in pks if k.item() in keep)


@pytest.mark.parametrize("pack_every,slice_", [(4096, 65_536), (3, 5), (1, 1)])
def test_a_catch_up_gets_exactly_the_deletes_its_segments_may_hold(
    monkeypatch: pytest.MonkeyPatch, pack_every: int, slice_: int
) -> None:
    monkeypatch.setattr(delete_log, "PACK_EVERY", pack_every)
    monkeypatch.setattr(delete_log, "SLICE", slice_)
    rng = np.random.default_rng(11)
    log = DeleteLog()
    messages = []
    for _ in range(200):
        pks = rng.integers(0, 500, size=int(rng.integers(1, 6)), dtype=np.int64)
        ts = 1000 + int(rng.integers(0, 150))  # out of order and repeated, as with several proxies
        log.append(pks, ts)
        messages.append((pks, ts))
    log.append(np.empty(0, dtype=np.int64), 5000)  # a delete with no key is not kept
    assert len(log) == 200
    keep = set(range(0, 500, 3))
    got = select(log.snapshot(), lambda keys: np.isin(keys, list(keep)))
    assert _pairs(got) == _naive(messages, keep)
    assert [ts for _, ts in got] == sorted({ts for _, ts in got})  # one pair per timestamp, in order
    everything = select(log.snapshot(), lambda keys: np.ones(len(keys), dtype=bool))
    assert _pairs(everything) == _naive(messages, set(range(500)))
    assert select(log.snapshot(), lambda keys: np.zeros(len(keys), dtype=bool)) == []


def test_a_snapshot_does_not_change_with_later_deletes() -> None:
    log = DeleteLog()
    log.append(np.array([1, 2]), 10)
    snap = log.snapshot()
    log.append(np.array([3]), 20)
    assert _pairs(select(snap, lambda k: np.ones(len(k), dtype=bool))) == [(1, 10), (2, 10)]
    assert _pairs(select(log.snapshot(), lambda k: np.ones(len(k), dtype=bool))) == [(1, 10), (2, 10), (3, 20)]


def test_string_keys_of_any_length_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delete_log, "PACK_EVERY", 2)
    log = DeleteLog()
    log.append(np.asarray(["a"]), 10)
    log.append(np.asarray(["a-much-longer-key", "b"]), 20)
    log.append(np.asarray(["c"], dtype=object), 30)
    got = select(log.snapshot(), lambda keys: np.isin(keys, ["a", "a-much-longer-key", "c"]))
    assert [(sorted(str(k) for k in keys), ts) for keys, ts in got] == [
        (["a"], 10), (["a-much-longer-key"], 20), (["c"], 30)
    ]


def test_one_key_deletes_are_packed_to_a_few_bytes_each() -> None:
    log = DeleteLog()
    for i in range(10_000):
        log.append(np.asarray([i], dtype=np.int64), 100 + i)
    assert log.nbytes() <= 10_000 * 17  # the key and its timestamp (a list of tuples: ~216 bytes each)
