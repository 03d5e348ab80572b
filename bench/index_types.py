"""The index-type rows of `make bench`: build time, nq=1 latency and recall per index type.

The main workload measures IVF_FLAT, FLAT and HNSW in depth; issue #4 also asks for IVF_SQ8,
IVF_PQ, BIN_FLAT and BIN_IVF_FLAT side by side with milvus-lite and raw faiss, and Milvus 2.6's
IVF_RABITQ, SCANN and DISKANN come the same way (raw faiss builds the same faiss index from the
same factory string; DISKANN's is the HNSW graph that serves it, docs/index-types.md). Each gets
the same three numbers on every target: seconds from create_index until the index is built,
nq=1 top-10 p50 over sealed, indexed data, and recall against exact ground truth.

Binary vectors are derived from the float data set deterministically (one bit per dimension:
above that dimension's median), so every target indexes the same bits without a second data
set; the exact hamming neighbours are computed here with numpy. Hamming distances are small
integers with many ties, so recall counts a returned id as correct when its true distance is at
most the exact 10th-nearest distance (any tie order is right).

Only the standard library and numpy are imported at module level: milvus-lite's workload runs
this under its own virtualenv.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.common import TOP_K, Dataset, ResultWriter, latency_stats, timed_calls

BINARY_COLLECTION = "bench_binary"
BIN_FIELD = "bvec"
PQ_M = 16  # sub-quantizers for IVF_PQ (dim 128 -> 8 dims each)
PQ_NBITS = 8
RABITQ_REFINE_K = 4  # IVF_RABITQ re-ranks 4k candidates on an SQ8 copy
SCANN_REORDER_K = 40
DISKANN_DEGREE, DISKANN_BUILD_LIST, DISKANN_SEARCH_LIST = 56, 100, 40


@dataclass(frozen=True)
class FloatType:
    prefix: str
    index_type: str
    build: dict[str, Any]
    search: dict[str, Any]  # beyond nprobe
    factory: str  # the same index for raw faiss ({d}: dimension, {nlist})
    faiss_search: dict[str, Any]  # faiss.ParameterSpace names beyond nprobe


def float_types(nlist: int) -> list[FloatType]:
    return [
        FloatType("ivf_sq8", "IVF_SQ8", {"nlist": nlist}, {}, "IVF{nlist},SQ8", {}),
        FloatType(
            "ivf_pq", "IVF_PQ", {"nlist": nlist, "m": PQ_M, "nbits": PQ_NBITS}, {},
            f"IVF{{nlist}},PQ{PQ_M}x{PQ_NBITS}np", {},  # np: no polysemous training (as IndexIVFPQ built directly)
        ),  # fmt: skip
        FloatType(
            "ivf_rabitq", "IVF_RABITQ", {"nlist": nlist, "refine": True, "refine_type": "SQ8"},
            {"refine_k": RABITQ_REFINE_K, "rbq_bits_query": 8}, "RR{d},IVF{nlist},RaBitQ,Refine(SQ8)",
            {"k_factor_rf": RABITQ_REFINE_K, "qb": 8},
        ),  # fmt: skip
        FloatType(
            "scann", "SCANN", {"nlist": nlist}, {"reorder_k": SCANN_REORDER_K}, "IVF{nlist},PQ{half}x4fs,RFlat",
            {"k_factor_rf": SCANN_REORDER_K / TOP_K},
        ),  # fmt: skip
        FloatType(
            "diskann", "DISKANN", {"max_degree": DISKANN_DEGREE, "search_list_size": DISKANN_BUILD_LIST},
            {"search_list": DISKANN_SEARCH_LIST}, f"HNSW{DISKANN_DEGREE // 2}", {"efSearch": DISKANN_SEARCH_LIST},
        ),  # fmt: skip
    ]


def metric_keys(prefix: str) -> list[str]:
    return [f"{prefix}_index_s", f"{prefix}_nq1_p50_ms", f"{prefix}_recall"]


def binary_codes(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(base, queries) as packed bits: bit j of a row is set when dimension j exceeds its median."""
    median = np.median(ds.base, axis=0)
    base = np.packbits(ds.base > median, axis=1)
    queries = np.packbits(ds.queries > median, axis=1)
    return np.ascontiguousarray(base), np.ascontiguousarray(queries)


