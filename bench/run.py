"""`make bench`: run one pymilvus workload against several targets and compare them.

Speed goals for Quiver are checked against this table, never in the test suite. For each target
(milvus-lite 2.5.1 as the baseline, then Quiver standalone, and optionally a Quiver cluster, raw
faiss, or any running server) it prepares the target, runs the workload in a separate process
under that target's own Python (so pymilvus versions never clash), collects the JSON the workload
writes, prints a side-by-side table with ratios against the baseline and writes everything to
``bench/results/latest.json``.

    .venv/bin/python -m bench.run                      # 100k x 128, milvus-lite vs quiver
    .venv/bin/python -m bench.run --quick              # 20k rows: a 1-2 minute smoke run
    .venv/bin/python -m bench.run --targets milvus-lite,milvus-lite#2,faiss-raw
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.dataset import DatasetSpec, ensure_dataset
from bench.metrics import Params, catalogue
from bench.report import (
    TargetResult,
    add_recall_matched,
    compute_ratios,
    render_notes,
    render_summary,
    render_table,
)
from bench.targets import RunContext, Target, TargetUnavailable, child_env, make_target, stop_process_group

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TARGETS = "milvus-lite,quiver-standalone,quiver-cluster,faiss-raw"
WORKLOAD_FLAGS = (
    "insert_batch", "nlist", "nprobe", "hnsw_m", "hnsw_efc", "hnsw_ef",
    "warmup", "batch_nq", "batch_rounds", "scalar_reps", "count_reps",
    "nprobe_sweep", "sweep_queries", "flat_queries", "rpc_timeout",
)  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--targets",
        default=DEFAULT_TARGETS,
        help=f"comma-separated; first is the baseline [{DEFAULT_TARGETS}]",
    )
    p.add_argument(
        "--quick", action="store_true", help="small sizes for a smoke run (20k rows, nlist 256, 300 queries)"
    )
    g = p.add_argument_group("data set (deterministic, cached under --work-dir/data)")
    g.add_argument("--rows", type=int, default=100_000)
    g.add_argument("--dim", type=int, default=128)
    g.add_argument("--clusters", type=int, default=1000)
    g.add_argument("--queries", type=int, default=1000, help="sequential nq=1 searches (recall is over these)")
    g.add_argument("--filtered-queries", type=int, default=200)
    g.add_argument("--seed", type=int, default=42)
    w = p.add_argument_group("workload")
    w.add_argument("--insert-batch", type=int, default=10_000)
    w.add_argument("--nlist", type=int, default=1024)
    w.add_argument("--nprobe", type=int, default=16)
    w.add_argument("--hnsw", action=argparse.BooleanOptionalAction, default=True, help="also build and search HNSW")
    w.add_argument("--hnsw-m", type=int, default=16)
    w.add_argument("--hnsw-efc", type=int, default=128)
    w.add_argument("--hnsw-ef", type=int, default=64)
    w.add_argument("--nprobe-sweep", default="1,2,4,8,16,32,64", help="for the recall-matched IVF rows")
    w.add_argument("--sweep-queries", type=int, default=200)
    w.add_argument("--flat-queries", type=int, default=300, help="exact (FLAT) searches per target")
    w.add_argument("--warmup", type=int, default=50)
    w.add_argument("--batch-nq", type=int, default=100)
    w.add_argument("--batch-rounds", type=int, default=10)
    w.add_argument("--scalar-reps", type=int, default=100)
    w.add_argument("--count-reps", type=int, default=30)
    r = p.add_argument_group("run")
    r.add_argument("--target-timeout", type=float, default=300.0, help="seconds per target workload")
    r.add_argument(
        "--rpc-timeout", type=float, default=60.0, help="seconds for one client call; a hung server fails fast"
    )
    r.add_argument("--startup-timeout", type=float, default=90.0, help="seconds for a server to answer GetVersion")
    r.add_argument("--work-dir", type=Path, default=REPO / ".bench", help="virtualenvs, data sets, logs")
    r.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "latest.json")
    args = p.parse_args(argv)
    if args.quick:
        defaults = {
            "rows": 100_000,
            "clusters": 1000,
            "queries": 1000,
            "nlist": 1024,
            "filtered_queries": 200,
        }
        quick = {"rows": 20_000, "clusters": 200, "queries": 300, "nlist": 256, "filtered_queries": 100}
        for key, value in quick.items():
            if getattr(args, key) == defaults[key]:
                setattr(args, key, value)
    return args


def workload_argv(args: argparse.Namespace) -> list[str]:
    out: list[str] = []
    for name in WORKLOAD_FLAGS:
        out += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    out.append("--hnsw" if args.hnsw else "--no-hnsw")
    return out


def run_target(target: Target, ctx: RunContext, args: argparse.Namespace, dataset_dir: Path) -> TargetResult:
    """Prepare, start, run the workload against, and stop one target; never raises."""
    res = TargetResult(name=target.name, label=target.label)
    t0 = time.monotonic()
    load_before = os.getloadavg()[0]
    slug = target.name.replace("#", "-").replace(":", "_").replace("/", "_")
    out_json = ctx.tmp / f"{slug}.json"
    log = ctx.logs / f"{slug}-workload.log"
    res.log = str(log)
    try:
        ctx.log(f"{target.label}: preparing")
        target.prepare(ctx)
        with target.running(ctx) as ep:
            cmd = [str(ep.python), "-m", ep.module, "--uri", ep.uri, "--dataset", str(dataset_dir)]
            cmd += ["--out", str(out_json), "--target", target.name, *workload_argv(args)]
            ctx.log(f"{target.label}: running workload (timeout {args.target_timeout:.0f}s, log {log})")
            with log.open("wb") as fh:
                proc = subprocess.Popen(
                    cmd,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=str(ctx.tmp),
                    env={**child_env(ctx), **ep.env},
                    start_new_session=True,
                )
                try:
                    rc: int | None = proc.wait(timeout=args.target_timeout)
                except subprocess.TimeoutExpired:
                    rc = None
                finally:
                    stop_process_group(proc, grace_s=5.0)
            data: dict[str, Any] = json.loads(out_json.read_text()) if out_json.exists() else {}
            res.metrics = dict(data.get("metrics", {}))
            res.errors = dict(data.get("errors", {}))
            res.info = dict(data.get("info", {}))
            if rc is None:
                phase = data.get("current_phase") or "?"
                res.reason = f"workload timed out after {args.target_timeout:.0f}s in phase '{phase}'"
                for m in METRIC_KEYS:
                    if m not in res.metrics:
                        res.errors.setdefault(m, res.reason)
            elif not data.get("finished"):
                res.reason = f"workload exited with code {rc}: {_tail(log)}"
            if not res.metrics:
                res.status = "failed"
                res.reason = res.reason or f"no metrics: {_first_error(res.errors) or _tail(log)}"
            elif res.reason or res.errors:
                res.status = "partial"
    except TargetUnavailable as exc:
        res.status, res.reason = "failed", str(exc)
    except Exception as exc:  # one broken target must not take the whole bench down
        res.status, res.reason = "failed", f"{type(exc).__name__}: {exc}"
    res.info["loadavg_1m_before"] = round(load_before, 2)
    res.wall_s = time.monotonic() - t0
    ctx.log(f"{target.label}: {res.status} in {res.wall_s:.1f}s{' - ' + res.reason if res.reason else ''}")
    return res


METRIC_KEYS: list[str] = []


def _first_error(errors: dict[str, str]) -> str:
    return next(iter(errors.values()), "")


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(ln.strip() for ln in text[-lines:])[-400:]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    targets = [make_target(s) for s in args.targets.split(",") if s.strip()]
    params = Params(args.nprobe, args.nlist, args.batch_nq, args.hnsw_m, args.hnsw_efc, args.hnsw_ef)
    METRIC_KEYS[:] = [m.key for m in catalogue(params) if args.hnsw or not m.key.startswith("hnsw_")]

    work: Path = args.work_dir.resolve()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    logs = work / "logs" / stamp
    logs.mkdir(parents=True, exist_ok=True)
    pypath = work / "pypath"
    pypath.mkdir(parents=True, exist_ok=True)
    link = pypath / "bench"
    if not (link.is_symlink() and link.resolve() == (REPO / "bench").resolve()):
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(REPO / "bench", target_is_directory=True)
    tmp = Path(tempfile.mkdtemp(prefix="qbench-"))
    ctx = RunContext(
        repo=REPO,
        work=work,
        logs=logs,
        tmp=tmp,
        main_python=Path(sys.executable),
        pypath=pypath,
        startup_timeout=args.startup_timeout,
    )

    spec = DatasetSpec(args.rows, args.dim, args.clusters, args.queries, args.filtered_queries, args.seed)
    t0 = time.monotonic()
    dataset_dir, generated = ensure_dataset(spec, work / "data")
    what = "generated" if generated else "cached"
    ctx.log(f"data set {what}: {dataset_dir.name} ({time.monotonic() - t0:.1f}s)")
    dataset_meta = json.loads((dataset_dir / "meta.json").read_text())

    results: list[TargetResult] = []
    try:
        for target in targets:
            results.append(run_target(target, ctx, args, dataset_dir))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    aim = add_recall_matched(results, args.nprobe)
    metrics = catalogue(dataclasses.replace(params, matched_recall=aim))
    table = render_table(results, metrics)
    print()
    print(
        f"Quiver bench: {args.rows:,} x {args.dim} float32, {args.clusters} clusters, L2, top-10, "
        f"consistency=Bounded, {args.queries} nq=1 queries; baseline = {results[0].label}"
    )
    print(render_summary(results))
    print()
    print(table)
    print()
    notes = render_notes(results, args.nprobe)
    for line in notes:
        print(f"note: {line}")
    if notes:
        print()

    doc = {
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "dataset": dataset_meta,
        "baseline": results[0].name if results else None,
        "metrics": [
            {"key": m.key, "label": m.label, "unit": m.unit, "better": m.better}
            for m in metrics
            if m.key in METRIC_KEYS
        ],
        "targets": [r.to_json() for r in results],
        "ratios": compute_ratios(results, metrics),
        "table": table,
        "notes": notes,
        "wall_s": round(time.monotonic() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    print(f"[bench] results written to {args.out} ({doc['wall_s']}s in all; logs in {logs})")
    return 0 if any(r.status != "failed" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
