"""The search hot path's shortcuts give the same answers as the plain versions.

Merging, picking and encoding hits are vectorised, search plans and search params are memoised,
and the RPC codec reuses packers: each is checked here against a straightforward reference or
against a change that must invalidate it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from common.codec import pack, unpack
from common.errors import MilvusError
from common.index import build_index, validate_search_params
from common.reduce import Hits, merge_hits
from common.schema import Field, Schema
from services.proxy.meta_cache import CollectionMeta
from services.proxy.outputs import plan_outputs
from services.proxy.search_results import Picked, encode, from_hits
from services.proxy.search_spec import parse_ann

INT64, VARCHAR, FLOAT_VECTOR = 5, 21, 101


# --- merge_hits against a per-query reference -------------------------------------------------
def _reference_merge(parts: list[Hits], k: int, ascending: bool, offset: int) -> Hits:
    """One query at a time: filled hits by (score, pk), first copy of each pk, then offset/k."""
    nq = parts[0].nq
    obj = parts[0].pks.dtype == object
    out = Hits(
        np.full((nq, k), np.inf if ascending else -np.inf, dtype=np.float32),
        np.full((nq, k), "", dtype=object) if obj else np.zeros((nq, k), dtype=parts[0].pks.dtype),
        np.zeros((nq, k), dtype=bool),
    )
    names = sorted(set().union(*(p.fields.keys() for p in parts)))
    cols: dict[str, list[Any]] = {n: [] for n in names}
    for q in range(nq):
        cands = []
        for pi, p in enumerate(parts):
            for j in range(p.k):
                if p.filled[q, j]:
                    s = float(p.scores[q, j])
                    cands.append((s if ascending else -s, p.pks[q, j], pi, q * p.k + j))
        cands.sort(key=lambda c: (c[0], c[1]))
        seen: set[Any] = set()
        kept = []
        for c in cands:
            if len(parts) > 1 and c[1] in seen:
                continue
            seen.add(c[1])
            kept.append(c)
        kept = kept[offset : offset + k]
        for j, (_, pk, pi, flat) in enumerate(kept):
            out.scores[q, j] = parts[pi].scores.reshape(-1)[flat]
            out.pks[q, j] = pk
            out.filled[q, j] = True
        for n in names:
            fill = [parts[pi].fields[n][flat] for _, _, pi, flat in kept]
            fill += [parts[0].fields[n][0]] * (k - len(kept))  # unfilled slots take the first row
            cols[n].extend(fill)
    out.fields = {n: np.array(v) for n, v in cols.items()}
    return out


def _random_parts(rng: np.random.Generator, varchar: bool) -> tuple[list[Hits], bool]:
    nq = int(rng.integers(1, 5))
    ascending = bool(rng.integers(0, 2))
    worst = np.inf if ascending else -np.inf
    parts = []
    for _ in range(int(rng.integers(1, 4))):
        k = int(rng.integers(1, 7))
        scores = rng.integers(0, 4, size=(nq, k)).astype(np.float32)  # many ties
        pks = rng.integers(0, 6, size=(nq, k))  # the same pk in several parts
        filled = rng.random((nq, k)) < 0.8
        scores[~filled] = worst
        pk_col = pks.astype(str).astype(object) if varchar else pks
        parts.append(Hits(scores, pk_col, filled, {"f": rng.integers(0, 100, size=nq * k)}))
    return parts, ascending


@pytest.mark.parametrize("varchar", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_merge_hits_matches_the_per_query_reference(seed: int, varchar: bool) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(60):
        parts, ascending = _random_parts(rng, varchar)
        k = int(rng.integers(1, 8))
        offset = int(rng.integers(0, 3))
        got = merge_hits(parts, k, ascending, offset)
        want = _reference_merge(parts, k, ascending, offset)
        assert got.filled.tolist() == want.filled.tolist()
        assert got.pks.tolist() == want.pks.tolist()
        assert got.scores.tolist() == want.scores.tolist()
        assert got.fields["f"].tolist() == want.fields["f"].tolist()


@pytest.mark.parametrize("ascending", [True, False])
def test_merge_hits_single_sorted_part_comes_back_unchanged_but_copied(ascending: bool) -> None:
    rng = np.random.default_rng(5)
    scores = np.sort(rng.random((3, 4)).astype(np.float32), axis=1)
    scores = scores if ascending else scores[:, ::-1].copy()
    part = Hits(scores, rng.integers(0, 100, (3, 4)), np.ones((3, 4), bool), {"f": np.arange(12)})
    out = merge_hits([part], 4, ascending)
    want = _reference_merge([part], 4, ascending, 0)
    assert out.scores.tolist() == want.scores.tolist() and out.pks.tolist() == want.pks.tolist()
    assert out.fields["f"].tolist() == want.fields["f"].tolist()
    out.pks[0, 0] = -1  # the merge's arrays are its own
    assert part.pks[0, 0] != -1
    tied = part.scores.copy()
    tied[0, 1] = tied[0, 0]  # a tie: equal scores go by pk, as the general path orders them
    part_tied = Hits(tied, np.array([[9, 1, 5, 7]] + part.pks[1:].tolist()), part.filled, part.fields)
    assert merge_hits([part_tied], 4, ascending).pks[0, :2].tolist() == [1, 9]


def test_merge_hits_single_part_keeps_a_filled_hit_with_the_worst_score() -> None:
    scores = np.array([[np.inf, 1.0, np.inf]], dtype=np.float32)
    hits = Hits(scores, np.array([[3, 9, 1]]), np.array([[True, True, False]]))
    out = merge_hits([hits], 3, ascending=True)
    assert out.pks.tolist() == [[9, 3, 0]]
    assert out.filled.tolist() == [[True, True, False]]


# --- from_hits / encode -----------------------------------------------------------------------
@pytest.mark.parametrize("offset,limit", [(0, 3), (0, 2), (1, 2), (2, 5)])
def test_from_hits_picks_filled_hits_per_query(offset: int, limit: int) -> None:
    filled = np.array([[True, True, True], [True, False, True], [False, False, False]])
    hits = Hits(
        np.arange(9, dtype=np.float32).reshape(3, 3),
        np.arange(100, 109).reshape(3, 3),
        filled,
        {"f": np.arange(9) * 10},
    )
    picked = from_hits(hits, offset, limit, ["f"])
    want = [np.flatnonzero(filled[q])[offset : offset + limit] + 3 * q for q in range(3)]
    flat = np.concatenate(want)
    assert picked.topks == [len(w) for w in want]
    assert picked.pks.tolist() == (100 + flat).tolist()
    assert picked.scores.tolist() == flat.astype(np.float32).tolist()
    assert picked.cols["f"].tolist() == (flat * 10).tolist()


def _schema(pk_type: int) -> Schema:
    return Schema(
        "c",
        "",
        (
            Field(100, "id", pk_type, is_primary=True, max_length=64),
            Field(101, "v", FLOAT_VECTOR, dim=4),
            Field(102, "x", INT64),
        ),
    )


@pytest.mark.parametrize("pk_type", [INT64, VARCHAR])
@pytest.mark.parametrize("n", [0, 1, 300])
def test_encode_writes_what_field_by_field_encoding_would(pk_type: int, n: int) -> None:
    schema = _schema(pk_type)
    plan = plan_outputs(schema, ["x"], include_pk=False)
    rng = np.random.default_rng(n)
    pks = rng.integers(-(2**40), 2**40, n) if pk_type == INT64 else np.array([f"k{i}" for i in range(n)], dtype=object)
    scores = rng.standard_normal(n).astype(np.float32)
    if n:
        scores[0] = -np.inf
    cols = {"x": rng.integers(0, 9, n)}
    reply = milvus_pb2.SearchResults(collection_name="c")
    out = encode(schema, plan, 1, 10, Picked(pks, scores, [n], cols), into=reply.results)
    assert out is reply.results
    assert reply.HasField("results")
    assert (reply.results.num_queries, reply.results.top_k, reply.results.primary_field_name) == (1, 10, "id")
    assert list(reply.results.topks) == [n]
    assert np.array(reply.results.scores, dtype=np.float32).tolist() == scores.tolist()
    ids = reply.results.ids
    assert (list(ids.int_id.data) if pk_type == INT64 else list(ids.str_id.data)) == list(pks)
    assert ids.WhichOneof("id_field") == ("int_id" if pk_type == INT64 else "str_id")
    assert [f.field_name for f in reply.results.fields_data] == ["x"]
    assert list(reply.results.fields_data[0].scalars.long_data.data) == cols["x"].tolist()
    assert encode(schema, plan, 1, 10, Picked(pks, scores, [n], cols)) == reply.results


# --- memoised search params and search plans --------------------------------------------------
def test_validated_search_params_are_fresh_copies_and_errors_repeat() -> None:
    first = validate_search_params("IVF_FLAT", {"nprobe": 16}, k=10)
    first["nprobe"] = 999
    assert validate_search_params("IVF_FLAT", {"nprobe": 16}, k=10) == {"nprobe": 16}
    assert validate_search_params("IVF_FLAT", {"nprobe": 1}, k=10) == {"nprobe": 1}
    for _ in range(2):  # True hashes like 1, but it is no valid nprobe
        with pytest.raises(MilvusError, match="nprobe out of range"):
            validate_search_params("IVF_FLAT", {"nprobe": True}, k=10)
    for _ in range(2):
        with pytest.raises(MilvusError, match="ef\\(5\\) should be larger than k\\(10\\)"):
            validate_search_params("HNSW", {"ef": 5}, k=10)
    assert validate_search_params("HNSW", {"ef": 5}, k=3) == {"ef": 5}


def _request(params: dict[str, str], nq: int = 1) -> milvus_pb2.SearchRequest:
    group = common_pb2.PlaceholderGroup()
    ph = group.placeholders.add(tag="$0", type=FLOAT_VECTOR)
    for row in np.arange(nq * 4, dtype=np.float32).reshape(nq, 4):
        ph.values.append(row.tobytes())
    req = milvus_pb2.SearchRequest(collection_name="c", placeholder_group=group.SerializeToString())
    for key, value in params.items():
        req.search_params.add(key=key, value=value)
    return req


def _meta() -> CollectionMeta:
    return CollectionMeta(7, "c", "default", _schema(INT64), ["v0"], ["p0"], 1, 0, 0, {}, {"_default": 1}, [])


def _index(index_type: str, metric: str) -> list[dict[str, Any]]:
    return [{"field_name": "v", "params": {"index_type": index_type, "metric_type": metric}}]


def test_search_plan_follows_index_and_meta_changes() -> None:
    holder = {"indexes": _index("IVF_FLAT", "L2")}
    ctx: Any = SimpleNamespace(cache=SimpleNamespace(indexes=lambda cid: holder["indexes"]))
    meta = _meta()
    params = {"topk": "5", "params": '{"nprobe": 4}'}
    ann = parse_ann(ctx, meta, _request(params))
    assert (ann.metric, ann.index_type, ann.topk, ann.search_params) == ("L2", "IVF_FLAT", 5, {"nprobe": 4})
    ann.search_params["nprobe"] = 64  # a caller's change stays its own
    again = parse_ann(ctx, meta, _request(params, nq=3))
    assert again.search_params == {"nprobe": 4}
    assert again.queries.shape == (3, 4)
    holder["indexes"] = _index("HNSW", "IP")  # the index was dropped and created again
    hnsw = parse_ann(ctx, meta, _request({"topk": "5", "params": '{"ef": 32}'}))
    assert (hnsw.metric, hnsw.index_type, hnsw.search_params) == ("IP", "HNSW", {"ef": 32})
    with pytest.raises(MilvusError, match="metric type not match"):
        parse_ann(ctx, meta, _request({"topk": "5", "metric_type": "L2"}))
    holder["indexes"] = []
    for _ in range(2):
        with pytest.raises(MilvusError, match="index not found"):
            parse_ann(ctx, meta, _request(params))


def test_search_plan_errors_repeat_and_offset_is_per_mode() -> None:
    ctx: Any = SimpleNamespace(cache=SimpleNamespace(indexes=lambda cid: _index("FLAT", "L2")))
    meta = _meta()
    for _ in range(2):
        with pytest.raises(MilvusError, match="topk \\[0\\] is invalid"):
            parse_ann(ctx, meta, _request({"topk": "0"}))
    params = {"topk": "5", "offset": "3"}
    assert parse_ann(ctx, meta, _request(params)).offset == 3
    assert parse_ann(ctx, meta, _request(params), advanced=True).offset == 0  # hybrid sub-requests ignore it
    assert parse_ann(ctx, meta, _request(params)).offset == 3


# --- codec ------------------------------------------------------------------------------------
def test_codec_round_trips_nested_object_arrays_and_many_shapes() -> None:
    inner = np.empty(2, dtype=object)
    inner[0] = np.array(["a", "b"], dtype=object)
    inner[1] = np.array([1, 2, 3])
    obj = {
        "nested": inner,
        "dicts": np.array([{"k": np.arange(3)}, None], dtype=object),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "big_endian": np.arange(5, dtype=">i4"),
        "scalar_shape": np.float64(2.5),
    }
    for _ in range(2):  # the second pass hits the memoised headers
        back = unpack(pack(obj))
        assert back["nested"][0].tolist() == ["a", "b"] and back["nested"][1].tolist() == [1, 2, 3]
        assert back["dicts"][0]["k"].tolist() == [0, 1, 2] and back["dicts"][1] is None
        assert back["empty"].shape == (0, 4) and back["empty"].dtype == np.float32
        assert back["big_endian"].tolist() == [0, 1, 2, 3, 4] and back["big_endian"].dtype == np.dtype(">i4")
        assert back["scalar_shape"] == 2.5


def test_codec_recovers_after_an_unencodable_nested_value() -> None:
    with pytest.raises(TypeError, match="cannot encode"):
        pack({"x": np.array([object()], dtype=object)})
    back = unpack(pack({"y": np.array(["p", {"q": 1}], dtype=object), "z": np.ones((2, 2))}))
    assert back["y"].tolist() == ["p", {"q": 1}]
    assert back["z"].tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_packed_search_result_survives_the_wire() -> None:
    schema = _schema(INT64)
    plan = plan_outputs(schema, [], include_pk=False)
    scores = np.array([0.5, -1.25, 3.0], dtype=np.float32)
    data = encode(schema, plan, 1, 3, Picked(np.array([1, 2, 3]), scores, [3])).SerializeToString()
    parsed = schema_pb2.SearchResultData.FromString(data)
    assert list(parsed.scores) == [0.5, -1.25, 3.0]
    assert list(parsed.ids.int_id.data) == [1, 2, 3]


@pytest.mark.parametrize("dtype", ["<f4", ">f8", "|b1", "<i8", "<u2", "<M8[ns]"])
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (1, 200), (70000,), (2, 1, 3, 1)])
def test_codec_numeric_arrays_keep_dtype_and_shape(dtype: str, shape: tuple[int, ...]) -> None:
    arr = np.arange(int(np.prod(shape)), dtype=np.int64).astype(dtype).reshape(shape)
    back = unpack(pack({"a": arr}))["a"]
    assert back.dtype == arr.dtype and back.shape == arr.shape
    assert back.tobytes() == arr.tobytes()


# --- shared faiss search parameters -----------------------------------------------------------
@pytest.mark.parametrize(
    "index_type,build,knob,small,large",
    [("IVF_FLAT", {"nlist": 16}, "nprobe", 1, 16), ("HNSW", {"M": 8, "efConstruction": 40}, "ef", 10, 400)],
)
def test_faiss_search_params_follow_each_request(
    index_type: str, build: dict[str, int], knob: str, small: int, large: int
) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2000, 16)).astype(np.float32)
    q = rng.standard_normal((20, 16)).astype(np.float32)
    index = build_index(index_type, "L2", build, x, FLOAT_VECTOR)
    exact = np.argsort(((q[:, None, :] - x[None, :, :]) ** 2).sum(-1), axis=1)[:, :10]
    narrow = index.search(q, 10, {knob: small})
    wide = index.search(q, 10, {knob: large})
    assert index.search(q, 10, {knob: small})[1].tolist() == narrow[1].tolist()
    assert (wide[1] == exact).mean() > (narrow[1] == exact).mean()
    valid = np.zeros(2000, dtype=bool)
    valid[::2] = True  # a filtered search gets its own parameters, with the selector
    filtered = index.search(q, 10, {knob: large}, valid=valid)[1]
    assert (filtered % 2 == 0).all()
    assert index.search(q, 10, {knob: large})[1].tolist() == wide[1].tolist()


# --- querynode segments: deletes hide rows only for reads after them ---------------------------
def test_segment_search_applies_deletes_by_timestamp() -> None:
    from services.querynode.columns import ColumnStore
    from services.querynode.segment import SearchSpec, Segment

    rows = np.arange(12, dtype=np.float32).reshape(6, 2)
    seg = Segment(1, 2, "ch", _schema(INT64), False, ColumnStore())
    seg.append({"id": np.arange(6), "v": np.zeros((6, 4), np.float32), "x": np.arange(6)}, 10, 6)
    spec = SearchSpec("v", FLOAT_VECTOR, "L2", rows[:1, :1].repeat(4, axis=1), 6, {}, None, [])

    def visible(ts: int) -> list[int]:
        hits, _ = seg.search(spec, ts)
        return sorted(hits.pks[hits.filled].tolist())

    assert visible(100) == [0, 1, 2, 3, 4, 5]
    assert seg.apply_delete(np.array([2, 4]), 50) == 2
    assert visible(100) == [0, 1, 3, 5]
    assert visible(40) == [0, 1, 2, 3, 4, 5]  # a read before the delete still sees the rows
    big = Segment(3, 2, "ch", _schema(INT64), False, ColumnStore())
    big.append({"id": np.arange(5000), "v": np.zeros((5000, 4), np.float32), "x": np.arange(5000)}, 10, 5000)
    big.apply_delete(np.array([4999]), 60)
    hits, _ = big.search(SearchSpec("v", FLOAT_VECTOR, "L2", np.zeros((1, 4), np.float32), 5000, {}, None, []), 100)
    assert 4999 not in hits.pks[hits.filled].tolist() and int(hits.filled.sum()) == 4999