def hamming_to_all(base: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Hamming distance of one packed query to every packed base row."""
    x = np.bitwise_xor(base, query[None, :])
    return np.bitwise_count(x).sum(axis=1, dtype=np.int64)


def hamming_recall(found: list[list[int]], base: np.ndarray, queries: np.ndarray, k: int = TOP_K) -> float:
    """Fraction of returned ids whose exact distance is within the exact k-th nearest distance."""
    if not found:
        return float("nan")
    good = 0
    for ids, q in zip(found, queries, strict=False):
        dist = hamming_to_all(base, q)
        kth = np.partition(dist, k - 1)[k - 1]
        good += sum(1 for i in ids[:k] if 0 <= int(i) < len(dist) and dist[int(i)] <= kth)
    return good / (k * len(found))


def float_recall(found: list[list[int]], ds: Dataset, k: int = TOP_K) -> float:
    hits = sum(len({int(i) for i in ids[:k]} & {int(i) for i in gt[:k]}) for ids, gt in zip(found, ds.gt, strict=False))
    return hits / (k * len(found)) if found else float("nan")


def record_latency(out: ResultWriter, prefix: str, samples: list[float]) -> None:
    out.metric(f"{prefix}_nq1_p50_ms", latency_stats(samples)["p50_ms"])


# --- pymilvus targets (milvus-lite, Quiver) -------------------------------------------------
def _wait_built(client: Any, collection: str, field: str, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        desc = client.describe_index(collection, field) or {}
        state = str(desc.get("state", "Finished"))
        if state.endswith("Finished"):
            return
        if state.endswith("Failed"):
            raise RuntimeError(f"index build failed: {desc.get('fail_reason', desc)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"index not built after {timeout_s}s: {desc}")
        time.sleep(0.2)


def milvus_build_and_search(
    client: Any,
    out: ResultWriter,
    *,
    collection: str,
    field: str,
    index_type: str,
    metric: str,
    build: dict[str, Any],
    search: dict[str, Any],
    queries: list[Any],
    prefix: str,
    warmup: int,
) -> list[list[int]]:
    """Drop the current index, build ``index_type``, load, and time nq=1 searches; returns the ids."""
    client.release_collection(collection)
    for name in client.list_indexes(collection):
        client.drop_index(collection, name)
    ip = client.prepare_index_params()
    ip.add_index(field, index_type=index_type, metric_type=metric, params=build, index_name=field)
    t0 = time.perf_counter()
    client.create_index(collection, ip)
    _wait_built(client, collection, field)
    out.metric(f"{prefix}_index_s", time.perf_counter() - t0)
    client.load_collection(collection)

    def one(q: Any) -> Any:
        return client.search(
            collection, data=[q], limit=TOP_K, anns_field=field, search_params={"metric_type": metric, "params": search}
        )

    for q in queries[:warmup]:
        one(q)
    samples, results = timed_calls(one, queries)
    record_latency(out, prefix, samples)
    return [[int(h["id"]) for h in r[0]] for r in results]


def milvus_float_types(client: Any, out: ResultWriter, ds: Dataset, args: Any, collection: str, field: str) -> None:
    queries = [q.tolist() for q in ds.queries[: args.flat_queries]]
    for t in float_types(args.nlist):
        with out.phase(t.prefix, metric_keys(t.prefix)):
            found = milvus_build_and_search(
                client, out, collection=collection, field=field, index_type=t.index_type, metric="L2",
                build=t.build, search={"nprobe": args.nprobe, **t.search}, queries=queries, prefix=t.prefix,
                warmup=args.warmup,
            )  # fmt: skip
            out.metric(f"{t.prefix}_recall", float_recall(found, ds))


def milvus_binary_types(client: Any, out: ResultWriter, ds: Dataset, args: Any, batch: int) -> None:
    """A second collection with the binary codes: BIN_FLAT then BIN_IVF_FLAT (HAMMING)."""
    from pymilvus import DataType  # the target's pymilvus (2.5 for milvus-lite, 3.x for Quiver)

    base, queries = binary_codes(ds)
    keys = metric_keys("bin_flat") + metric_keys("bin_ivf")
    with out.phase("binary_insert", keys):
        if client.has_collection(BINARY_COLLECTION):
            client.drop_collection(BINARY_COLLECTION)
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field(BIN_FIELD, DataType.BINARY_VECTOR, dim=base.shape[1] * 8)
        client.create_collection(BINARY_COLLECTION, schema=schema)
        for start in range(0, len(base), batch):
            rows = [{"id": i, BIN_FIELD: base[i].tobytes()} for i in range(start, min(start + batch, len(base)))]
            client.insert(BINARY_COLLECTION, rows)
        client.flush(BINARY_COLLECTION)
    qlist = [q.tobytes() for q in queries[: args.flat_queries]]
    runs = [
        ("bin_flat", "BIN_FLAT", {}, {}),
        ("bin_ivf", "BIN_IVF_FLAT", {"nlist": args.nlist}, {"nprobe": args.nprobe}),
    ]
    for prefix, index_type, build, search in runs:
        with out.phase(prefix, metric_keys(prefix)):
            found = milvus_build_and_search(
                client, out, collection=BINARY_COLLECTION, field=BIN_FIELD, index_type=index_type, metric="HAMMING",
                build=build, search=search, queries=qlist, prefix=prefix, warmup=args.warmup,
            )  # fmt: skip
            out.metric(f"{prefix}_recall", hamming_recall(found, base, queries[: len(qlist)]))
    with contextlib.suppress(Exception):  # cleanup only; the numbers are already recorded
        client.drop_collection(BINARY_COLLECTION)


# --- raw faiss --------------------------------------------------------------------------------
def faiss_index_types(out: ResultWriter, ds: Dataset, args: Any) -> None:
    """The same index types built and searched in-process with faiss (the 'raw' reference)."""
    import faiss

    base = np.ascontiguousarray(ds.base, dtype=np.float32)
    fq = [q[None, :] for q in np.ascontiguousarray(ds.queries[: args.flat_queries], dtype=np.float32)]
    for t in float_types(args.nlist):
        with out.phase(t.prefix, metric_keys(t.prefix)):
            t0 = time.perf_counter()
            spec = t.factory.format(d=ds.dim, nlist=args.nlist, half=ds.dim // 2)
            index = faiss.index_factory(ds.dim, spec, faiss.METRIC_L2)
            if spec.startswith("HNSW"):
                faiss.downcast_index(index).hnsw.efConstruction = DISKANN_BUILD_LIST
            index.train(base)
            index.add(base)
            out.metric(f"{t.prefix}_index_s", time.perf_counter() - t0)
            _faiss_params(index, {} if spec.startswith("HNSW") else {"nprobe": args.nprobe}, t.faiss_search)
            _faiss_latency(out, t.prefix, index, fq, args.warmup)
            found = [index.search(q, TOP_K)[1][0].tolist() for q in fq]
            out.metric(f"{t.prefix}_recall", float_recall(found, ds))
    bbase, bqueries = binary_codes(ds)
    bq = [q[None, :] for q in bqueries[: args.flat_queries]]
    dim_bits = bbase.shape[1] * 8
    for prefix in ("bin_flat", "bin_ivf"):
        with out.phase(prefix, metric_keys(prefix)):
            t0 = time.perf_counter()
            if prefix == "bin_flat":
                bindex: Any = faiss.IndexBinaryFlat(dim_bits)
            else:
                bindex = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(dim_bits), dim_bits, args.nlist)
                bindex.train(bbase)
                bindex.nprobe = args.nprobe
            bindex.add(bbase)
            out.metric(f"{prefix}_index_s", time.perf_counter() - t0)
            _faiss_latency(out, prefix, bindex, bq, args.warmup)
            found = [bindex.search(q, TOP_K)[1][0].tolist() for q in bq]
            out.metric(f"{prefix}_recall", hamming_recall(found, bbase, bqueries[: len(bq)]))


def _faiss_params(index: Any, common: dict[str, Any], extra: dict[str, Any]) -> None:
    import faiss

    space = faiss.ParameterSpace()
    for name, value in {**common, **extra}.items():
        if name == "qb":  # RaBitQ's query bits: no ParameterSpace name
            faiss.downcast_index(faiss.extract_index_ivf(index)).qb = value
        else:
            space.set_index_parameter(index, name, value)


def _faiss_latency(out: ResultWriter, prefix: str, index: Any, queries: list[np.ndarray], warmup: int) -> None:
    for q in queries[:warmup]:
        index.search(q, TOP_K)
    samples, _ = timed_calls(lambda q: index.search(q, TOP_K), queries)
    record_latency(out, prefix, samples)
