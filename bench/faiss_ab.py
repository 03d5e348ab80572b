"""`python -m bench.faiss_ab`: Quiver's search against raw faiss, measured side by side.

Issue #4's targets compare a search through Quiver with the same faiss index searched in-process:
nq=100 throughput at least 0.8x faiss's, nq=1 p50 at most 1 ms above faiss's. On a shared 2-core
machine faiss's own numbers swing 2x between runs minutes apart, so one table column measured
after another cannot settle a ratio. This builds both at once on the same data (Quiver standalone
with IVF_FLAT, and a faiss IndexIVFFlat with the same nlist/nprobe) and alternates short blocks
of calls between faiss, Quiver through pymilvus and Quiver through a lean Milvus-protocol client
(bench.grpc_client): whatever load the machine has hits all three alike.

The two clients split what the database costs from what pymilvus costs: pymilvus builds Python
objects for every hit, which for nq=100 takes about as long as faiss's search itself.

    .venv/bin/python -m bench.faiss_ab                   # 100k x 128, nlist 1024, nprobe 16, 3 rounds
    .venv/bin/python -m bench.faiss_ab --rows 20000 --rounds 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from pymilvus import DataType, MilvusClient

from bench.common import TOP_K, ivf_index_and_load, latency_stats, recall_at_k
from bench.dataset import ab_dataset, add_ab_args
from bench.grpc_client import LeanSearchClient
from tests.e2e.server import StandaloneServer

NAME = "bench_faiss_ab"
BATCH = 10_000
TARGETS = ("faiss", "quiver-lean", "quiver-pymilvus")


def _load_quiver(client: MilvusClient, base: np.ndarray, nlist: int) -> None:
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=base.shape[1])
    client.create_collection(NAME, schema=schema, consistency_level="Bounded")
    for start in range(0, len(base), BATCH):
        client.insert(NAME, [{"id": i, "v": base[i]} for i in range(start, min(start + BATCH, len(base)))])
    ivf_index_and_load(client, NAME, "v", len(base), nlist)


def _faiss_index(base: np.ndarray, nlist: int, nprobe: int) -> Any:
    quantizer = faiss.IndexFlatL2(base.shape[1])
    index = faiss.IndexIVFFlat(quantizer, base.shape[1], nlist, faiss.METRIC_L2)
    index.train(base)
    index.add(base)
    index.nprobe = nprobe
    return index


def _interleaved(
    calls: dict[str, Callable[[np.ndarray], Any]], batches: list[np.ndarray], block: int
) -> dict[str, list[float]]:
    """Every batch through every target, ``block`` calls at a time, rotating which target goes first.

    Blocks rather than single calls: right after a call faiss's OpenMP threads spin for a while
    waiting for more work, and on two cores a spinning thread of one target slows the next call of
    the other; a block keeps that hand-over cost out of all but its first call.
    """
    names = list(calls)
    spent: dict[str, list[float]] = {n: [] for n in names}
    for b, start in enumerate(range(0, len(batches), block)):
        for n in names[b % len(names) :] + names[: b % len(names)]:
            for batch in batches[start : start + block]:
                t0 = time.perf_counter()
                calls[n](batch)
                spent[n].append(time.perf_counter() - t0)
    return spent


def _ids_per_query(name: str, result: Any) -> list[list[int]]:
    if name == "faiss":
        return [list(row) for row in result[1]]
    if name == "quiver-lean":
        return [list(row) for row in result.ids]
    return [[int(h["id"]) for h in hits] for hits in result]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_ab_args(ap)
    ap.add_argument("--batch-nq", type=int, default=100)
    ap.add_argument("--batches", type=int, default=30, help="nq=100 calls per target and round")
    ap.add_argument("--block", type=int, default=50, help="nq=1 calls per target before switching (nq=100: a tenth)")
    args = ap.parse_args(argv)
    data = ab_dataset(args)
    base = np.ascontiguousarray(np.load(data / "base.npy"), dtype=np.float32)
    queries = np.ascontiguousarray(np.load(data / "queries.npy"), dtype=np.float32)
    gt = np.load(data / "gt.npy")
    nq = args.batch_nq
    search = {"nprobe": args.nprobe}
    with tempfile.TemporaryDirectory(prefix="quiver-faiss-ab-") as tmp:
        server = StandaloneServer(Path(tmp) / "standalone")
        try:
            server.start()
            client = MilvusClient(uri=server.uri)
            _load_quiver(client, base, args.nlist)
            index = _faiss_index(base, args.nlist, args.nprobe)
            lean = LeanSearchClient(server.uri, NAME, "v")
            time.sleep(3)  # let the load settle
            calls: dict[str, Callable[[np.ndarray], Any]] = {
                "faiss": lambda q: index.search(q, TOP_K),
                "quiver-lean": lambda q: lean.search(q, TOP_K, search),
                "quiver-pymilvus": lambda q: client.search(
                    NAME, data=q, limit=TOP_K, anns_field="v", search_params={"params": search}
                ),
            }
            singles = [queries[i : i + 1] for i in range(len(queries))]
            nq_rows = np.arange(args.batches * nq) % len(queries)
            batches = [queries[nq_rows[b * nq : (b + 1) * nq]] for b in range(args.batches)]
            print(f"\nQuiver standalone vs raw faiss, {len(base):,} x {base.shape[1]} IVF_FLAT nlist={args.nlist} "
                  f"nprobe={args.nprobe} top-{TOP_K}, calls interleaved; faiss threads: {faiss.omp_get_max_threads()}")
            for name, call in calls.items():  # warm-up, and every path must find the same neighbours
                found = [_ids_per_query(name, call(q))[0] for q in singles[:200]]
                print(f"  {name}: recall@{TOP_K} {recall_at_k(found, gt[:200]):.4f} (first 200 queries, nq=1)")
            for r in range(args.rounds):
                one = {n: latency_stats(s)["p50_ms"] for n, s in _interleaved(calls, singles, args.block).items()}
                spent = _interleaved(calls, batches, max(1, args.block // 10))
                many = {n: latency_stats(s, nq)["qps"] for n, s in spent.items()}
                print(f"round {r + 1}:")
                print("  nq=1 p50:     " + ", ".join(f"{n} {one[n]:.3f} ms" for n in TARGETS)
                      + f" | over faiss: lean {one['quiver-lean'] - one['faiss']:+.3f} ms, "
                      f"pymilvus {one['quiver-pymilvus'] - one['faiss']:+.3f} ms (goal <= +1 ms)")
                print(f"  nq={nq} QPS:  " + ", ".join(f"{n} {many[n]:,.0f}" for n in TARGETS)
                      + f" | of faiss: lean {many['quiver-lean'] / many['faiss']:.2f}x, "
                      f"pymilvus {many['quiver-pymilvus'] / many['faiss']:.2f}x (goal >= 0.8x)")
            lean.close()
            client.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
