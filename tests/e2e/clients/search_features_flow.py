"""Search iterators, query iterators, hybrid search and group_by, as any pymilvus release uses them.

tests/e2e/test_iterators.py runs this file under pymilvus 2.5.x, 2.6.x and the project's own
3.0.x (like the other client flows: only pymilvus, numpy and the standard library). It builds
a collection in which many rows share a vector (equal scores, the hard case for iterators),
then checks against numpy that

- MilvusClient.search_iterator (v2 where the release has it) and the ORM
  Collection.search_iterator (v1: range search + pk exclusion) return every matching entity
  exactly once, in score order, for an L2 and an IP field;
- MilvusClient.query_iterator returns every matching entity exactly once, in pk order;
- hybrid_search with RRFRanker and group_by search give the model's ids.

It prints ``OK`` last only if every step passed.

Usage: python search_features_flow.py URI COLLECTION_NAME
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np
import pymilvus
from pymilvus import AnnSearchRequest, Collection, DataType, MilvusClient, RRFRanker, connections

DIM = 8
ROWS = 600
METRICS = {"v_l2": "L2", "v_ip": "IP"}


def check(ok: bool, what: str) -> None:
    if not ok:
        raise AssertionError(what)


def scores(metric: str, x: np.ndarray, q: np.ndarray) -> np.ndarray:
    x64, q64 = x.astype(np.float64), q.astype(np.float64)
    return ((x64 - q64) ** 2).sum(axis=1) if metric == "L2" else x64 @ q64


def check_iteration(
    kind: str,
    pages: list[list[Any]],
    metric: str,
    x: np.ndarray,
    q: np.ndarray,
    pks: np.ndarray,
    mask: np.ndarray,
    batch: int,
) -> None:
    got = [
        (h["id"] if isinstance(h, dict) else h.id, h["distance"] if isinstance(h, dict) else h.distance)
        for page in pages
        for h in page
    ]
    ids = [pk for pk, _ in got]
    check(len(ids) == len(set(ids)), f"{kind}: {len(ids) - len(set(ids))} entities returned twice")
    wanted = {int(p) for p in pks[mask]}
    check(set(ids) == wanted, f"{kind}: missing {len(wanted - set(ids))}, unexpected {len(set(ids) - wanted)}")
    dist = np.array([d for _, d in got])
    steps = np.diff(dist) if metric == "L2" else -np.diff(dist)
    check(bool((steps >= -1e-5).all()), f"{kind}: hits are not in score order")
    exact = dict(zip(pks.tolist(), scores(metric, x, q).tolist(), strict=True))
    check(all(abs(exact[pk] - d) <= 1e-4 * max(1.0, abs(d)) for pk, d in got), f"{kind}: a score is wrong")
    check(all(len(p) <= 2 * batch for p in pages), f"{kind}: a page far larger than the batch")
    print(f"step {kind}: ok ({len(pages)} pages, {len(ids)} entities)", flush=True)


def drain(it: Any) -> list[list[Any]]:
    pages = []
    while True:
        page = it.next()
        if len(page) == 0:
            it.close()
            return pages
        pages.append(list(page))


def main(uri: str, name: str) -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    print(f"pymilvus {pymilvus.__version__}, collection {name}", flush=True)
    client = MilvusClient(uri=uri)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    for field in METRICS:
        schema.add_field(field, DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("cat", DataType.INT64)
    index = client.prepare_index_params()
    for field, metric in METRICS.items():
        index.add_index(field, index_type="FLAT", metric_type=metric)
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    rng = np.random.default_rng(5)
    base = {f: rng.standard_normal((ROWS // 3, DIM)).astype(np.float32) for f in METRICS}
    vectors = {f: np.concatenate([b, b, b]) for f, b in base.items()}  # every vector three times: ties
    pks = np.arange(ROWS, dtype=np.int64) * 3 + 7
    cat = np.arange(ROWS) % 10
    rows = [
        {"id": int(pks[i]), **{f: vectors[f][i].tolist() for f in METRICS}, "cat": int(cat[i])} for i in range(ROWS)
    ]
    client.insert(name, rows[:400])
    client.flush(name)
    client.insert(name, rows[400:])
    client.load_collection(name)
    mask = cat != 3
    for field, metric in METRICS.items():
        q = rng.standard_normal(DIM).astype(np.float32)
        it = client.search_iterator(
            name,
            [q.tolist()],
            batch_size=37,
            filter="cat != 3",
            anns_field=field,
            search_params={"metric_type": metric},
            output_fields=["cat"],
        )
        kind = f"MilvusClient.search_iterator {type(it).__name__} {metric}"
        check_iteration(kind, drain(it), metric, vectors[field], q, pks, mask, 37)
    connections.connect("orm", uri=uri)
    coll = Collection(name, using="orm")
    for field, metric in METRICS.items():
        q = rng.standard_normal(DIM).astype(np.float32)
        it = coll.search_iterator(
            [q.tolist()], field, {"metric_type": metric, "params": {}}, batch_size=50, expr="cat != 3"
        )
        check_iteration(f"Collection.search_iterator v1 {metric}", drain(it), metric, vectors[field], q, pks, mask, 50)
    connections.disconnect("orm")

    it = client.query_iterator(name, batch_size=45, filter="cat in [1, 2, 5]", output_fields=["cat"])
    got = [r["id"] for page in drain(it) for r in page]
    want = [int(p) for p in pks[np.isin(cat, [1, 2, 5])]]
    check(got == sorted(want), f"query_iterator: {len(got)} rows, {len(set(got))} distinct, want {len(want)}")
    print(f"step query_iterator: ok ({len(got)} rows)", flush=True)

    q1, q2 = rng.standard_normal((2, DIM)).astype(np.float32)
    reqs = [
        AnnSearchRequest([q1.tolist()], "v_l2", {"metric_type": "L2"}, limit=20),
        AnnSearchRequest([q2.tolist()], "v_ip", {"metric_type": "IP"}, limit=20),
    ]
    res = client.hybrid_search(name, reqs, RRFRanker(40), limit=10)
    order_l2 = sorted(range(ROWS), key=lambda i: (scores("L2", vectors["v_l2"], q1)[i], pks[i]))[:20]
    order_ip = sorted(range(ROWS), key=lambda i: (-scores("IP", vectors["v_ip"], q2)[i], pks[i]))[:20]
    fused: dict[int, np.float32] = {}
    for order in (order_l2, order_ip):
        for rank, i in enumerate(order, start=1):
            fused[int(pks[i])] = np.float32(
                fused.get(int(pks[i]), np.float32(0)) + np.float32(1) / np.float32(40 + rank)
            )
    want = [pk for pk, _ in sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:10]]
    check([h["id"] for h in res[0]] == want, "hybrid_search RRF ids differ from the model")
    print("step hybrid_search: ok", flush=True)

    q = rng.standard_normal(DIM).astype(np.float32)
    res = client.search(
        name, [q.tolist()], anns_field="v_l2", limit=4, group_by_field="cat", group_size=2, output_fields=["cat"]
    )
    s = scores("L2", vectors["v_l2"], q)
    groups: dict[int, list[int]] = {}
    for i in sorted(range(ROWS), key=lambda i: (s[i], pks[i])):
        g = int(cat[i])
        if g not in groups and len(groups) >= 4:
            continue
        if len(groups.setdefault(g, [])) < 2:
            groups[g].append(i)
    want_cats = [int(cat[i]) for members in groups.values() for i in members]
    check([h["entity"]["cat"] for h in res[0]] == want_cats, "group_by search groups differ from the model")
    print("step group_by: ok", flush=True)
    client.drop_collection(name)
    client.close()
    print("OK", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
