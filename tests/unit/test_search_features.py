"""Proxy search features without servers: hybrid ranking, grouping, iterator pages, tie order."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from pymilvus.grpc_gen import common_pb2, schema_pb2

from common.errors import MilvusError
from common.reduce import Hits, merge_hits
from common.schema import Field, Schema
from services.proxy.grouping import GroupSpec, grouped_hits, parse_group, select_groups
from services.proxy.hybrid import Rank, parse_rank, rank_from_function, rerank
from services.proxy.iterators import IteratorV2, band_params, iterator_page, parse_iterator_v2
from services.proxy.search_results import Picked
from services.proxy.search_spec import AnnSearch

INT64, VARCHAR, FLOAT, BOOL = 5, 21, 10, 1


def _picked(pks: list[int], scores: list[float], topks: list[int] | None = None, groups=None) -> Picked:
    return Picked(
        np.array(pks, dtype=np.int64),
        np.array(scores, dtype=np.float32),
        topks or [len(pks)],
        {"f": np.array(pks) * 10},
        None if groups is None else np.array(groups, dtype=object),
    )


# --- hybrid ranking --------------------------------------------------------------------------
def test_parse_rank_defaults_and_values() -> None:
    rank = parse_rank({"limit": "5"}, 2)
    assert (rank.strategy, rank.k, rank.offset, rank.round_decimal) == ("rrf", 60.0, 0, -1)
    rank = parse_rank(
        {
            "strategy": "weighted",
            "params": '{"weights": [0.1, 1], "norm_score": true}',
            "limit": "3",
            "offset": "2",
            "round_decimal": "2",
        },
        2,
    )
    assert rank.weights == [0.1, 1.0] and rank.norm_score and rank.offset == 2 and rank.round_decimal == 2


@pytest.mark.parametrize(
    ("params", "n", "message"),
    [
        ({"limit": "5", "strategy": "rrf", "params": '{"k": 16384}'}, 1, "k should be in range (0, 16384)"),
        ({"limit": "5", "strategy": "rrf", "params": '{"k": true}'}, 1, "the type of rank param k should be float"),
        ({"limit": "5", "strategy": "rrf", "params": "[1]"}, 1, "parse rerank params failed"),
        ({"limit": "5", "strategy": "rrf", "params": "{"}, 1, "parse rerank params failed"),
        ({"limit": "5", "strategy": "weighted", "params": '{"weights": "x"}'}, 1, "weight should be []float"),
        (
            {"limit": "5", "strategy": "weighted", "params": '{"weights": [1], "norm_score": 1}'},
            1,
            "norm_score should been bool type",
        ),
        (
            {"limit": "5", "strategy": "weighted", "params": '{"weights": [-0.1]}'},
            1,
            "weight should be in range [0, 1]",
        ),
        ({"limit": "x"}, 1, "limit [x] is invalid"),
        ({"limit": "16000", "offset": "1000"}, 1, "but got 17000"),
        ({"limit": "5", "rank_group_scorer": "median"}, 1, "input group scorer type: median is not supported!"),
        ({"limit": "5"}, 1025, "maximum of ann search requests is 1024"),
    ],
)
def test_parse_rank_errors(params: dict[str, str], n: int, message: str) -> None:
    with pytest.raises(MilvusError) as err:
        parse_rank(params, n)
    assert err.value.code == 1100 and message in err.value.message


def test_rrf_by_hand() -> None:
    a = _picked([1, 2, 3], [0.1, 0.2, 0.3])
    b = _picked([3, 4], [0.9, 0.8])
    out = rerank(Rank("rrf", limit=3, offset=0, round_decimal=-1, k=1), [a, b], ["L2", "IP"], 1, ["f"])
    # 3: 1/(1+3) + 1/(1+1) = 0.75; 1: 0.5; 4 and 2: 1/3 each, ties by smaller pk
    assert out.pks.tolist() == [3, 1, 2]
    assert out.scores.tolist() == pytest.approx([0.75, 0.5, 1 / 3])
    assert out.cols["f"].tolist() == [30, 10, 20]


def test_rrf_ranks_restart_per_query() -> None:
    a = _picked([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4], topks=[2, 2])
    out = rerank(Rank("rrf", limit=2, offset=0, round_decimal=-1, k=10), [a], ["L2"], 2, [])
    assert out.topks == [2, 2]
    assert out.scores.tolist() == pytest.approx([1 / 11, 1 / 12, 1 / 11, 1 / 12])


def test_weighted_normalisers_by_hand() -> None:
    l2 = _picked([1, 2], [0.0, 1.0])
    ip = _picked([2, 3], [1.0, -1.0])
    cos = _picked([3], [0.5])
    rank = Rank("weighted", limit=5, offset=0, round_decimal=-1, weights=[1.0, 0.5, 1.0], norm_score=True)
    out = rerank(rank, [l2, ip, cos], ["L2", "IP", "COSINE"], 1, [])
    expected = {
        1: 1.0,  # 1 - 2 atan(0) / pi
        2: (1 - 2 * math.atan(1) / math.pi) + 0.5 * (0.5 + math.atan(1) / math.pi),
        3: 0.5 * (0.5 + math.atan(-1) / math.pi) + (1 + 0.5) / 2,
    }
    got = dict(zip(out.pks.tolist(), out.scores.tolist(), strict=True))
    assert got == pytest.approx(expected)
    assert out.pks.tolist() == sorted(expected, key=lambda p: -expected[p])


def test_weighted_without_norm_l2_only_is_ascending_and_rounds_half_up() -> None:
    a = _picked([1, 2], [0.125, 3.0])
    b = _picked([2, 3], [0.5, 0.25])
    rank = Rank("weighted", limit=3, offset=1, round_decimal=1, weights=[1.0, 1.0], norm_score=False)
    out = rerank(rank, [a, b], ["L2", "L2"], 1, [])
    # sums: 1 -> 0.125, 3 -> 0.25, 2 -> 3.5; ascending, offset 1
    assert out.pks.tolist() == [3, 2]
    assert out.scores.tolist() == pytest.approx([0.3, 3.5])


def test_rerank_grouping_buckets_and_ranks_groups() -> None:
    a = _picked([1, 2, 3, 4], [0.9, 0.8, 0.7, 0.6], groups=["x", "x", "x", "y"])
    spec = GroupSpec(Field(9, "g", VARCHAR), size=2, strict=False)
    rank = Rank("rrf", limit=2, offset=0, round_decimal=-1, k=1)
    out = rerank(rank, [a], ["IP"], 1, [], spec)
    assert out.pks.tolist() == [1, 2, 4]
    assert out.group_values is not None and out.group_values.tolist() == ["x", "x", "y"]


# --- grouping --------------------------------------------------------------------------------
def test_select_groups() -> None:
    values = np.array([5, 5, 5, 6, 7, 6, 8, 7])
    chosen, full = select_groups(values, len(values), groups=2, size=2)
    assert chosen == [[0, 1], [3, 5]] and full
    chosen, full = select_groups(values, 5, groups=3, size=2)
    assert chosen == [[0, 1], [3], [4]] and not full


def _schema() -> Schema:
    return Schema(
        "c",
        "",
        (
            Field(1, "id", INT64, is_primary=True),
            Field(2, "g", INT64),
            Field(3, "price", FLOAT),
            Field(4, "n", INT64, nullable=True),
            Field(5, "b", BOOL),
        ),
    )


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"group_by_field": "price"}, 1100, "unsupported data type Float for group by operator"),
        ({"group_by_field": "n"}, 1100, "groupBy field(n) not support nullable == true"),
        ({"group_by_field": "x"}, 1700, "groupBy field not found in schema"),
        ({"group_by_field": "g", "group_size": "a"}, 1100, "failed to parse input group size:a"),
        ({"group_by_field": "g", "group_size": "-2"}, 1100, "input group size:-2 is negative"),
        ({"group_by_field": "g", "iterator": "True"}, 1100, "Not allowed to do groupBy when doing iteration"),
    ],
)
def test_parse_group_errors(params: dict[str, str], code: int, message: str) -> None:
    with pytest.raises(MilvusError) as err:
        parse_group(_schema(), params)
    assert err.value.code == code and message in err.value.message


def test_parse_group_values() -> None:
    assert parse_group(_schema(), {}) is None
    spec = parse_group(_schema(), {"group_by_field": "b", "group_size": "3", "strict_group_size": "true"})
    assert spec is not None and spec.size == 3 and spec.strict and spec.field.name == "b"


def _ranked_search(scores: list[float], groups: list[int], calls: list[int], ascending: bool = True) -> Any:
    """A fake fan-out over one query: the best k of a fixed list (scores sorted best first)."""

    def search(k: int, fetch: list[str]) -> Hits:
        calls.append(k)
        n = min(k, len(scores))
        worst = np.inf if ascending else -np.inf
        s = np.full((1, k), worst, dtype=np.float32)
        s[0, :n] = scores[:n]
        pks = np.zeros((1, k), dtype=np.int64)
        pks[0, :n] = np.arange(n) + 100
        filled = np.zeros((1, k), dtype=bool)
        filled[0, :n] = True
        g = np.zeros(k, dtype=np.int64)
        g[:n] = groups[:n]
        return Hits(s, pks, filled, {"g": g, "id": pks.reshape(-1).copy()})

    return search


def test_grouped_hits_widens_until_groups_are_full() -> None:
    n = 1000
    groups = [0] * 900 + [1, 2] * 50  # group 0 floods the head; groups 1 and 2 only come late
    calls: list[int] = []
    spec = GroupSpec(Field(2, "g", INT64), size=2, strict=True)
    out = grouped_hits(_ranked_search(list(np.linspace(0, 1, n)), groups, calls), 1, spec, 0, 3, ["id"], INT64)
    assert out.pks.tolist() == [100, 101, 1000, 1002, 1001, 1003]
    assert out.group_values is not None and out.group_values.tolist() == [0, 0, 1, 1, 2, 2]
    assert calls[0] < 900 <= calls[-1]


def test_grouped_hits_stops_when_data_runs_out() -> None:
    calls: list[int] = []
    spec = GroupSpec(Field(2, "g", INT64), size=3, strict=False)
    out = grouped_hits(_ranked_search([0.1, 0.2, 0.3], [1, 1, 2], calls), 1, spec, 1, 5, ["id"], INT64)
    assert out.pks.tolist() == [102] and out.topks == [1] and len(calls) == 1


# --- iterator v2 -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"search_iter_v2": "true"}, "both iterator and search_iter_v2 must be set"),
        ({"search_iter_v2": "true", "iterator": "true"}, "batch size is required"),
        ({"search_iter_v2": "true", "iterator": "true", "search_iter_batch_size": "x"}, "batch size is invalid"),
        ({"search_iter_v2": "true", "iterator": "true", "search_iter_batch_size": "20000"}, "batch size is invalid"),
        (
            {"search_iter_v2": "true", "iterator": "true", "search_iter_batch_size": "5", "search_iter_id": "x"},
            "invalid token format",
        ),
        (
            {
                "search_iter_v2": "true",
                "iterator": "true",
                "search_iter_batch_size": "5",
                "search_iter_last_bound": "nan",
            },
            "failed to parse input last bound",
        ),
    ],
)
def test_parse_iterator_errors(params: dict[str, str], message: str) -> None:
    with pytest.raises(MilvusError, match=message.replace("(", "\\(")):
        parse_iterator_v2(params, False, 0)


def _ann(metric: str) -> AnnSearch:
    return AnnSearch(
        "v", Field(3, "v", 101, dim=2), metric, "FLAT", 10, 0, -1, {}, np.zeros((1, 2), np.float32), "", None
    )


def _band_search(scores: list[float], ascending: bool) -> Any:
    """Fake range search: rows at or beyond ``range_filter``, best first, ties by pk."""
    order = sorted(range(len(scores)), key=lambda i: ((scores[i] if ascending else -scores[i]), i))

    def search(k: int, params: dict[str, Any] | None) -> Hits:
        rows = order
        if params is not None:
            rf = params["range_filter"]
            rows = [i for i in order if (scores[i] >= rf if ascending else scores[i] <= rf)]
        rows = rows[:k]
        worst = np.inf if ascending else -np.inf
        s = np.full((1, k), worst, dtype=np.float32)
        s[0, : len(rows)] = [scores[i] for i in rows]
        pks = np.zeros((1, k), dtype=np.int64)
        pks[0, : len(rows)] = rows
        filled = np.zeros((1, k), dtype=bool)
        filled[0, : len(rows)] = True
        return Hits(s, pks, filled, {})

    return search


@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_iterator_pages_keep_ties_together(metric: str) -> None:
    rng = np.random.default_rng(0)
    scores = np.repeat(rng.random(40).astype(np.float32), 3).tolist()  # every score three times
    ann = _ann(metric)
    search = _band_search(scores, ann.ascending)
    seen: list[int] = []
    bound = None
    pages = 0
    while True:
        page, last = iterator_page(search, ann, IteratorV2("t", 7, bound), [], INT64)
        if not len(page.pks):
            assert last == bound
            break
        pages += 1
        # never longer than the batch: a run of three the batch would split is left to the next page
        assert 5 <= len(page.pks) <= 7 or len(seen) + len(page.pks) == len(scores)
        seen += page.pks.tolist()
        bound = last
    assert sorted(seen) == list(range(len(scores))) and len(set(seen)) == len(seen)
    got = [scores[i] for i in seen]
    assert got == sorted(got, reverse=not ann.ascending)
    assert pages < len(scores)


@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_a_run_of_equal_scores_longer_than_the_batch_comes_whole(metric: str) -> None:
    ann = _ann(metric)
    worse = [0.3, 0.4] if ann.ascending else [0.1, 0.05]
    scores = [0.2] * 10 + worse  # ten equal best scores, then two worse ones
    search = _band_search(scores, ann.ascending)
    page, last = iterator_page(search, ann, IteratorV2("t", 4, None), [], INT64)
    assert sorted(page.pks.tolist()) == list(range(10)) and last == pytest.approx(0.2)
    page, _ = iterator_page(search, ann, IteratorV2("t", 4, last), [], INT64)
    assert page.pks.tolist() == [10, 11]


def test_first_empty_page_bound_is_the_best_end() -> None:
    page, last = iterator_page(_band_search([], True), _ann("L2"), IteratorV2("t", 3, None), [], INT64)
    assert not len(page.pks) and last < -1e38
    page, last = iterator_page(_band_search([], False), _ann("IP"), IteratorV2("t", 3, None), [], INT64)
    assert last > 1e38


# --- ties in the top-k merge -----------------------------------------------------------------
@pytest.mark.parametrize("pks", [[9, 3, 5, 1], ["d", "b", "c", "a"]])
def test_merge_hits_orders_equal_scores_by_pk(pks: list[Any]) -> None:
    dtype = np.int64 if isinstance(pks[0], int) else object
    a = Hits(np.array([[0.5, 0.5]], np.float32), np.array([pks[:2]], dtype=dtype), np.ones((1, 2), bool))
    b = Hits(np.array([[0.5, 0.1]], np.float32), np.array([pks[2:]], dtype=dtype), np.ones((1, 2), bool))
    out = merge_hits([a, b], 4, ascending=False)
    assert out.pks[0].tolist() == [sorted(pks[:3])[0], sorted(pks[:3])[1], sorted(pks[:3])[2], pks[3]]


def test_band_params_respect_the_users_range() -> None:
    ann = _ann("L2")
    assert band_params(ann, 0.5) == {"radius": pytest.approx(3.4028235e38), "range_filter": 0.5}
    ann = dataclasses.replace(ann, search_params={"radius": 2.0, "range_filter": 1.0})
    assert band_params(ann, 0.5) == {"radius": 2.0, "range_filter": 1.0}
    assert band_params(ann, 1.5) == {"radius": 2.0, "range_filter": 1.5}
    assert band_params(ann, 2.0) is None
    ip = dataclasses.replace(_ann("IP"), search_params={"radius": 0.1})
    assert band_params(ip, 0.7) == {"radius": 0.1, "range_filter": 0.7}
    assert band_params(ip, 0.05) is None


def _function(**params: str) -> Any:
    fs = schema_pb2.FunctionScore(functions=[schema_pb2.FunctionSchema(name="r", type=schema_pb2.FunctionType.Rerank)])
    fs.functions[0].params.extend(common_pb2.KeyValuePair(key=k, value=v) for k, v in params.items())
    return fs


def test_rank_from_function_score() -> None:
    rank = rank_from_function(_function(reranker="rrf", k="15"), parse_rank({"limit": "3"}, 2), 2)
    assert (rank.strategy, rank.k) == ("rrf", 15.0)
    rank = rank_from_function(
        _function(reranker="weighted", weights="[0.3, 0.7]", norm_score="True"), parse_rank({"limit": "3"}, 2), 2
    )
    assert (rank.strategy, rank.weights, rank.norm_score, rank.limit) == ("weighted", [0.3, 0.7], True, 3)


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"reranker": "rrf", "k": "x"}, 1100, "param k:x is not a number"),
        ({"reranker": "weighted", "weights": "[0.5]", "norm_score": "maybe"}, 1100, "norm_score params must be"),
        ({"reranker": "weighted", "weights": "[0.5]"}, 1100, "the length of weights param mismatch"),
        ({"reranker": "boost"}, 1100, "unsupported rerank function: [boost]"),
        ({"reranker": "decay"}, 10, "the decay rerank function is not supported by Quiver yet"),
    ],
)
def test_rank_from_function_errors(params: dict[str, str], code: int, message: str) -> None:
    with pytest.raises(MilvusError) as err:
        rank_from_function(_function(**params), parse_rank({"limit": "3"}, 2), 2)
    assert err.value.code == code and message in err.value.message


def test_rrf_with_varchar_pks() -> None:
    a = Picked(np.array(["b", "a"], dtype=object), np.array([0.1, 0.2], np.float32), [2], {})
    b = Picked(np.array(["a", "c"], dtype=object), np.array([0.3, 0.4], np.float32), [2], {})
    out = rerank(Rank("rrf", limit=3, offset=0, round_decimal=-1, k=1), [a, b], ["L2", "L2"], 1, [])
    # a: 1/3 + 1/2; b: 1/2; c: 1/3
    assert out.pks.tolist() == ["a", "b", "c"]
