"""The pymilvus workload that every Milvus-protocol target runs (milvus-lite, Quiver, ...).

It runs as its own process under the target's virtualenv (``python -m bench.workload_milvus``),
so each target is driven by the pymilvus release it supports (2.5 for milvus-lite, 3.x for
Quiver) without the two clashing in one interpreter. It only uses MilvusClient calls that both
pymilvus 2.5 and 3.x offer, and writes its numbers to the JSON file given by ``--out`` (see
``bench.common.ResultWriter``); the orchestrator turns those files into the comparison table.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from importlib import metadata
from typing import Any

import numpy as np

from bench.common import (
    BUCKET_FIELD,
    BUCKETS,
    COLLECTION,
    FILTER_EXPR,
    FILTER_THRESHOLD,
    PK_FIELD,
    SCORE_FIELD,
    TAG_FIELD,
    TAG_MAX_LENGTH,
    TOP_K,
    VEC_FIELD,
    Dataset,
    ResultWriter,
    add_search_args,
    latency_stats,
    load_dataset,
    recall_at_k,
    tag_for,
    timed_calls,
)
from bench.index_types import float_types, metric_keys, milvus_binary_types, milvus_float_types


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--uri", required=True, help="pymilvus URI: http://host:port or a milvus-lite file")
    p.add_argument("--dataset", required=True, help="data set directory written by bench.dataset")
    p.add_argument("--out", required=True, help="JSON result file to (re)write")
    p.add_argument("--target", default="unnamed")
    p.add_argument("--insert-batch", type=int, default=10_000)
    add_search_args(p)
    p.add_argument("--scalar-reps", type=int, default=100)
    p.add_argument("--count-reps", type=int, default=30)
    p.add_argument("--keep", action="store_true", help="do not drop the collection at the end")
    p.add_argument("--settle-seconds", type=float, default=5.0, help="wait after each load before measuring")
    p.add_argument(
        "--rpc-timeout",
        type=float,
        default=60.0,
        help="seconds for one call (0: none); create_index and load are only bounded by the orchestrator",
    )
    return p.parse_args(argv)


def sweep_values(args: argparse.Namespace) -> list[int]:
    """The nprobe values of the recall/latency sweep: the list given plus the main nprobe."""
    given = [int(x) for x in str(args.nprobe_sweep).split(",") if x.strip()]
    return sorted({n for n in given if 0 < n <= args.nlist} | {args.nprobe})


def looks_like_timeout(message: str) -> bool:
    """True for the errors pymilvus/grpc raise when a call ran out of time."""
    m = message.lower()
    return "deadline" in m or "timeout" in m or "timed out" in m


def _ids(hits: Any) -> list[int]:
    return [int(h["id"]) for h in hits]


class MilvusWorkload:
    """One run of the workload against one server, phase by phase."""

    def __init__(self, args: argparse.Namespace, ds: Dataset, out: ResultWriter) -> None:
        self.args = args
        self.ds = ds
        self.out = out
        self.client: Any = None
        self.t: float | None = args.rpc_timeout or None  # per-call limit: a hung server fails fast
        self.query_lists = [q.tolist() for q in ds.queries]
        self.rng = np.random.default_rng(12345)

    # -- helpers -------------------------------------------------------------------------
    def _search(self, vectors: list[list[float]], params: dict[str, Any], expr: str = "") -> Any:
        return self.client.search(
            COLLECTION,
            data=vectors,
            filter=expr,
            limit=TOP_K,
            anns_field=VEC_FIELD,
            search_params={"metric_type": "L2", "params": params},
            timeout=self.t,
        )

    def _wait_index(self, timeout_s: float = 600.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            desc = self.client.describe_index(COLLECTION, VEC_FIELD, timeout=self.t) or {}
            state = str(desc.get("state", "Finished"))
            if state.endswith("Finished"):
                return
            if state.endswith("Failed"):
                raise RuntimeError(f"index build failed: {desc.get('fail_reason', desc)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"index not built after {timeout_s}s: {desc}")
            time.sleep(0.2)

    def _build_index(self, index_type: str, params: dict[str, Any], prefix: str) -> None:
        ip = self.client.prepare_index_params()
        ip.add_index(VEC_FIELD, index_type=index_type, metric_type="L2", params=params, index_name=VEC_FIELD)
        t0 = time.perf_counter()
        self.client.create_index(COLLECTION, ip)
        self._wait_index()
        self.out.metric(f"{prefix}_index_s", time.perf_counter() - t0)
        t0 = time.perf_counter()
        self.client.load_collection(COLLECTION)
        self.out.metric(f"{prefix}_load_s", time.perf_counter() - t0)
        # searches measure the steady state: a cluster may still be placing segments right after a load
        time.sleep(self.args.settle_seconds)

    def _ann_latency(self, params: dict[str, Any], prefix: str, n_queries: int | None = None) -> None:
        a = self.args
        queries = self.query_lists[:n_queries] if n_queries else self.query_lists
        for q in queries[: a.warmup]:
            self._search([q], params)
        samples, results = timed_calls(lambda q: self._search([q], params), queries)
        st = latency_stats(samples)
        self.out.metric(f"{prefix}_nq1_p50_ms", st["p50_ms"])
        self.out.metric(f"{prefix}_nq1_p99_ms", st["p99_ms"])
        self.out.metric(f"{prefix}_nq1_qps", st["qps"])
        found = [_ids(r[0]) for r in results]
        self.out.metric(f"{prefix}_recall", recall_at_k(found, self.ds.gt[: len(queries)]))

    # -- phases --------------------------------------------------------------------------
    def connect(self) -> None:
        import pymilvus
        from pymilvus import MilvusClient

        self.out.info("pymilvus", getattr(pymilvus, "__version__", "?"))
        for dist in ("milvus-lite", "grpcio", "protobuf"):
            with contextlib.suppress(metadata.PackageNotFoundError):
                self.out.info(dist.replace("-", "_"), metadata.version(dist))
        t0 = time.perf_counter()
        self.client = MilvusClient(uri=self.args.uri)
        self.out.info("connect_s", round(time.perf_counter() - t0, 3))
        try:
            self.out.info("server_version", str(self.client.get_server_version(timeout=self.t)))
        except Exception as exc:  # milvus-lite does not implement GetVersion
            self.out.info("server_version", f"n/a ({type(exc).__name__})")

    def create_collection(self) -> None:
        from pymilvus import DataType, MilvusClient

        if self.client.has_collection(COLLECTION, timeout=self.t):
            self.client.drop_collection(COLLECTION, timeout=self.t)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(PK_FIELD, DataType.INT64, is_primary=True)
        schema.add_field(VEC_FIELD, DataType.FLOAT_VECTOR, dim=self.ds.dim)
        schema.add_field(SCORE_FIELD, DataType.DOUBLE)
        schema.add_field(BUCKET_FIELD, DataType.INT64)
        schema.add_field(TAG_FIELD, DataType.VARCHAR, max_length=TAG_MAX_LENGTH)
        self.client.create_collection(COLLECTION, schema=schema, consistency_level="Bounded", timeout=self.t)

    def insert(self) -> None:
        ds, batch = self.ds, self.args.insert_batch
        spent = 0.0
        for start in range(0, ds.rows, batch):
            stop = min(start + batch, ds.rows)
            rows = [
                {
                    PK_FIELD: i,
                    VEC_FIELD: ds.base[i].tolist(),
                    SCORE_FIELD: float(ds.scores[i]),
                    BUCKET_FIELD: int(ds.buckets[i]),
                    TAG_FIELD: tag_for(int(ds.buckets[i])),
                }
                for i in range(start, stop)
            ]
            t0 = time.perf_counter()
            res = self.client.insert(COLLECTION, rows, timeout=self.t)
            spent += time.perf_counter() - t0
            count = int(res["insert_count"]) if isinstance(res, dict) else len(rows)
            if count != len(rows):
                raise RuntimeError(f"insert acknowledged {count} of {len(rows)} rows")
            self.out.info("rows_inserted", stop)
        self.out.metric("insert_rows_per_s", ds.rows / spent)
        t0 = time.perf_counter()
        self.client.flush(COLLECTION, timeout=self.t)
        self.out.metric("flush_s", time.perf_counter() - t0)

    def ivf_index(self) -> None:
        self._build_index("IVF_FLAT", {"nlist": self.args.nlist}, "ivf")

    def count(self) -> None:
        def run(_: int) -> Any:
            return self.client.query(COLLECTION, filter="", output_fields=["count(*)"], timeout=self.t)

        run(0)
        samples, results = timed_calls(run, range(self.args.count_reps))
        got = int(results[-1][0]["count(*)"])
        self.out.info("count_result", got)
        self.out.metric("count_p50_ms", latency_stats(samples)["p50_ms"])
        if got != self.ds.rows:
            raise RuntimeError(f"count(*) returned {got}, expected {self.ds.rows}")

    def ivf_search(self) -> None:
        self._ann_latency({"nprobe": self.args.nprobe}, "ivf")

    def ivf_sweep(self) -> None:
        """Recall and p50 for several nprobe values, so targets can be compared at equal recall."""
        a = self.args
        queries = self.query_lists[: a.sweep_queries]
        points = []
        for nprobe in sweep_values(a):
            samples, results = timed_calls(lambda q, n=nprobe: self._search([q], {"nprobe": n}), queries)
            found = [_ids(r[0]) for r in results]
            recall = recall_at_k(found, self.ds.gt[: len(queries)])
            points.append({"nprobe": nprobe, "recall": round(recall, 4), "p50_ms": latency_stats(samples)["p50_ms"]})
            self.out.info("ivf_sweep", points)

    def ivf_batch(self) -> None:
        a = self.args
        nq = a.batch_nq
        batches = [
            [self.query_lists[(r * nq + j) % len(self.query_lists)] for j in range(nq)] for r in range(a.batch_rounds)
        ]
        self._search(batches[0], {"nprobe": a.nprobe})
        samples, results = timed_calls(lambda b: self._search(b, {"nprobe": a.nprobe}), batches)
        if any(len(r) != nq for r in results):
            raise RuntimeError("a batched search returned the wrong number of result lists")
        st = latency_stats(samples, queries_per_call=nq)
        self.out.metric(f"ivf_nq{nq}_qps", st["qps"])
        self.out.info(f"ivf_nq{nq}_p50_ms", round(st["p50_ms"], 3))

    def filtered_search(self) -> None:
        a = self.args
        nf = len(self.ds.gt_filtered)
        queries = self.query_lists[:nf]
        params = {"nprobe": a.nprobe}
        for q in queries[: min(a.warmup, nf)]:
            self._search([q], params, FILTER_EXPR)
        samples, results = timed_calls(lambda q: self._search([q], params, FILTER_EXPR), queries)
        found = [_ids(r[0]) for r in results]
        self.out.metric("filtered_p50_ms", latency_stats(samples)["p50_ms"])
        self.out.metric("filtered_recall", recall_at_k(found, self.ds.gt_filtered))
        bad = sum(1 for ids in found for i in ids if not self.ds.scores[i] > FILTER_THRESHOLD)
        if bad:
            raise RuntimeError(f"filtered search returned {bad} rows that do not match `{FILTER_EXPR}`")

    def scalar_queries(self) -> None:
        a, ds = self.args, self.ds
        reps = a.scalar_reps
        id_sets = [self.rng.choice(ds.rows, size=min(100, ds.rows), replace=False).tolist() for _ in range(reps)]

        def by_ids(ids: list[int]) -> Any:
            return self.client.query(
                COLLECTION, filter=f"{PK_FIELD} in {ids}", output_fields=[PK_FIELD, SCORE_FIELD], timeout=self.t
            )

        by_ids(id_sets[0])
        samples, results = timed_calls(by_ids, id_sets)
        self.out.metric("query_id_in_p50_ms", latency_stats(samples)["p50_ms"])
        wrong_ids = [i for i, r in enumerate(results) if sorted(int(x[PK_FIELD]) for x in r) != sorted(id_sets[i])]
        if wrong_ids:
            raise RuntimeError(f"`id in [...]` returned wrong rows for {len(wrong_ids)}/{reps} queries")

        starts = self.rng.integers(0, BUCKETS - 100, size=reps).tolist()

        def by_range(lo: int) -> Any:
            expr = f"{BUCKET_FIELD} >= {lo} and {BUCKET_FIELD} < {lo + 100}"
            return self.client.query(
                COLLECTION, filter=expr, output_fields=[PK_FIELD, SCORE_FIELD], limit=100, timeout=self.t
            )

        by_range(starts[0])
        samples, results = timed_calls(by_range, starts)
        self.out.metric("query_range_p50_ms", latency_stats(samples)["p50_ms"])
        wrong_range = 0
        for lo, r in zip(starts, results, strict=True):
            in_range = int(((ds.buckets >= lo) & (ds.buckets < lo + 100)).sum())
            ok_rows = all(lo <= int(ds.buckets[int(x[PK_FIELD])]) < lo + 100 for x in r)
            wrong_range += int(len(r) != min(100, in_range) or not ok_rows)
        if wrong_range:
            raise RuntimeError(f"range query returned wrong rows for {wrong_range}/{reps} queries")

        buckets = [int(b) for b in self.rng.integers(0, BUCKETS, size=reps)]

        def by_tag(bucket: int) -> Any:
            return self.client.query(
                COLLECTION,
                filter=f'{TAG_FIELD} == "{tag_for(bucket)}"',
                output_fields=[PK_FIELD],
                limit=100,
                timeout=self.t,
            )

        by_tag(buckets[0])
        samples, results = timed_calls(by_tag, buckets)
        self.out.metric("query_tag_p50_ms", latency_stats(samples)["p50_ms"])
        wrong_tag = 0
        for b, r in zip(buckets, results, strict=True):
            expected = min(100, int((ds.buckets == b).sum()))
            wrong_tag += int(len(r) != expected or any(int(ds.buckets[int(x[PK_FIELD])]) != b for x in r))
        if wrong_tag:
            raise RuntimeError(f"varchar == query returned wrong rows for {wrong_tag}/{reps} queries")

    def flat(self) -> None:
        """Exact search: the one index type where every engine must return the same answer."""
        self.client.release_collection(COLLECTION, timeout=self.t)
        self.client.drop_index(COLLECTION, VEC_FIELD, timeout=self.t)
        self._build_index("FLAT", {}, "flat")
        self._ann_latency({}, "flat", self.args.flat_queries)

    def hnsw(self) -> None:
        a = self.args
        self.client.release_collection(COLLECTION, timeout=self.t)
        self.client.drop_index(COLLECTION, VEC_FIELD, timeout=self.t)
        self._build_index("HNSW", {"M": a.hnsw_m, "efConstruction": a.hnsw_efc}, "hnsw")
        self._ann_latency({"ef": a.hnsw_ef}, "hnsw")

    def cleanup(self) -> None:
        if self.client is None:
            return
        try:
            if not self.args.keep:
                self.client.drop_collection(COLLECTION, timeout=self.t)
        finally:
            self.client.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = ResultWriter(args.out, args.target)
    ds = load_dataset(args.dataset)
    out.info("rows", ds.rows)
    out.info("dim", ds.dim)
    out.info("nprobe", args.nprobe)
    out.info("nlist", args.nlist)
    out.info("hnsw", {"M": args.hnsw_m, "efConstruction": args.hnsw_efc, "ef": args.hnsw_ef})
    out.info("queries", len(ds.queries))
    w = MilvusWorkload(args, ds, out)
    nq = args.batch_nq
    with out.phase("connect", ["insert_rows_per_s"]):
        w.connect()
    if w.client is None:
        out.finish()
        return 1
    steps: list[tuple[str, Any, list[str]]] = [
        ("create_collection", w.create_collection, ["insert_rows_per_s"]),
        ("insert", w.insert, ["insert_rows_per_s", "flush_s"]),
        ("ivf_index", w.ivf_index, ["ivf_index_s", "ivf_load_s"]),
        ("count", w.count, ["count_p50_ms"]),
        ("ivf_search", w.ivf_search, ["ivf_nq1_p50_ms", "ivf_nq1_p99_ms", "ivf_nq1_qps", "ivf_recall"]),
        ("ivf_sweep", w.ivf_sweep, []),
        ("ivf_batch", w.ivf_batch, [f"ivf_nq{nq}_qps"]),
        ("filtered_search", w.filtered_search, ["filtered_p50_ms", "filtered_recall"]),
        (
            "scalar_queries",
            w.scalar_queries,
            ["query_id_in_p50_ms", "query_range_p50_ms", "query_tag_p50_ms"],
        ),
    ]
    flat_keys = [
        "flat_index_s",
        "flat_load_s",
        "flat_nq1_p50_ms",
        "flat_nq1_p99_ms",
        "flat_nq1_qps",
        "flat_recall",
    ]
    steps.append(("flat", w.flat, flat_keys))
    if args.hnsw:
        hnsw_keys = [
            "hnsw_index_s",
            "hnsw_load_s",
            "hnsw_nq1_p50_ms",
            "hnsw_nq1_p99_ms",
            "hnsw_nq1_qps",
            "hnsw_recall",
        ]
        steps.append(("hnsw", w.hnsw, hnsw_keys))
    skip_reason = ""
    for name, fn, keys in steps:
        if skip_reason:
            for k in keys:
                out.data["errors"].setdefault(k, skip_reason)
            continue
        with out.phase(name, keys):
            fn()
        phase = out.data["phases"][name]
        if phase["ok"]:
            continue
        if looks_like_timeout(phase.get("error", "")):
            skip_reason = f"skipped: the server stopped answering in phase '{name}' (call timed out)"
        elif name in ("create_collection", "insert"):
            skip_reason = f"skipped: phase '{name}' failed, there is no data to work on"
    extra = [k for t in float_types(args.nlist) for k in metric_keys(t.prefix)]
    extra += metric_keys("bin_flat") + metric_keys("bin_ivf")
    if skip_reason:
        for k in extra:
            out.data["errors"].setdefault(k, skip_reason)
    else:
        milvus_float_types(w.client, out, ds, args, COLLECTION, VEC_FIELD)
        milvus_binary_types(w.client, out, ds, args, args.insert_batch)
    with out.phase("cleanup", []):
        w.cleanup()
    out.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
