"""The proxy's replica failover (services/proxy/reader.py ShardReader.fan_out): replicas take
turns, a failed node's shards go to their other replica at once, and a shard with no live
replica fails the read instead of returning the other shards' hits."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import Code, MilvusError
from services.proxy.reader import ShardReader


class FakeNode:
    def __init__(self, name: str, down: bool = False) -> None:
        self.name = name
        self.down = down
        self.calls: list[list[str]] = []

    def call(self, method: str, vchannels: list[str], **kwargs: Any) -> dict[str, Any]:
        self.calls.append(vchannels)
        if self.down:
            raise MilvusError(Code.SERVICE_UNAVAILABLE, f"call {method} to {self.name} failed: connection refused")
        return {"node": self.name, "vchannels": vchannels}


class FakeRouter:
    def __init__(self, nodes: dict[str, FakeNode]) -> None:
        self.nodes = nodes

    def client(self, endpoint: str) -> FakeNode:
        return self.nodes[endpoint]


class FakeCache:
    def __init__(self, leaders: list[dict[str, list[str]]]) -> None:
        self.answers = leaders  # what the coordinator says, one answer per fetch (the last one repeats)
        self.fetches = 0
        self.cached: dict[str, list[str]] | None = None

    def shard_leaders(self, collection_id: int) -> dict[str, list[str]]:
        if self.cached is None:
            self.cached = self.answers[min(self.fetches, len(self.answers) - 1)]
            self.fetches += 1
        return self.cached

    def drop_leaders(self, collection_id: int) -> None:
        self.cached = None


class FakeCtx:
    def __init__(self, nodes: dict[str, FakeNode], leaders: list[dict[str, list[str]]]) -> None:
        self.router = FakeRouter(nodes)
        self.cache = FakeCache(leaders)


class Meta:
    id = 1


def _reader(nodes: dict[str, FakeNode], leaders: list[dict[str, list[str]]]) -> ShardReader:
    return ShardReader(FakeCtx(nodes, leaders))  # type: ignore[arg-type]


def _answered(results: list[dict[str, Any]]) -> list[str]:
    return sorted(v for r in results for v in r["vchannels"])


def test_replicas_take_turns() -> None:
    nodes = {"a": FakeNode("a"), "b": FakeNode("b")}
    reader = _reader(nodes, [{"v0": ["a", "b"], "v1": ["a", "b"]}])
    for _ in range(4):
        assert _answered(reader.fan_out(Meta(), "search")) == ["v0", "v1"]  # type: ignore[arg-type]
    assert len(nodes["a"].calls) == 2 and len(nodes["b"].calls) == 2


def test_failed_replica_is_retried_on_the_other_at_once() -> None:
    nodes = {"a": FakeNode("a", down=True), "b": FakeNode("b")}
    reader = _reader(nodes, [{"v0": ["a", "b"], "v1": ["a", "b"]}, {"v0": ["b"], "v1": ["b"]}])
    for _ in range(3):
        results = reader.fan_out(Meta(), "search")  # type: ignore[arg-type]
        assert _answered(results) == ["v0", "v1"]
        assert all(r["node"] == "b" for r in results)
    assert reader.ctx.cache.fetches == 2  # type: ignore[attr-defined]  # the failure refreshed the leaders


def test_shard_without_live_replica_fails_not_partial() -> None:
    nodes = {"a": FakeNode("a"), "b": FakeNode("b", down=True)}
    reader = _reader(nodes, [{"v0": ["a"], "v1": ["b"]}])
    with pytest.raises(MilvusError) as err:
        reader.fan_out(Meta(), "search")  # type: ignore[arg-type]
    assert err.value.code == Code.CHANNEL_NOT_AVAILABLE
    assert "channel not available[channel=v1]" in err.value.message
    assert "no available shard leaders" in err.value.message
    assert len(nodes["b"].calls) == 2  # once, then once more with fresh leaders


def test_moved_channel_is_found_with_fresh_leaders() -> None:
    nodes = {"a": FakeNode("a", down=True), "c": FakeNode("c")}
    reader = _reader(nodes, [{"v0": ["a"]}, {"v0": ["c"]}])
    results = reader.fan_out(Meta(), "search")  # type: ignore[arg-type]
    assert [r["node"] for r in results] == ["c"]


def test_non_node_errors_are_not_retried() -> None:
    class BadRequest(FakeNode):
        def call(self, method: str, vchannels: list[str], **kwargs: Any) -> dict[str, Any]:
            self.calls.append(vchannels)
            raise MilvusError(Code.PARAMETER_INVALID, "bad filter")

    nodes = {"a": BadRequest("a"), "b": FakeNode("b")}
    reader = _reader(nodes, [{"v0": ["a", "b"]}])
    with pytest.raises(MilvusError, match="bad filter"):
        reader.fan_out(Meta(), "search")  # type: ignore[arg-type]
    assert nodes["b"].calls == []
