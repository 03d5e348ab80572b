"""`python -m bench.scaling`: how a local cluster's reads scale with querynodes, and how fast it heals.

Separate from ``bench.run`` (whose workload and table stay as they are): this one starts its own
LocalCluster with one querynode, loads a collection with several shards, and for 1, 2, 3
querynodes measures search QPS, p99 latency and the CPU seconds (querynodes + proxy) spent per
query. A search goes proxy -> shard leader (one per shard and replica) -> the querynodes of the
replica holding that shard's sealed segments, so a joining querynode helps once the balancer has
moved shard leaders *or* sealed segments onto it: the "rebalance" column is the time from a
querynode joining until it serves part of the collection (as a leader or a worker), and the
"leaders" / "serving" columns show over how many querynodes the shard leaders and all the
segments are spread. It also reports the time from a kill -9 of a querynode (one replica) until
searches succeed again.

    .venv/bin/python -m bench.scaling                 # 20k x 64, 4 shards, 10 s per row
    .venv/bin/python -m bench.scaling --rows 5000 --seconds 4
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import Collection, DataType, MilvusClient, connections

from quiver.devcluster import ClusterLayout, LocalCluster

NAME = "bench_scaling"
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process (from /proc), 0 when it is gone."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15)


def _setup(uri: str, rows: int, dim: int, shards: int) -> np.ndarray:
    client = MilvusClient(uri=uri, timeout=120)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=dim)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(NAME, schema=schema, index_params=index, num_shards=shards)
    vecs = np.random.default_rng(7).random((rows, dim), dtype=np.float32)
    for lo in range(0, rows, 2000):
        client.insert(NAME, [{"id": i, "v": vecs[i].tolist()} for i in range(lo, min(rows, lo + 2000))])
    client.flush(NAME)
    client.release_collection(NAME)
    client.load_collection(NAME)
    client.close()
    return vecs


def _leaders() -> set[int]:
    replicas = Collection(NAME, using="bench-scaling").get_replicas()
    return {s.shard_leader for g in replicas.groups for s in g.shards}


def _serving() -> set[int]:
    """Querynodes that lead a shard or hold its sealed segments (GetReplicas shard nodes)."""
    replicas = Collection(NAME, using="bench-scaling").get_replicas()
    return {n for g in replicas.groups for s in g.shards for n in s.shard_nodes} | _leaders()


def _wait(cond: Any, timeout: float) -> float:
    started = time.monotonic()
    while not cond():
        if time.monotonic() - started > timeout:
            raise TimeoutError("condition not reached")
        time.sleep(0.1)
    return time.monotonic() - started


def _search_load(uri: str, queries: np.ndarray, seconds: float, threads: int) -> tuple[int, int, list[float]]:
    """(ok, failed, latencies in s) of ``threads`` clients searching for ``seconds``."""
    lat: list[float] = []
    failed = [0]
    stop = time.monotonic() + seconds

    def run(seed: int) -> None:
        client = MilvusClient(uri=uri, timeout=30)
        i = seed
        while time.monotonic() < stop:
            q = queries[i % len(queries)]
            i += threads
            t0 = time.perf_counter()
            try:
                client.search(NAME, data=[q.tolist()], limit=10, consistency_level="Bounded")
                lat.append(time.perf_counter() - t0)
            except Exception:
                failed[0] += 1
        client.close()

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return len(lat), failed[0], lat


def _row(cluster: LocalCluster, queries: np.ndarray, seconds: float, threads: int) -> dict[str, float]:
    procs = cluster.live("querynode") + cluster.proxies()
    cpu0 = sum(cpu_seconds(p.pid) for p in procs)
    t0 = time.monotonic()
    ok, failed, lat = _search_load(cluster.uri, queries, seconds, threads)
    wall = time.monotonic() - t0
    cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu0
    return {
        "qps": ok / wall,
        "p99_ms": float(np.percentile(lat, 99) * 1000) if lat else float("nan"),
        "cpu_ms_per_query": 1000 * cpu / max(ok, 1),
        "failed": failed,
    }


def _recovery_after_kill(cluster: LocalCluster, queries: np.ndarray) -> float:
    """Seconds from kill -9 of a querynode (one replica) until a search succeeds after the failures."""
    client = MilvusClient(uri=cluster.uri, timeout=30)
    victim = cluster.live("querynode")[-1]
    killed = time.monotonic()
    victim.kill()
    failed_once = False
    while time.monotonic() - killed < 120:
        try:
            client.search(NAME, data=[queries[0].tolist()], limit=10, consistency_level="Bounded")
            if failed_once:
                break
        except Exception:
            failed_once = True
        time.sleep(0.02)
    client.close()
    return time.monotonic() - killed


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10.0, help="search load per row")
    ap.add_argument("--threads", type=int, default=8, help="concurrent search clients")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="quiver-bench-scaling-") as tmp:
        cluster = LocalCluster(Path(tmp), ClusterLayout(querynodes=1))
        cluster.start_servers()
        try:
            cluster.start_roles()
            vecs = _setup(cluster.uri, args.rows, args.dim, args.shards)
            connections.connect("bench-scaling", uri=cluster.uri)
            queries = vecs[:: max(1, len(vecs) // 200)] + 0.01
            rows: list[tuple[int, dict[str, float], float]] = []
            for n in (1, 2, 3):
                join = 0.0
                if n > 1:
                    cluster.add_role("querynode")
                    join = _wait(lambda n=n: len(_serving()) >= n, 120)
                    time.sleep(5)  # the balancer keeps moving segments a few at a time: let it settle
                row = _row(cluster, queries, args.seconds, args.threads)
                row["leaders"], row["serving"] = len(_leaders()), len(_serving())
                rows.append((n, row, join))
            recovery = _recovery_after_kill(cluster, queries)
        finally:
            connections.disconnect("bench-scaling")
            cluster.stop()
    print(f"\n{args.rows} x {args.dim} FLAT, {args.shards} shards, 1 replica, {args.threads} search clients")
    print(f"{'querynodes':>10} {'QPS':>8} {'p99 ms':>8} {'CPU ms/q':>9} {'failed':>7} {'rebalance s':>12} "
          f"{'leaders':>8} {'serving':>8}")
    for n, r, join in rows:
        print(f"{n:>10} {r['qps']:>8.1f} {r['p99_ms']:>8.1f} {r['cpu_ms_per_query']:>9.2f} {int(r['failed']):>7} "
              f"{join:>12.1f} {int(r['leaders']):>8} {int(r['serving']):>8}")
    print(f"recovery after kill -9 of a querynode (1 replica): {recovery:.1f} s")


if __name__ == "__main__":
    main()
