"""The search-only workload driven directly with faiss, in-process (the ``faiss-raw`` column).

It builds the same indexes with the same parameters as the pymilvus workload (IVF_FLAT with
``nlist``/``nprobe``, HNSW with ``M``/``efConstruction``/``ef``) on the same data and queries,
with no server, no RPC and no Python client in the way. Comparing it with a server's search rows
shows how much of the latency is engine and how much is everything around it. Rows that only a
database has (insert, flush, load, scalar queries, count) are simply absent from its results.
Runs under Quiver's virtualenv, which has faiss-cpu: ``python -m bench.workload_faiss``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from bench.common import (
    FILTER_THRESHOLD,
    TOP_K,
    Dataset,
    ResultWriter,
    add_search_args,
    latency_stats,
    load_dataset,
    recall_at_k,
    timed_calls,
)
from bench.index_types import faiss_index_types


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--uri", default="", help="ignored: accepted for symmetry with the Milvus workload")
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--target", default="faiss-raw")
    add_search_args(p)
    # accepted so one command line fits every workload; meaningless without a database
    p.add_argument("--insert-batch", type=int, default=0)
    p.add_argument("--scalar-reps", type=int, default=0)
    p.add_argument("--count-reps", type=int, default=0)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--rpc-timeout", type=float, default=0.0)
    return p.parse_args(argv)


def _latency(out: ResultWriter, ds: Dataset, index: Any, prefix: str, warmup: int, n_queries: int = 0) -> None:
    queries = [q[None, :] for q in np.ascontiguousarray(ds.queries, dtype=np.float32)]
    queries = queries[:n_queries] if n_queries else queries
    for q in queries[:warmup]:
        index.search(q, TOP_K)
    samples, results = timed_calls(lambda q: index.search(q, TOP_K), queries)
    st = latency_stats(samples)
    out.metric(f"{prefix}_nq1_p50_ms", st["p50_ms"])
    out.metric(f"{prefix}_nq1_p99_ms", st["p99_ms"])
    out.metric(f"{prefix}_nq1_qps", st["qps"])
    out.metric(f"{prefix}_recall", recall_at_k([r[1][0].tolist() for r in results], ds.gt[: len(queries)]))


def main(argv: list[str] | None = None) -> int:
    import faiss

    args = parse_args(argv)
    out = ResultWriter(args.out, args.target)
    ds = load_dataset(args.dataset)
    base = np.ascontiguousarray(ds.base, dtype=np.float32)
    out.info("faiss", faiss.__version__)
    out.info("omp_threads", faiss.omp_get_max_threads())
    out.info("rows", ds.rows)
    out.info("dim", ds.dim)
    out.info("nprobe", args.nprobe)
    out.info("nlist", args.nlist)
    out.info("hnsw", {"M": args.hnsw_m, "efConstruction": args.hnsw_efc, "ef": args.hnsw_ef})
    ivf: Any = None

    with out.phase("ivf_index", ["ivf_index_s"]):
        t0 = time.perf_counter()
        quantizer = faiss.IndexFlatL2(ds.dim)
        ivf = faiss.IndexIVFFlat(quantizer, ds.dim, args.nlist, faiss.METRIC_L2)
        ivf.train(base)
        ivf.add(base)
        out.metric("ivf_index_s", time.perf_counter() - t0)
        ivf.nprobe = args.nprobe

    if ivf is not None:
        with out.phase("ivf_search", ["ivf_nq1_p50_ms", "ivf_nq1_p99_ms", "ivf_nq1_qps", "ivf_recall"]):
            _latency(out, ds, ivf, "ivf", args.warmup)

        with out.phase("ivf_sweep", []):
            qs1 = [q[None, :] for q in np.ascontiguousarray(ds.queries[: args.sweep_queries], dtype=np.float32)]
            given = {int(x) for x in str(args.nprobe_sweep).split(",") if x.strip()}
            points = []
            for nprobe in sorted({n for n in given if 0 < n <= args.nlist} | {args.nprobe}):
                ivf.nprobe = nprobe
                samples, results = timed_calls(lambda q: ivf.search(q, TOP_K), qs1)
                recall = recall_at_k([r[1][0].tolist() for r in results], ds.gt[: len(qs1)])
                p50 = latency_stats(samples)["p50_ms"]
                points.append({"nprobe": nprobe, "recall": round(recall, 4), "p50_ms": p50})
                out.info("ivf_sweep", points)
            ivf.nprobe = args.nprobe

        nq = args.batch_nq
        with out.phase("ivf_batch", [f"ivf_nq{nq}_qps"]):
            qs = np.ascontiguousarray(ds.queries, dtype=np.float32)
            batches = [qs[np.arange(r * nq, (r + 1) * nq) % len(qs)] for r in range(args.batch_rounds)]
            ivf.search(batches[0], TOP_K)
            samples, _ = timed_calls(lambda b: ivf.search(b, TOP_K), batches)
            out.metric(f"ivf_nq{nq}_qps", latency_stats(samples, queries_per_call=nq)["qps"])

        with out.phase("filtered_search", ["filtered_p50_ms", "filtered_recall"]):
            keep = np.ascontiguousarray(ds.scores > FILTER_THRESHOLD)
            nf = len(ds.gt_filtered)
            queries = [q[None, :] for q in np.ascontiguousarray(ds.queries[:nf], dtype=np.float32)]
            bits = np.packbits(keep, bitorder="little")  # must outlive the selector that points into it
            selector = faiss.IDSelectorBitmap(len(keep), faiss.swig_ptr(bits))
            params = faiss.SearchParametersIVF()
            params.sel = selector
            params.nprobe = args.nprobe
            for q in queries[: args.warmup]:
                ivf.search(q, TOP_K, params=params)
            samples, results = timed_calls(lambda q: ivf.search(q, TOP_K, params=params), queries)
            out.metric("filtered_p50_ms", latency_stats(samples)["p50_ms"])
            found = [[i for i in r[1][0].tolist() if i >= 0] for r in results]
            out.metric("filtered_recall", recall_at_k(found, ds.gt_filtered))

    with out.phase("flat", ["flat_index_s", "flat_nq1_p50_ms", "flat_nq1_p99_ms", "flat_nq1_qps", "flat_recall"]):
        t0 = time.perf_counter()
        flat = faiss.IndexFlatL2(ds.dim)
        flat.add(base)
        out.metric("flat_index_s", time.perf_counter() - t0)
        _latency(out, ds, flat, "flat", args.warmup, args.flat_queries)

    if args.hnsw:
        hnsw_keys = ["hnsw_index_s", "hnsw_nq1_p50_ms", "hnsw_nq1_p99_ms", "hnsw_nq1_qps", "hnsw_recall"]
        with out.phase("hnsw", hnsw_keys):
            t0 = time.perf_counter()
            index = faiss.IndexHNSWFlat(ds.dim, args.hnsw_m, faiss.METRIC_L2)
            index.hnsw.efConstruction = args.hnsw_efc
            index.add(base)
            out.metric("hnsw_index_s", time.perf_counter() - t0)
            index.hnsw.efSearch = args.hnsw_ef
            _latency(out, ds, index, "hnsw", args.warmup)
    faiss_index_types(out, ds, args)
    out.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
