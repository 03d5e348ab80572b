"""Data through its whole lifecycle against an exact model: inserts, deletes, upserts, flush,
index builds, release/reload, compaction with its handoff, and garbage collection.

After every step — and repeatedly while segments are handed off (index builds, compaction)
— count(*), queries and exact (FLAT) searches must equal a numpy model of the same
operations: no row may be lost or appear twice. The server runs with small segments and a
zero GC tolerance so all of that happens within seconds; a GC test reads the metadata store
and the storage directory and checks that GC removed exactly the unreferenced files. Also
here: automatic compaction (its own server) and scalar indexes through pymilvus.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient

from tests.e2e.server import StandaloneServer

DIM = 16
COLL = "lifecycle"
ENV = {
    "QUIVER_DATA__SEGMENT_MAX_ROWS": "30000",
    "QUIVER_DATA__COMPACTION_ENABLED": "false",  # this module triggers compaction by hand
    "QUIVER_DATA__GC_DROP_TOLERANCE_SECONDS": "0",
    "QUIVER_DATA__GC_INTERVAL_SECONDS": "0.5",
}


class Model:
    """The rows a correct server holds: primary key -> vector (the latest upsert wins)."""

    def __init__(self) -> None:
        self.rows: dict[int, np.ndarray] = {}
        self.inserted = 0  # every row ever written, deleted or replaced ones included

    def insert(self, ids: np.ndarray, vecs: np.ndarray) -> list[dict[str, object]]:
        self.inserted += len(ids)
        for i, v in zip(ids.tolist(), vecs, strict=True):
            self.rows[i] = v
        return [{"id": i, "v": v.tolist()} for i, v in zip(ids.tolist(), vecs, strict=True)]

    def delete(self, ids: list[int]) -> None:
        for i in ids:
            self.rows.pop(i, None)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        ids = np.fromiter(self.rows, dtype=np.int64, count=len(self.rows))
        return ids, np.stack([self.rows[i] for i in ids.tolist()])


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneServer]:
    server = StandaloneServer(Path(tmp_path_factory.mktemp("lifecycle")) / "data", extra_env=ENV)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(srv: StandaloneServer) -> MilvusClient:
    return MilvusClient(uri=srv.uri)


def count(client: MilvusClient, expr: str = "") -> int:
    return int(client.query(COLL, filter=expr, output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"])


def check(client: MilvusClient, model: Model, rng: np.random.Generator) -> None:
    """Everything a client can observe equals the model."""
    ids, vecs = model.arrays()
    assert count(client) == len(ids)
    assert count(client, "id >= 50000 and id < 120000") == int(((ids >= 50000) & (ids < 120000)).sum())
    probe = rng.choice(210_000, 300, replace=False).tolist()
    got = client.query(COLL, filter=f"id in {probe}", output_fields=["id", "v"], consistency_level="Strong")
    assert sorted(r["id"] for r in got) == sorted(i for i in probe if i in model.rows)
    for r in got:
        np.testing.assert_allclose(r["v"], model.rows[r["id"]], rtol=1e-6)
    window = client.query(COLL, filter="id >= 99000 and id < 105000", output_fields=["id"], consistency_level="Strong")
    assert sorted(r["id"] for r in window) == sorted(i for i in ids.tolist() if 99000 <= i < 105000)
    queries = rng.random((4, DIM), dtype=np.float32)
    hits = client.search(COLL, data=queries.tolist(), limit=10, consistency_level="Strong")
    for q, found in zip(queries, hits, strict=True):
        dist = ((vecs - q) ** 2).sum(axis=1)
        best = np.sort(dist)[:10]
        got_ids = [h["id"] for h in found]
        got_dist = np.array([h["distance"] for h in found])
        assert len(set(got_ids)) == len(got_ids) == 10, "a row came back twice"
        np.testing.assert_allclose(got_dist, best, rtol=1e-4, atol=1e-4)
        for i, d in zip(got_ids, got_dist, strict=True):
            assert i in model.rows
            assert abs(float(((model.rows[i] - q) ** 2).sum()) - d) <= 1e-4 + 1e-4 * d


def row_count(client: MilvusClient) -> int:
    return int(client.get_collection_stats(COLL)["row_count"])


def index_done(client: MilvusClient) -> bool:
    desc = client.describe_index(COLL, "v")
    return desc["state"] == "Finished" and desc["indexed_rows"] == desc["total_rows"]


def checking_until(client: MilvusClient, model: Model, rng: np.random.Generator, done: object, limit: float) -> int:
    """Check the model over and over until ``done()`` holds; returns how many checks ran."""
    deadline = time.monotonic() + limit
    checks = 0
    while True:
        check(client, model, rng)
        checks += 1
        if done():  # type: ignore[operator]
            return checks
        assert time.monotonic() < deadline, "timed out"


def test_lifecycle_matches_the_model(client: MilvusClient) -> None:
    rng = np.random.default_rng(7)
    model = Model()
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(COLL, schema=schema, index_params=index, consistency_level="Strong")

    def insert(lo: int, hi: int) -> None:
        ids = np.arange(lo, hi)
        rows = model.insert(ids, rng.random((len(ids), DIM), dtype=np.float32))
        for start in range(0, len(rows), 20_000):
            client.insert(COLL, rows[start : start + 20_000])

    insert(0, 40_000)
    client.flush(COLL)
    check(client, model, rng)

    insert(40_000, 80_000)
    gone = rng.choice(80_000, 3000, replace=False).tolist()
    client.delete(COLL, ids=gone)
    model.delete(gone)
    client.flush(COLL)
    check(client, model, rng)

    again = rng.choice(80_000, 5000, replace=False)  # some of them deleted above: upsert revives them
    client.upsert(COLL, model.insert(again, rng.random((len(again), DIM), dtype=np.float32)))
    check(client, model, rng)

    insert(80_000, 140_000)
    client.delete(COLL, filter="id >= 100000 and id < 104000")
    model.delete(list(range(100_000, 104_000)))
    client.flush(COLL)
    check(client, model, rng)

    insert(140_000, 200_000)  # left growing for now
    late = rng.choice(np.arange(130_000, 200_000), 2000, replace=False).tolist()
    client.delete(COLL, ids=late)
    model.delete(late)
    check(client, model, rng)

    client.flush(COLL)
    checks = checking_until(client, model, rng, lambda: index_done(client), 120)
    assert checks >= 1
    # num_entities counts every row written until compaction removes the deleted ones (as Milvus)
    deadline = time.monotonic() + 20
    while row_count(client) != model.inserted:
        assert time.monotonic() < deadline, (row_count(client), model.inserted)
        time.sleep(0.2)

    client.release_collection(COLL)
    client.load_collection(COLL)
    check(client, model, rng)

    started = time.monotonic()
    job = client.compact(COLL)
    during = checking_until(client, model, rng, lambda: client.get_compaction_state(job) == "Completed", 120)
    compaction_seconds = time.monotonic() - started
    plans = client.get_compaction_plans(job).plans
    assert plans and all(p.state.name == "Completed" and p.targets for p in plans)
    assert sum(len(p.sources) for p in plans) >= 7  # every segment had deletes or was small
    # the new segments are indexed and handed off (inputs served until then): keep checking
    during += checking_until(client, model, rng, lambda: index_done(client), 120)
    end = time.monotonic() + 2
    during += checking_until(client, model, rng, lambda: time.monotonic() > end, 30)
    assert during >= 3
    client.flush(COLL)  # deletes durable, channel checkpoint past the compacted inputs
    deadline = time.monotonic() + 20
    while row_count(client) != len(model.rows):
        assert time.monotonic() < deadline, (row_count(client), len(model.rows))
        time.sleep(0.2)
    print(f"compaction of {model.inserted} rows took {compaction_seconds:.2f}s (checks during: {during})")

    client.release_collection(COLL)
    client.load_collection(COLL)
    check(client, model, rng)


# --- garbage collection ------------------------------------------------------------------------


def read_meta(srv: StandaloneServer) -> dict[str, dict[str, object]]:
    """The metadata store, read beside the running server (SQLite allows a concurrent reader)."""
    conn = sqlite3.connect(f"file:{srv.data_dir / 'meta.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT key, value FROM kv").fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()
    wanted = ("/datacoord-meta/s/", "/segment-index/", "/gc-tombstone/")
    return {k: json.loads(v) for k, v in rows if any(w in k for w in wanted)}


def referenced(meta: dict[str, dict[str, object]]) -> tuple[set[str], int, int]:
    """(files live segments and finished builds reference, dropped segments, tombstones)."""
    files: set[str] = set()
    dropped = stones = 0
    for key, rec in meta.items():
        if "/datacoord-meta/s/" in key:
            if rec["state"] == "Dropped":
                dropped += 1
                continue
            files.update(k for keys in rec["binlogs"].values() for k in keys)  # type: ignore[attr-defined]
            files.update(rec["statslogs"])  # type: ignore[arg-type]
            files.update(rec["deltalogs"])  # type: ignore[arg-type]
        elif "/segment-index/" in key and rec["state"] == "Finished":
            files.update(rec["files"])  # type: ignore[arg-type]
        elif "/gc-tombstone/" in key:
            stones += 1
    return files, dropped, stones


def on_disk(srv: StandaloneServer) -> set[str]:
    root = srv.data_dir / "files"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_gc_removes_exactly_the_unreferenced_files(srv: StandaloneServer, client: MilvusClient) -> None:
    rng = np.random.default_rng(3)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    for name in ("gc_keep", "gc_drop"):
        client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
        client.create_partition(name, "p1")
        for part in ("_default", "p1"):
            rows = [{"id": i, "v": v.tolist()} for i, v in enumerate(rng.random((3000, DIM), dtype=np.float32))]
            client.insert(name, rows, partition_name=part)
        client.flush(name)
    deadline = time.monotonic() + 60
    while not all(client.describe_index(n, "v")["indexed_rows"] == 6000 for n in ("gc_keep", "gc_drop")):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    client.delete("gc_keep", filter="id < 100")
    client.flush("gc_keep")
    client.drop_collection("gc_drop")  # its files go by tombstone
    client.release_collection("gc_keep")
    client.drop_partition("gc_keep", "p1")  # its files too
    client.drop_index("gc_keep", "v")  # the builds' index files too; then a new build replaces them
    client.create_index("gc_keep", index)
    job = client.compact("gc_keep")  # rewrites the segment with deletes; its input goes
    deadline = time.monotonic() + 30
    while client.get_compaction_state(job) != "Completed":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert client.get_compaction_plans(job).plans
    for name in ("gc_keep", COLL):
        client.flush(name)

    deadline = time.monotonic() + 60
    while True:
        files, dropped, stones = referenced(read_meta(srv))
        disk = on_disk(srv)
        if files and dropped == 0 and stones == 0 and disk == files:
            break
        assert time.monotonic() < deadline, (dropped, stones, sorted(disk ^ files)[:10])
        time.sleep(0.5)
    client.load_collection("gc_keep")  # everything still referenced is still readable
    assert count_of(client, "gc_keep") == 2900
    hits = client.search("gc_keep", data=[[0.5] * DIM], limit=5)
    assert len(hits[0]) == 5


def count_of(client: MilvusClient, name: str) -> int:
    rows = client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")
    return int(rows[0]["count(*)"])


# --- automatic compaction ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def auto_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneServer]:
    env = ENV | {"QUIVER_DATA__COMPACTION_ENABLED": "true", "QUIVER_DATA__COMPACTION_INTERVAL_SECONDS": "0.5"}
    server = StandaloneServer(Path(tmp_path_factory.mktemp("autocompact")) / "data", extra_env=env)
    server.start()
    yield server
    server.stop()


def test_automatic_compaction_merges_small_segments_and_drops_deleted_rows(auto_srv: StandaloneServer) -> None:
    client = MilvusClient(uri=auto_srv.uri)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection("auto", schema=schema, index_params=index, consistency_level="Strong")
    rng = np.random.default_rng(5)
    for batch in range(3):  # three small segments (far below 30000 rows)
        rows = [{"id": batch * 1000 + i, "v": rng.random(DIM).tolist()} for i in range(1000)]
        client.insert("auto", rows)
        client.flush("auto")
    client.delete("auto", filter="id < 400")
    client.flush("auto")
    deadline = time.monotonic() + 60
    while int(client.get_collection_stats("auto")["row_count"]) != 2600:  # merged, deleted rows gone
        assert time.monotonic() < deadline, client.get_collection_stats("auto")
        assert count_of(client, "auto") == 2600  # never a row lost or doubled meanwhile
        time.sleep(0.2)
    assert count_of(client, "auto") == 2600
    hits = client.search("auto", data=[[0.5] * DIM], limit=20)
    assert len({h["id"] for h in hits[0]}) == 20 and all(h["id"] >= 400 for h in hits[0])


# --- scalar indexes ----------------------------------------------------------------------------


def test_scalar_indexes_through_pymilvus(client: MilvusClient) -> None:
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("age", DataType.INT32)
    schema.add_field("name", DataType.VARCHAR, max_length=16)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    index.add_index("age", index_type="STL_SORT")
    index.add_index("name", index_type="Trie")
    client.create_collection("scalars", schema=schema, index_params=index, consistency_level="Strong")
    rng = np.random.default_rng(11)
    age = rng.integers(0, 10_000, 5000)
    names = [f"n{i % 700:04d}" for i in range(5000)]
    client.insert(
        "scalars",
        [
            {"id": i, "age": int(age[i]), "name": names[i], "v": v.tolist()}
            for i, v in enumerate(rng.random((5000, DIM), dtype=np.float32))
        ],
    )
    client.flush("scalars")
    assert client.describe_index("scalars", "age")["index_type"] == "STL_SORT"
    assert client.describe_index("scalars", "name")["index_type"] == "Trie"
    client.release_collection("scalars")
    client.load_collection("scalars")  # sealed now: filters below go through the sorted indexes
    few = {i for i in range(5000) if age[i] < 5000}
    for expr, want in (
        ("age >= 100 and age < 130", np.flatnonzero((age >= 100) & (age < 130))),
        ("name == 'n0042'", [i for i, n in enumerate(names) if n == "n0042"]),
        ("name in ['n0001', 'n0002'] and age < 5000", [i for i, n in enumerate(names) if n in ("n0001", "n0002")]),
    ):
        rows = client.query("scalars", filter=expr, output_fields=["id"])
        if "age < 5000" in expr:
            want = [i for i in want if i in few]
        assert sorted(r["id"] for r in rows) == sorted(int(i) for i in want), expr
    with pytest.raises(Exception, match="STL_SORT are only supported on numeric field"):
        bad = client.prepare_index_params()
        bad.add_index("name", index_type="STL_SORT", index_name="bad")
        client.create_index("scalars", bad)
    client.release_collection("scalars")
    client.drop_index("scalars", "age")
    assert "age" not in client.list_indexes("scalars")
    client.load_collection("scalars")  # loads without the scalar index
    assert count_of(client, "scalars") == 5000
