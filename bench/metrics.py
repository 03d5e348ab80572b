"""The catalogue of benchmark metrics: row order, labels, units and which direction is better.

The workloads only emit ``key -> number``; everything a reader needs to interpret a number (what
it measures, its unit, whether a bigger ratio is good news) lives here, so the table, the JSON
file and any later comparison agree on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    better: Better
    digits: int = 2
    compare: bool = True  # False: shown for context, no ratio (e.g. the nprobe a target needed)

    def fmt(self, value: float) -> str:
        if self.unit == "recall":
            return f"{value:.4f}"
        if self.unit == "nprobe":
            return f"{value:.0f}"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.1f}"
        return f"{value:.{self.digits}f}"


@dataclass(frozen=True)
class Params:
    """The workload parameters that metric labels mention."""

    nprobe: int
    nlist: int
    batch_nq: int
    hnsw_m: int
    hnsw_efc: int
    hnsw_ef: int
    matched_recall: float | None = None  # the baseline's recall that the recall-matched rows aim at


def catalogue(p: Params) -> list[Metric]:
    """All metrics in table order; labels carry the parameters that the numbers depend on."""
    target = f"{p.matched_recall:.3f}" if p.matched_recall is not None else "baseline's"
    return [
        Metric("insert_rows_per_s", "insert (10k-row batches)", "rows/s", "higher", 0),
        Metric("flush_s", "flush", "s", "lower", 3),
        Metric("ivf_index_s", f"IVF_FLAT create_index nlist={p.nlist}", "s", "lower"),
        Metric("ivf_load_s", "IVF_FLAT load_collection", "s", "lower", 3),
        Metric("ivf_nq1_p50_ms", f"IVF_FLAT search nq=1 top-10 p50 (nprobe={p.nprobe})", "ms", "lower", 3),
        Metric("ivf_nq1_p99_ms", "IVF_FLAT search nq=1 top-10 p99", "ms", "lower", 3),
        Metric("ivf_nq1_qps", "IVF_FLAT search nq=1 sequential QPS", "q/s", "higher", 0),
        Metric(f"ivf_nq{p.batch_nq}_qps", f"IVF_FLAT search nq={p.batch_nq} QPS", "q/s", "higher", 0),
        Metric("ivf_recall", f"IVF_FLAT recall@10 (nprobe={p.nprobe})", "recall", "higher"),
        Metric("ivf_matched_p50_ms", f"IVF_FLAT p50 at recall >= {target} (recall-matched)", "ms", "lower", 3),
        Metric("ivf_matched_nprobe", "  nprobe that reached it", "nprobe", "lower", compare=False),
        Metric("filtered_p50_ms", f"filtered search p50 (score > 0.5, nprobe={p.nprobe})", "ms", "lower", 3),
        Metric("filtered_recall", "filtered recall@10", "recall", "higher"),
        Metric("query_id_in_p50_ms", "query `id in [100 ids]` p50", "ms", "lower", 3),
        Metric("query_range_p50_ms", "query int range, limit 100, p50", "ms", "lower", 3),
        Metric("query_tag_p50_ms", "query varchar ==, limit 100, p50", "ms", "lower", 3),
        Metric("count_p50_ms", "count(*) p50", "ms", "lower", 3),
        Metric("flat_index_s", "FLAT create_index", "s", "lower", 3),
        Metric("flat_load_s", "FLAT load_collection", "s", "lower", 3),
        Metric("flat_nq1_p50_ms", "FLAT (exact) search nq=1 p50", "ms", "lower", 3),
        Metric("flat_nq1_p99_ms", "FLAT (exact) search nq=1 p99", "ms", "lower", 3),
        Metric("flat_nq1_qps", "FLAT (exact) search nq=1 QPS", "q/s", "higher", 0),
        Metric("flat_recall", "FLAT recall@10 (must be 1)", "recall", "higher"),
        Metric("hnsw_index_s", f"HNSW create_index M={p.hnsw_m} efC={p.hnsw_efc}", "s", "lower"),
        Metric("hnsw_load_s", "HNSW load_collection", "s", "lower", 3),
        Metric("hnsw_nq1_p50_ms", f"HNSW search nq=1 top-10 p50 (ef={p.hnsw_ef})", "ms", "lower", 3),
        Metric("hnsw_nq1_p99_ms", "HNSW search nq=1 p99", "ms", "lower", 3),
        Metric("hnsw_nq1_qps", "HNSW search nq=1 sequential QPS", "q/s", "higher", 0),
        Metric("hnsw_recall", f"HNSW recall@10 (ef={p.hnsw_ef})", "recall", "higher"),
        *_type_rows("ivf_sq8", f"IVF_SQ8 nlist={p.nlist}", f"nprobe={p.nprobe}"),
        *_type_rows("ivf_pq", f"IVF_PQ nlist={p.nlist} m=16 nbits=8", f"nprobe={p.nprobe}"),
        *_type_rows(
            "ivf_rabitq", f"IVF_RABITQ nlist={p.nlist} refine SQ8", f"nprobe={p.nprobe} refine_k=4 rbq_bits_query=8"
        ),
        *_type_rows("scann", f"SCANN nlist={p.nlist}", f"nprobe={p.nprobe} reorder_k=40"),
        *_type_rows("diskann", "DISKANN max_degree=56 search_list_size=100", "search_list=40"),
        *_type_rows("bin_flat", "BIN_FLAT (HAMMING, 128 bits)", "exact"),
        *_type_rows("bin_ivf", f"BIN_IVF_FLAT nlist={p.nlist}", f"nprobe={p.nprobe}"),
    ]


def _type_rows(prefix: str, name: str, search: str) -> list[Metric]:
    """Build time, nq=1 p50 and recall of one more index type (bench/index_types.py)."""
    return [
        Metric(f"{prefix}_index_s", f"{name} create_index", "s", "lower"),
        Metric(f"{prefix}_nq1_p50_ms", f"{name} search nq=1 p50 ({search})", "ms", "lower", 3),
        Metric(f"{prefix}_recall", f"{name} recall@10 ({search})", "recall", "higher"),
    ]
