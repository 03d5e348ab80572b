"""Deterministic benchmark data and exact ground truth, generated once and cached on disk.

Every target must see byte-identical vectors, scalars and queries, and recall must be measured
against the same exact answer, so the orchestrator builds the data set here (seeded numpy, no
download) and hands the workloads a directory of ``.npy`` files. The data is clustered (gaussian
blobs of uneven size and spread) so that IVF partitioning behaves as on real embeddings rather
than on uniform noise, where every index looks equally bad; the blobs overlap enough that the
default IVF_FLAT (nlist=1024, nprobe=16) finds ~95% of the true neighbours, not a trivial 100%,
so a recall difference between two engines shows up.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.common import BUCKETS, DATASET_FILES, FILTER_THRESHOLD, TOP_K

GENERATOR_VERSION = 2
_CHUNK = 20_000


@dataclass(frozen=True)
class DatasetSpec:
    """What determines a data set; its hash names the cache directory."""

    rows: int
    dim: int
    clusters: int
    queries: int
    filtered_queries: int
    seed: int

    def key(self) -> str:
        blob = json.dumps({**asdict(self), "v": GENERATOR_VERSION, "k": TOP_K}, sort_keys=True)
        digest = hashlib.sha256(blob.encode()).hexdigest()[:10]
        return f"n{self.rows}-d{self.dim}-c{self.clusters}-q{self.queries}-s{self.seed}-{digest}"


def _blobs(
    rng: np.random.Generator,
    count: int,
    centers: np.ndarray,
    weights: np.ndarray,
    spread: np.ndarray,
) -> np.ndarray:
    out = np.empty((count, centers.shape[1]), dtype=np.float32)
    for start in range(0, count, _CHUNK):
        stop = min(start + _CHUNK, count)
        which = rng.choice(len(centers), size=stop - start, p=weights)
        noise = rng.standard_normal((stop - start, centers.shape[1]), dtype=np.float32)
        out[start:stop] = centers[which] + noise * spread[which, None]
    return out


def exact_topk(base: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Exact L2 top-k ids (brute force, float64), optionally among rows where ``mask`` is true."""
    q = queries.astype(np.float64)
    q_norm = (q * q).sum(axis=1, keepdims=True)
    best_d = np.full((len(q), k), np.inf)
    best_i = np.full((len(q), k), -1, dtype=np.int64)
    for start in range(0, len(base), _CHUNK):
        chunk = base[start : start + _CHUNK].astype(np.float64)
        d = q_norm - 2.0 * (q @ chunk.T) + (chunk * chunk).sum(axis=1)[None, :]
        if mask is not None:
            d[:, ~mask[start : start + len(chunk)]] = np.inf
        ids = np.broadcast_to(np.arange(start, start + len(chunk), dtype=np.int64), d.shape)
        all_d = np.concatenate([best_d, d], axis=1)
        all_i = np.concatenate([best_i, ids], axis=1)
        part = np.argpartition(all_d, k - 1, axis=1)[:, :k]
        best_d = np.take_along_axis(all_d, part, axis=1)
        best_i = np.take_along_axis(all_i, part, axis=1)
    order = np.argsort(best_d, axis=1, kind="stable")
    return np.take_along_axis(best_i, order, axis=1)


def generate(spec: DatasetSpec, out_dir: Path) -> None:
    """Write the data set for ``spec`` into ``out_dir`` (must exist and be empty)."""
    rng = np.random.default_rng(spec.seed)
    centers = rng.normal(0.0, 1.0, (spec.clusters, spec.dim)).astype(np.float32)
    weights = rng.lognormal(0.0, 0.5, spec.clusters)
    weights /= weights.sum()
    spread = rng.uniform(0.9, 1.4, spec.clusters).astype(np.float32)
    base = _blobs(rng, spec.rows, centers, weights, spread)
    scores = rng.random(spec.rows)
    buckets = rng.integers(0, BUCKETS, spec.rows, dtype=np.int64)

    qrng = np.random.default_rng(spec.seed + 1)
    queries = _blobs(qrng, spec.queries, centers, weights, spread)

    gt = exact_topk(base, queries, TOP_K)
    nf = min(spec.filtered_queries, spec.queries)
    gt_filtered = exact_topk(base, queries[:nf], TOP_K, mask=scores > FILTER_THRESHOLD)

    arrays = {
        "base": base,
        "queries": queries,
        "scores": scores,
        "buckets": buckets,
        "gt": gt,
        "gt_filtered": gt_filtered,
    }
    assert set(arrays) == set(DATASET_FILES)
    for name, arr in arrays.items():
        np.save(out_dir / f"{name}.npy", arr)
    meta = {
        **asdict(spec),
        "generator_version": GENERATOR_VERSION,
        "top_k": TOP_K,
        "filter_selectivity": float((scores > FILTER_THRESHOLD).mean()),
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1))


def ensure_dataset(spec: DatasetSpec, cache_root: Path) -> tuple[Path, bool]:
    """Return the cached data set directory for ``spec``, generating it if needed.

    The second value tells whether the data set was generated now (False: cache hit).
    """
    final = cache_root / spec.key()
    if (final / "meta.json").exists():
        return final, False
    # a private scratch dir, renamed into place when complete: two benches at once never see
    # (or clobber) a half-written data set
    tmp = cache_root / f"{spec.key()}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    generate(spec, tmp)
    if (final / "meta.json").exists():  # another run finished first: same bytes, keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        return final, True
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final, True


def add_ab_args(ap: argparse.ArgumentParser) -> None:
    """Options of the side-by-side benches (bench.cluster_ab, bench.faiss_ab): data and IVF params."""
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--nprobe", type=int, default=16)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work-dir", type=Path, default=Path(__file__).resolve().parent.parent / ".bench")


def ab_dataset(args: argparse.Namespace) -> Path:
    """The cached data set of bench.run's defaults for ``add_ab_args`` options (generated if missing)."""
    spec = DatasetSpec(
        rows=args.rows, dim=args.dim, clusters=max(10, args.rows // 100), queries=args.queries,
        filtered_queries=200, seed=42,
    )  # fmt: skip
    return ensure_dataset(spec, args.work_dir / "data")[0]
