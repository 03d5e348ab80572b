"""Delta logs, PK stats logs (bloom filter) and object storage key helpers."""

from __future__ import annotations

import numpy as np
import pytest

from common.binlog import (
    LogKey,
    PkStats,
    SegmentPkStats,
    decode_delta_log,
    delta_log_key,
    encode_delta_log,
    index_file_prefix,
    insert_log_key,
    parse_log_key,
    segment_prefix,
    stats_log_key,
)
from common.binlog.bloom import hash_strings, splitmix64
from common.errors import MilvusError

RNG = np.random.default_rng(9)


def test_delta_log_int_pks() -> None:
    pks = RNG.integers(-(2**62), 2**62, 1000)
    ts = np.arange(1000, dtype=np.uint64) + np.uint64(450000000000 << 18)
    got_pks, got_ts = decode_delta_log(encode_delta_log(pks, ts))
    np.testing.assert_array_equal(got_pks, pks)
    np.testing.assert_array_equal(got_ts, ts.astype(np.int64))
    assert got_pks.dtype == np.int64 and got_ts.dtype == np.int64


def test_delta_log_string_pks_and_empty() -> None:
    pks = np.array(["a", "é", "", "long" * 50], dtype=object)
    got_pks, got_ts = decode_delta_log(encode_delta_log(pks, np.array([1, 2, 3, 4])))
    assert list(got_pks) == list(pks) and list(got_ts) == [1, 2, 3, 4]
    got_pks, got_ts = decode_delta_log(encode_delta_log(np.empty(0, np.int64), np.empty(0, np.int64)))
    assert len(got_pks) == 0 and len(got_ts) == 0
    with pytest.raises(MilvusError):
        encode_delta_log(np.arange(3), np.arange(2))


def test_pk_stats_int64() -> None:
    pks = RNG.integers(0, 2**60, 20_000)
    stats = PkStats.from_bytes(PkStats.build(pks).to_bytes())
    assert stats.min_pk == int(pks.min()) and stats.max_pk == int(pks.max()) and stats.count == 20_000
    assert stats.may_contain(pks).all()  # no false negatives
    others = RNG.integers(0, 2**60, 200_000)
    others = others[~np.isin(others, pks)]
    fp = stats.may_contain(others).mean()
    assert 0.002 < fp < 0.02
    outside = np.array([-5, 2**61, int(pks.max()) + 1])
    assert not stats.may_contain(outside).any()  # min/max prune before the filter


def test_pk_stats_sequential_ids_false_positive_rate() -> None:
    stats = PkStats.build(np.arange(50_000))
    assert stats.may_contain(np.arange(50_000)).all()
    probe = RNG.integers(0, 50_000, 1000)
    assert stats.may_contain(probe).all()
    # keys inside [min, max] but absent: only the bloom filter can say no
    sparse = PkStats.build(np.arange(0, 1_000_000, 10))
    absent = np.arange(1, 1_000_000, 10)
    assert sparse.may_contain(absent).mean() < 0.02


def test_pk_stats_strings() -> None:
    pks = np.array([f"user-{i}" for i in range(10_000)], dtype=object)
    stats = PkStats.from_bytes(PkStats.build(pks).to_bytes())
    assert stats.min_pk == "user-0" and stats.max_pk == "user-9999"
    assert stats.may_contain(pks).all()
    others = np.array([f"user-{i}x" for i in range(20_000)], dtype=object)
    assert stats.may_contain(others).mean() < 0.02
    assert not stats.may_contain(np.array(["a", "zzz"], dtype=object)).any()
    assert not stats.may_contain(np.array([1, 2])).any()  # int keys never match string PKs


def test_pk_stats_empty() -> None:
    stats = PkStats.from_bytes(PkStats.build(np.empty(0, np.int64)).to_bytes())
    assert stats.count == 0 and not stats.may_contain(np.arange(5)).any()
    with pytest.raises(MilvusError):
        PkStats.from_bytes(b"garbage")


def test_segment_stats_read_every_log_as_one() -> None:
    store = {"a": PkStats.build(np.arange(0, 100)).to_bytes(), "b": PkStats.build(np.arange(500, 600)).to_bytes()}
    seg = SegmentPkStats.read(store.__getitem__, ["a", "b"], 200)
    assert not seg.unknown
    probe = np.array([5, 99, 550, 599])
    assert seg.may_contain(probe).all()  # keys of either log: no false negatives
    assert not seg.may_contain(np.array([-1, 300, 601, 10**12])).any()  # outside both ranges
    assert seg.may_contain(np.array([5, 300, 550])).tolist() == [True, False, True]
    assert not seg.may_contain(np.array(["5"], dtype=object)).any()  # a string key never matches int PKs
    assert seg.may_contain(np.empty(0, np.int64)).shape == (0,)


def test_segment_stats_that_cannot_be_read_hold_every_key() -> None:
    store = {"good": PkStats.build(np.arange(10)).to_bytes(), "bad": b"garbage"}
    probe = np.array([3, 10**9])
    for keys in (["good", "missing"], ["good", "bad"]):
        seg = SegmentPkStats.read(store.__getitem__, keys, 10)
        assert seg.unknown and seg.may_contain(probe).all()  # routing sends too much, never too little
    no_logs = SegmentPkStats.read(store.__getitem__, [], 10)  # rows written without a stats log
    assert no_logs.unknown and no_logs.may_contain(probe).all()
    empty = SegmentPkStats.read(store.__getitem__, [], 0)  # no rows: no key can be there
    assert not empty.unknown and not empty.may_contain(probe).any()


def test_segment_stats_string_keys() -> None:
    pks = np.array([f"k{i:04d}" for i in range(1000)], dtype=object)
    seg = SegmentPkStats([PkStats.build(pks)])
    assert seg.may_contain(pks[::7]).all()
    assert not seg.may_contain(np.array(["a", "zz"], dtype=object)).any()
    assert not seg.may_contain(np.array([1, 2])).any()


def test_hashes_are_deterministic_and_spread() -> None:
    a = splitmix64(np.arange(10, dtype=np.uint64))
    np.testing.assert_array_equal(a, splitmix64(np.arange(10, dtype=np.uint64)))
    assert len(set(a.tolist())) == 10
    strs = np.array(["", "a", "b", "ab", "ba", "", "é"], dtype=object)
    h = hash_strings(strs)
    assert h[0] == h[5] and len(set(h.tolist())) == 6
    np.testing.assert_array_equal(hash_strings(strs[1:3]), h[1:3])  # independent of neighbours


def test_keys_layout() -> None:
    assert insert_log_key(1, 2, 3, 100, 7) == "insert_log/1/2/3/100/7"
    assert delta_log_key(1, 2, 3, 8) == "delta_log/1/2/3/8"
    assert stats_log_key(1, 2, 3, 100, 9) == "stats_log/1/2/3/100/9"
    assert index_file_prefix(1, 2, 3, 44, 2) == "index_files/1/2/3/44/2/"
    assert segment_prefix("insert_log", 1) == "insert_log/1/"
    assert segment_prefix("delta_log", 1, 2, 3) == "delta_log/1/2/3/"
    assert parse_log_key(insert_log_key(1, 2, 3, 100, 7)) == LogKey("insert_log", 1, 2, 3, 100, 7)
    assert parse_log_key(delta_log_key(1, 2, 3, 8)) == LogKey("delta_log", 1, 2, 3, None, 8)
    assert parse_log_key(index_file_prefix(1, 2, 3, 44, 2) + "HNSW").log_id == 44
    with pytest.raises(ValueError):
        parse_log_key("insert_log/1/2/x/4/5")
