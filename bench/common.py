"""Pieces shared by the bench orchestrator and the per-target workload scripts.

The workload scripts run under each target's own virtualenv (milvus-lite's has pymilvus 2.5 and
numpy, Quiver's has pymilvus 3), so everything here uses only the standard library and numpy.
Keeping the field names, filter expressions, dataset layout, statistics and the result file
format in one place guarantees that every target runs exactly the same workload and that the
ground truth matches the filters the workloads send.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

COLLECTION = "bench_vectors"
PK_FIELD = "id"
VEC_FIELD = "vec"
SCORE_FIELD = "score"  # Double, uniform in [0, 1): `score > 0.5` keeps ~50% of the rows
BUCKET_FIELD = "bucket"  # Int64 in [0, BUCKETS): range filters
TAG_FIELD = "tag"  # VarChar derived from the bucket: equality filters
BUCKETS = 1000
TAG_MAX_LENGTH = 32
FILTER_THRESHOLD = 0.5
FILTER_EXPR = f"{SCORE_FIELD} > {FILTER_THRESHOLD}"
TOP_K = 10
RESULT_SCHEMA_VERSION = 1


def tag_for(bucket: int) -> str:
    """The VarChar value stored for a row in ``bucket`` (deterministic, no storage needed)."""
    return f"tag_{bucket:04d}"


@dataclass
class Dataset:
    """The arrays one benchmark run works on, as written by ``bench.dataset``."""

    base: np.ndarray  # (rows, dim) float32
    queries: np.ndarray  # (nq, dim) float32
    scores: np.ndarray  # (rows,) float64
    buckets: np.ndarray  # (rows,) int64
    gt: np.ndarray  # (nq, TOP_K) int64: exact L2 neighbours of every query
    gt_filtered: np.ndarray  # (nq_filtered, TOP_K) int64: exact neighbours among score > threshold
    meta: dict[str, Any]

    @property
    def rows(self) -> int:
        return int(self.base.shape[0])

    @property
    def dim(self) -> int:
        return int(self.base.shape[1])


DATASET_FILES = ("base", "queries", "scores", "buckets", "gt", "gt_filtered")


def load_dataset(directory: str | Path) -> Dataset:
    """Load a dataset directory written by ``bench.dataset.ensure_dataset``."""
    d = Path(directory)
    arrays = {name: np.load(d / f"{name}.npy", mmap_mode="r") for name in DATASET_FILES}
    meta = json.loads((d / "meta.json").read_text())
    return Dataset(meta=meta, **{k: np.asarray(v) for k, v in arrays.items()})


def latency_stats(samples_s: Sequence[float], queries_per_call: int = 1) -> dict[str, float]:
    """p50/p99/mean latency in milliseconds and throughput for sequential calls."""
    arr = np.asarray(samples_s, dtype=np.float64)
    total = float(arr.sum())
    return {
        "p50_ms": float(np.percentile(arr, 50) * 1000.0),
        "p99_ms": float(np.percentile(arr, 99) * 1000.0),
        "mean_ms": float(arr.mean() * 1000.0),
        "qps": float(len(arr) * queries_per_call / total) if total > 0 else float("nan"),
    }


def recall_at_k(found: Sequence[Sequence[int]], truth: np.ndarray, k: int = TOP_K) -> float:
    """Mean fraction of the exact top-k ids that a search returned (recall@k)."""
    if len(found) == 0:
        return float("nan")
    hits = 0
    for ids, exact in zip(found, truth, strict=False):
        hits += len(set(int(i) for i in list(ids)[:k]) & set(int(i) for i in exact[:k]))
    return hits / (k * len(found))


def timed_calls(fn: Any, args_list: Sequence[Any]) -> tuple[list[float], list[Any]]:
    """Call ``fn(arg)`` for every arg sequentially; return per-call seconds and the results."""
    samples: list[float] = []
    results: list[Any] = []
    for arg in args_list:
        t0 = time.perf_counter()
        res = fn(arg)
        samples.append(time.perf_counter() - t0)
        results.append(res)
    return samples, results


class ResultWriter:
    """Collects one target's metrics and rewrites the JSON result file after every phase.

    The file is rewritten atomically after each phase so that, if the orchestrator has to kill
    a workload that overran its time budget, the phases that did finish are still reported.
    A failing phase records an error against each metric it would have produced and the
    workload goes on with the next phase.
    """

    def __init__(self, path: str | Path, target: str) -> None:
        self.path = Path(path)
        self.data: dict[str, Any] = {
            "schema": RESULT_SCHEMA_VERSION,
            "target": target,
            "metrics": {},
            "errors": {},
            "info": {},
            "phases": {},
            "current_phase": None,
            "finished": False,
        }
        self.flush()

    def metric(self, key: str, value: float) -> None:
        self.data["metrics"][key] = float(value)

    def info(self, key: str, value: Any) -> None:
        self.data["info"][key] = value

    def error(self, key: str, message: str) -> None:
        self.data["errors"][key] = message

    @contextmanager
    def phase(self, name: str, keys: Sequence[str]) -> Iterator[None]:
        """Run one phase; on failure mark its not-yet-measured metrics with the error."""
        self.data["current_phase"] = name
        self.flush()
        t0 = time.perf_counter()
        try:
            yield
        except Exception as exc:  # a phase failing must not stop the other phases
            detail = getattr(exc, "message", None) or str(exc)
            message = f"{type(exc).__name__}: {detail}".strip()
            message = " ".join(message.split())[:300]
            for key in keys:
                if key not in self.data["metrics"]:
                    self.data["errors"][key] = message
            self.data["phases"][name] = {"ok": False, "error": message, "traceback": traceback.format_exc()}
        else:
            self.data["phases"][name] = {"ok": True}
        finally:
            self.data["phases"].setdefault(name, {})["seconds"] = round(time.perf_counter() - t0, 3)
            self.data["current_phase"] = None
            self.flush()

    def finish(self) -> None:
        self.data["finished"] = True
        self.flush()

    def flush(self) -> None:
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path)


def add_search_args(p: argparse.ArgumentParser) -> None:
    """The index and search options every workload takes, with the same defaults."""
    p.add_argument("--nlist", type=int, default=1024)
    p.add_argument("--nprobe", type=int, default=16)
    p.add_argument("--hnsw", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--hnsw-m", type=int, default=16)
    p.add_argument("--hnsw-efc", type=int, default=128)
    p.add_argument("--hnsw-ef", type=int, default=64)
    p.add_argument("--nprobe-sweep", default="1,2,4,8,16,32,64", help="comma-separated nprobe values")
    p.add_argument("--sweep-queries", type=int, default=200)
    p.add_argument("--flat-queries", type=int, default=300)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--batch-nq", type=int, default=100)
    p.add_argument("--batch-rounds", type=int, default=10)


def ivf_index_and_load(client: Any, collection: str, field: str, rows: int, nlist: int) -> None:
    """Flush, build IVF_FLAT (L2) on ``field``, wait until all ``rows`` are indexed, load."""
    client.flush(collection)
    params = client.prepare_index_params()
    params.add_index(field, index_type="IVF_FLAT", metric_type="L2", params={"nlist": nlist})
    client.create_index(collection, params)
    deadline = time.monotonic() + 600
    while True:
        desc: dict[str, Any] = client.describe_index(collection, field) or {}
        if desc.get("pending_index_rows", 1) == 0 and desc.get("indexed_rows", 0) >= rows:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"index not built: {desc}")
        time.sleep(0.5)
    client.load_collection(collection)
