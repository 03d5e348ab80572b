"""Hybrid timestamps, the coordinator's TSO and id allocator, and config precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from common import tso
from common.config import load_config
from common.kv.memory import MemoryKV
from services.coord.tso import IdAllocator, TimestampOracle


def test_hybrid_timestamp_layout() -> None:
    ts = tso.compose(1_700_000_000_000, 5)
    assert tso.physical_ms(ts) == 1_700_000_000_000 and tso.logical(ts) == 5
    assert tso.from_seconds_ago(ts, 5) == tso.compose(1_700_000_000_000 - 5000)


def test_tso_is_monotonic_and_survives_restart() -> None:
    kv = MemoryKV()
    oracle = TimestampOracle(kv, "k/ts")
    seen = [oracle.alloc() for _ in range(1000)]
    assert seen == sorted(set(seen))
    restarted = TimestampOracle(kv, "k/ts")
    assert restarted.alloc() > seen[-1]


def test_id_allocator_never_repeats_after_restart() -> None:
    kv = MemoryKV()
    ids = IdAllocator(kv, "k/id")
    a = ids.alloc(10)
    b = ids.alloc(5)
    assert b == a + 10
    again = IdAllocator(kv, "k/id")
    assert again.alloc() >= b + 5


def test_config_precedence_flag_env_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_file = tmp_path / "q.yaml"
    cfg_file.write_text("grpc_port: 1111\nhttp_port: 2222\ndata_dir: /from/yaml\nstream:\n  backend: memory\n")
    monkeypatch.setenv("QUIVER_HTTP_PORT", "3333")
    cfg = load_config(str(cfg_file), data_dir="/from/flag")
    assert cfg.grpc_port == 1111  # yaml
    assert cfg.http_port == 3333  # env beats yaml
    assert cfg.data_dir == "/from/flag"  # flag beats all
    assert cfg.stream.backend == "memory"
    monkeypatch.setenv("QUIVER_STREAM__BACKEND", "local")
    assert load_config(str(cfg_file)).stream.backend == "local"
    with pytest.raises(FileNotFoundError):
        load_config(str(tmp_path / "missing.yaml"))


def test_a_loaded_yaml_file_does_not_leak_into_later_configs(tmp_path: Path) -> None:
    from common.config import QuiverConfig

    cfg_file = tmp_path / "q.yaml"
    cfg_file.write_text("stream:\n  topic_prefix: leaked\n")
    assert load_config(str(cfg_file)).stream.topic_prefix == "leaked"
    assert QuiverConfig().stream.topic_prefix == "by-dev"
