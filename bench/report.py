"""Turns per-target results into the side-by-side comparison table and ratio figures.

The first target is the baseline (milvus-lite by default); each other target gets a ratio column
``target/baseline`` whose cells say whether that ratio is better or worse, since for latencies a
ratio above 1 is bad news and for throughput or recall it is good news. Missing numbers show as
``n/a`` with a numbered footnote giving the reason, so a target that could not run (or a phase it
does not support yet) is visible in the table instead of crashing the bench.
``python -m bench.report [results.json]`` prints the table of a saved run again.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.metrics import Metric

SAME_BAND = 0.05  # ratios within +-5% are shown as "~same"
BUSY_LOAD = 1.0  # 1-minute load average above which a column's numbers are flagged as noisy
# below these both values are within timer/scheduler noise: the ratio says nothing
NOISE_FLOOR = {"s": 0.01, "ms": 0.02}


@dataclass
class TargetResult:
    """What the orchestrator knows about one target after running it."""

    name: str
    label: str
    status: str = "ok"  # ok | partial | failed
    reason: str = ""
    wall_s: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    log: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "status": self.status,
            "reason": self.reason,
            "wall_s": round(self.wall_s, 2),
            "metrics": self.metrics,
            "errors": self.errors,
            "info": self.info,
            "log": self.log,
        }


def ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0 or math.isnan(value) or math.isnan(base):
        return None
    return value / base


def verdict(r: float, better: str, values: tuple[float, float] | None = None, unit: str = "") -> str:
    floor = NOISE_FLOOR.get(unit)
    if floor is not None and values is not None and max(values) < floor:
        return "~same (noise)"
    if abs(r - 1.0) <= SAME_BAND:
        return "~same"
    good = r > 1.0 if better == "higher" else r < 1.0
    return "better" if good else "worse"


def add_recall_matched(results: list[TargetResult], nprobe: int, tolerance: float = 0.005) -> float | None:
    """Add the recall-matched IVF rows from each target's nprobe sweep; return the recall aimed at.

    The aim is the baseline's recall at the configured nprobe, on the sweep's queries. For each
    target the fastest sweep point reaching that recall (minus ``tolerance``) gives the p50 and the
    nprobe. This is the fair latency comparison when two engines' recall at the same nprobe differ
    (milvus-lite ignores nprobe altogether: its searches run on a growing segment).
    """
    if not results:
        return None
    base_sweep = results[0].info.get("ivf_sweep") or []
    aim = next((p["recall"] for p in base_sweep if p["nprobe"] == nprobe), None)
    if aim is None:
        return None
    for res in results:
        sweep = res.info.get("ivf_sweep") or []
        if not sweep:
            continue
        ok = [p for p in sweep if p["recall"] >= aim - tolerance]
        if not ok:
            best = max(p["recall"] for p in sweep)
            reason = f"no nprobe in the sweep reaches recall {aim:.3f} (best {best:.3f})"
            res.errors["ivf_matched_p50_ms"] = res.errors["ivf_matched_nprobe"] = reason
            continue
        pick = min(ok, key=lambda p: p["p50_ms"])
        res.metrics["ivf_matched_p50_ms"] = float(pick["p50_ms"])
        res.metrics["ivf_matched_nprobe"] = float(pick["nprobe"])
    return float(aim)


def compute_ratios(results: list[TargetResult], metrics: list[Metric]) -> dict[str, dict[str, Any]]:
    """``{target: {metric: {"ratio": r, "verdict": v}}}`` of every non-baseline target."""
    if not results:
        return {}
    base = results[0]
    out: dict[str, dict[str, Any]] = {}
    for res in results[1:]:
        per: dict[str, Any] = {}
        for m in metrics:
            if not m.compare:
                continue
            r = ratio(res.metrics.get(m.key), base.metrics.get(m.key))
            if r is not None:
                pair = (res.metrics[m.key], base.metrics[m.key])
                per[m.key] = {"ratio": round(r, 4), "verdict": verdict(r, m.better, pair, m.unit)}
        out[res.name] = per
    return out


class _Notes:
    """Numbered footnotes; the same reason for several columns becomes one note naming them."""

    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.who: dict[str, list[str]] = {}

    def ref(self, label: str, text: str) -> str:
        text = " ".join(text.split())
        if text not in self.who:
            self.reasons.append(text)
            self.who[text] = []
        if label not in self.who[text]:
            self.who[text].append(label)
        return f"n/a[{self.reasons.index(text) + 1}]"

    def lines(self) -> list[str]:
        return [f"[{i}] {', '.join(self.who[t])}: {t}" for i, t in enumerate(self.reasons, 1)]


def render_table(results: list[TargetResult], metrics: list[Metric]) -> str:
    """The plain-text table printed at the end of ``make bench``."""
    notes = _Notes()
    base = results[0] if results else None
    header = ["metric", "unit", "better"] + [r.label for r in results]
    header += [f"{r.name}/{base.name}" for r in results[1:]] if base else []
    rows: list[list[str]] = []
    for m in metrics:
        if not any(m.key in r.metrics or m.key in r.errors for r in results):
            continue  # a metric no target was asked for (e.g. HNSW rows with --no-hnsw)
        row = [m.label, m.unit, (m.better if m.compare else "")]
        for r in results:
            if m.key in r.metrics:
                row.append(m.fmt(r.metrics[m.key]))
            elif r.status == "failed":
                row.append(notes.ref(r.label, r.reason))
            elif m.key in r.errors:
                row.append(notes.ref(r.label, r.errors[m.key]))
            else:
                row.append("-")
        for r in results[1:]:
            rr = ratio(r.metrics.get(m.key), base.metrics.get(m.key)) if base and m.compare else None
            if rr is None or base is None:
                row.append("-")
            else:
                pair = (r.metrics[m.key], base.metrics[m.key])
                row.append(f"{rr:.2f}x {verdict(rr, m.better, pair, m.unit)}")
        rows.append(row)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    numeric_from = 3

    def line(cells: list[str]) -> str:
        parts = [
            c.ljust(w) if i < numeric_from else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(parts) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    lines = [line(header), sep, *(line(r) for r in rows)]
    if notes.reasons:
        lines.append("")
        lines.extend(notes.lines())
    return "\n".join(lines)


def render_notes(results: list[TargetResult], nprobe: int) -> list[str]:
    """Warnings a reader needs before trusting the IVF rows: unequal recall, an ignored nprobe."""
    notes: list[str] = []
    base = results[0] if results else None
    for res in results:
        sweep = res.info.get("ivf_sweep") or []
        recalls = [p["recall"] for p in sweep]
        if len(recalls) >= 3 and max(recalls) - min(recalls) < 0.01:
            lo, hi = min(p["nprobe"] for p in sweep), max(p["nprobe"] for p in sweep)
            notes.append(
                f"{res.label}: recall@10 is {recalls[0]:.3f} for every nprobe from {lo} to {hi}: "
                "it ignores nprobe (milvus-lite searches its growing segment with fixed parameters)."
            )
    if base is not None and "ivf_recall" in base.metrics:
        for res in results[1:]:
            r = res.metrics.get("ivf_recall")
            if r is not None and abs(r - base.metrics["ivf_recall"]) > 0.02:
                notes.append(
                    f"{res.label}: recall@10 at nprobe={nprobe} is {r:.3f} vs {base.metrics['ivf_recall']:.3f} "
                    f"for {base.label}: the nprobe={nprobe} rows compare unequal work; use the "
                    "recall-matched row and the FLAT rows."
                )
    return notes


def render_summary(results: list[TargetResult]) -> str:
    """One line per target: status, wall time and the versions that produced the numbers."""
    out = []
    for r in results:
        keys = ("pymilvus", "server_version", "milvus_lite", "faiss", "omp_threads")
        versions = ", ".join(f"{k}={r.info[k]}" for k in keys if k in r.info)
        status = r.status if not r.reason else f"{r.status}: {r.reason}"
        load = r.info.get("loadavg_1m_before")
        if isinstance(load, (int, float)) and load > BUSY_LOAD:
            status += f" [machine busy before this run: load {load:.1f}; numbers are noisy]"
        out.append(f"- {r.label}: {status} ({r.wall_s:.1f}s){' [' + versions + ']' if versions else ''}")
    return "\n".join(out)


def rerender(path: Path) -> str:
    """The table and notes of a saved results file, as ``bench.run`` printed them."""
    from bench.metrics import Params, catalogue

    doc = json.loads(path.read_text())
    cfg = doc["config"]
    results = [
        TargetResult(**{k: t[k] for k in ("name", "label", "status", "reason", "wall_s", "metrics", "errors", "info")})
        for t in doc["targets"]
    ]
    aim = add_recall_matched(results, cfg["nprobe"])
    params = Params(cfg["nprobe"], cfg["nlist"], cfg["batch_nq"], cfg["hnsw_m"], cfg["hnsw_efc"], cfg["hnsw_ef"], aim)
    parts = [render_summary(results), "", render_table(results, catalogue(params)), ""]
    parts += [f"note: {n}" for n in render_notes(results, cfg["nprobe"])]
    return "\n".join(parts)


if __name__ == "__main__":
    default = Path(__file__).resolve().parent / "results" / "latest.json"
    print(rerender(Path(sys.argv[1]) if len(sys.argv) > 1 else default))
