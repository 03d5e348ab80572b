"""The MilvusClient quick-start flow, as a standalone script run by any pymilvus release.

tests/e2e/test_client_versions.py runs this file with the interpreter of each client venv
(pymilvus 2.5.x, 2.6.x, and the project's own 3.0.x), so it must import nothing but pymilvus,
numpy and the standard library, and use only MilvusClient calls that all those releases share.
It checks every result itself, prints one line per step, and prints ``OK`` last only if all
steps passed; any failure raises and exits non-zero.

Usage: python quickstart_flow.py URI COLLECTION_NAME
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pymilvus
from pymilvus import MilvusClient

DIM = 64
ROWS = 30
SUBJECTS = ["history", "biology", "math"]


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


def cosine_ranking(vectors: np.ndarray, query: np.ndarray, candidates: list[int]) -> list[int]:
    sims = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    return sorted(candidates, key=lambda i: -sims[i])


def main(uri: str, name: str) -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*ORM-style PyMilvus API")  # 3.0's notice, a FutureWarning
    print(f"pymilvus {pymilvus.__version__}, collection {name}", flush=True)
    client = MilvusClient(uri=uri)
    check(not client.has_collection(name), f"{name} exists before the flow")

    step("create_collection", lambda: client.create_collection(name, dimension=DIM, consistency_level="Strong"))
    check(client.has_collection(name), "has_collection is false after create")
    check(name in client.list_collections(), f"{name} not in list_collections")
    desc = client.describe_collection(name)
    check(desc.get("enable_dynamic_field") is True, f"dynamic field not enabled: {desc}")
    check([f["name"] for f in desc["fields"]] == ["id", "vector"], f"fields {desc['fields']}")
    state = client.get_load_state(name)["state"]
    check(getattr(state, "name", str(state)) == "Loaded", f"load state {state}")

    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    data = [
        {"id": i, "vector": vectors[i].tolist(), "text": f"doc {i}", "subject": SUBJECTS[i % 3]} for i in range(ROWS)
    ]
    res = step("insert", lambda: client.insert(collection_name=name, data=data))
    check(res["insert_count"] == ROWS, f"insert_count {res['insert_count']}")

    res = step(
        "search",
        lambda: client.search(name, data=[vectors[5].tolist()], limit=2, output_fields=["text", "subject"]),
    )
    check(len(res) == 1 and len(res[0]) == 2, f"search shape {[len(r) for r in res]}")
    top = res[0][0]
    check(top["id"] == 5, f"top hit {top['id']}, wanted itself (5)")
    check(abs(top["distance"] - 1.0) < 1e-4, f"COSINE similarity with itself {top['distance']}")
    check(top["entity"]["text"] == "doc 5" and top["entity"]["subject"] == "math", f"top entity {top['entity']}")
    check(res[0][1]["id"] == cosine_ranking(vectors, vectors[5], list(range(ROWS)))[1], f"second hit {res[0][1]}")

    res = step(
        "filtered_search",
        lambda: client.search(
            name,
            data=[vectors[5].tolist()],
            filter="subject == 'biology'",
            limit=5,
            output_fields=["text", "subject"],
        ),
    )
    check(len(res[0]) == 5, f"filtered search returned {len(res[0])} hits")
    check(all(h["entity"]["subject"] == "biology" for h in res[0]), "filtered search hit fails the filter")
    biology = [i for i in range(ROWS) if i % 3 == 1]
    best = cosine_ranking(vectors, vectors[5], biology)[:5]
    check([h["id"] for h in res[0]] == best, f"filtered search ids {[h['id'] for h in res[0]]}, wanted {best}")

    rows = step(
        "query_filter",
        lambda: client.query(name, filter="subject == 'history'", output_fields=["text", "subject"]),
    )
    check(sorted(r["id"] for r in rows) == list(range(0, ROWS, 3)), f"query ids {sorted(r['id'] for r in rows)}")
    check(all(r["text"] == f"doc {r['id']}" and r["subject"] == "history" for r in rows), "query row fields")

    got = step("query_ids", lambda: client.query(name, ids=[0, 2], output_fields=["vector", "text", "subject"]))
    got = sorted(got, key=lambda r: r["id"])
    check([r["id"] for r in got] == [0, 2], f"query by ids returned {[r['id'] for r in got]}")
    check(np.allclose(got[1]["vector"], vectors[2], atol=1e-6), "query by ids: vector differs")
    check(got[1]["text"] == "doc 2" and got[1]["subject"] == "math", f"query by ids: row {got[1]}")
    fetched = step("get", lambda: client.get(name, ids=[4]))
    check(len(fetched) == 1 and fetched[0]["subject"] == "biology", f"get(4) returned {fetched}")

    res = step("delete_ids", lambda: client.delete(name, ids=[0, 2]))
    check(res["delete_count"] == 2, f"delete_count {res['delete_count']}")
    gone = client.query(name, ids=[0, 2])
    check(len(gone) == 0, f"deleted ids still returned: {gone}")
    step("delete_filter", lambda: client.delete(name, filter="subject == 'biology'"))
    left = client.query(name, filter="id >= 0", output_fields=["subject"])
    want = [i for i in range(ROWS) if i % 3 != 1 and i not in (0, 2)]
    check(sorted(r["id"] for r in left) == want, f"rows left {sorted(r['id'] for r in left)}, wanted {want}")
    count = client.query(name, filter="", output_fields=["count(*)"])
    check(count[0]["count(*)"] == len(want), f"count(*) {count[0]['count(*)']}, wanted {len(want)}")

    step("drop", lambda: client.drop_collection(name))
    check(not client.has_collection(name), "has_collection is true after drop")
    client.close()
    print("OK", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} URI COLLECTION_NAME")
    main(sys.argv[1], sys.argv[2])
