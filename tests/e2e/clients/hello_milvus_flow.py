"""pymilvus's hello_milvus ORM flow, as a standalone script run by any pymilvus release.

tests/e2e/test_client_versions.py runs this file with the interpreter of each client venv
(pymilvus 2.5.x, 2.6.x, and the project's own 3.0.x), so it must import nothing but pymilvus,
numpy and the standard library, and use only ORM calls that all those releases share. It checks
every result itself, prints one line per step, and prints ``OK`` last only if all steps passed;
any failure raises and exits non-zero.

Usage: python hello_milvus_flow.py URI COLLECTION_NAME
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pymilvus
from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections, utility

NUM, DIM = 3000, 8
SEARCH_PARAMS = {"metric_type": "L2", "params": {"nprobe": 10}}


class FlowError(AssertionError):
    """A result the server returned is not what the data requires."""


def check(ok: bool, what: str) -> None:
    if not ok:
        raise FlowError(what)


def step(name: str, fn: Callable[[], Any]) -> Any:
    started = time.monotonic()
    out = fn()
    print(f"step {name}: ok ({time.monotonic() - started:.2f}s)", flush=True)
    return out


def squared_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(((np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)) ** 2).sum())


def check_hits(hits: Any, query: np.ndarray, vectors: np.ndarray, randoms: list[float], what: str) -> None:
    """Every hit's distance is the true squared L2 distance, ascending, and its ``random`` is right."""
    dists = [h.distance for h in hits]
    check(dists == sorted(dists), f"{what}: distances not ascending: {dists}")
    for h in hits:
        i = int(h.id)
        want = squared_l2(query, vectors[i])
        check(abs(h.distance - want) < 1e-4, f"{what}: hit {h.id} distance {h.distance}, true {want}")
        got = h.entity.get("random")
        check(got is not None and abs(got - randoms[i]) < 1e-9, f"{what}: hit {h.id} random {got} != {randoms[i]}")


def main(uri: str, name: str) -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*ORM-style PyMilvus API")  # 3.0's notice, a FutureWarning
    print(f"pymilvus {pymilvus.__version__}, collection {name}", flush=True)
    connections.connect("default", uri=uri)
    check(not utility.has_collection(name), f"{name} exists before the flow")

    fields = [
        FieldSchema(name="pk", dtype=DataType.VARCHAR, is_primary=True, auto_id=False, max_length=100),
        FieldSchema(name="random", dtype=DataType.DOUBLE),
        FieldSchema(name="embeddings", dtype=DataType.FLOAT_VECTOR, dim=DIM),
    ]
    schema = CollectionSchema(fields, "hello_milvus is the simplest demo to introduce the APIs")
    coll = step("create_collection", lambda: Collection(name, schema, consistency_level="Strong"))
    check(utility.has_collection(name), "has_collection is false after create")

    rng = np.random.default_rng(seed=19530)
    pks = [str(i) for i in range(NUM)]
    randoms = rng.random(NUM).tolist()
    vectors = rng.random((NUM, DIM))
    inserted = step("insert", lambda: coll.insert([pks, randoms, vectors]))
    check(inserted.insert_count == NUM, f"insert_count {inserted.insert_count}")
    check(list(inserted.primary_keys) == pks, f"primary_keys start {list(inserted.primary_keys)[:5]}")

    step("flush", coll.flush)
    check(coll.num_entities == NUM, f"num_entities {coll.num_entities} after flush")

    index = {"index_type": "IVF_FLAT", "metric_type": "L2", "params": {"nlist": 128}}
    step("create_index", lambda: coll.create_index("embeddings", index))
    check(coll.index().params.get("index_type") == "IVF_FLAT", f"index params {coll.index().params}")
    step("load", coll.load)
    state = utility.load_state(name)
    check(getattr(state, "name", str(state)) == "Loaded", f"load_state {state}")

    queries = vectors[-2:]
    res = step("search", lambda: coll.search(queries, "embeddings", SEARCH_PARAMS, limit=3, output_fields=["random"]))
    check(len(res) == 2, f"search returned {len(res)} result sets for 2 queries")
    for q, hits in enumerate(res):
        check(len(hits) == 3, f"search {q}: {len(hits)} hits, wanted 3")
        own = NUM - 2 + q
        check(hits[0].id == str(own), f"search {q}: top hit {hits[0].id}, wanted itself ({own})")
        check(abs(hits[0].distance) < 1e-5, f"search {q}: distance to itself {hits[0].distance}")
        check_hits(hits, vectors[own], vectors, randoms, f"search {q}")

    rows = step("query", lambda: coll.query(expr="random > 0.5", output_fields=["random", "embeddings"]))
    expected = {str(i) for i, r in enumerate(randoms) if r > 0.5}
    check({r["pk"] for r in rows} == expected, f"query random > 0.5: {len(rows)} rows, wanted {len(expected)}")
    check(len(rows) == len(expected), f"query returned duplicates: {len(rows)} rows for {len(expected)} pks")
    for row in rows[:50]:
        i = int(row["pk"])
        check(abs(row["random"] - randoms[i]) < 1e-9, f"query: row {i} random {row['random']}")
        check(np.allclose(row["embeddings"], vectors[i], atol=1e-6), f"query: row {i} embeddings differ")

    r1 = step("query_limit", lambda: coll.query(expr="random > 0.5", limit=4, output_fields=["random"]))
    r2 = step("query_offset", lambda: coll.query(expr="random > 0.5", offset=1, limit=3, output_fields=["random"]))
    check(len(r1) == 4 and len(r2) == 3, f"pagination sizes {len(r1)}, {len(r2)}")
    check([r["pk"] for r in r1[1:]] == [r["pk"] for r in r2], f"offset 1 page {r2} != {r1[1:]}")
    check(all(r["random"] > 0.5 and r["pk"] in expected for r in r1 + r2), "pagination returned unmatched rows")

    res = step(
        "filtered_search",
        lambda: coll.search(
            queries, "embeddings", SEARCH_PARAMS, limit=3, expr="random > 0.5", output_fields=["random"]
        ),
    )
    check(len(res) == 2, f"filtered search returned {len(res)} result sets")
    for q, hits in enumerate(res):
        check(len(hits) == 3, f"filtered search {q}: {len(hits)} hits")
        check(all(h.id in expected for h in hits), f"filtered search {q}: ids {[h.id for h in hits]} fail filter")
        check_hits(hits, vectors[NUM - 2 + q], vectors, randoms, f"filtered search {q}")

    expr = f'pk in ["{pks[0]}" , "{pks[1]}"]'
    check(len(coll.query(expr=expr, output_fields=["random", "embeddings"])) == 2, "rows to delete not found")
    deleted = step("delete", lambda: coll.delete(expr))
    check(deleted.delete_count == 2, f"delete_count {deleted.delete_count}")
    gone = coll.query(expr=expr, output_fields=["random", "embeddings"], consistency_level="Strong")
    check(gone == [] or len(gone) == 0, f"deleted rows still returned: {gone}")
    count = coll.query(expr="", output_fields=["count(*)"])[0]["count(*)"]
    check(count == NUM - 2, f"count(*) {count} after deleting 2 of {NUM}")

    step("drop", lambda: utility.drop_collection(name))
    check(not utility.has_collection(name), "has_collection is true after drop")
    connections.disconnect("default")
    print("OK", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} URI COLLECTION_NAME")
    main(sys.argv[1], sys.argv[2])
