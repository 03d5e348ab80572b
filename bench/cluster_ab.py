"""`python -m bench.cluster_ab`: the cluster's cost over standalone, measured side by side.

Issue #3's goals compare a local cluster with standalone: nq=1 search p50 at most 1 ms above,
insert rows/s at least 0.7x. On a shared 2-core machine, two runs minutes apart see different
background load, and that noise is larger than the difference being measured. So this starts
both at once on the same data and alternates every call between them (A B, B A, ...): whatever
load the machine has hits both equally, and the difference of their medians is the cost of the
cluster's extra processes and hops.

    .venv/bin/python -m bench.cluster_ab                 # 100k x 128 IVF_FLAT, 1000 searches x 3 rounds
    .venv/bin/python -m bench.cluster_ab --rows 20000 --rounds 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from pymilvus import DataType, MilvusClient

from bench.common import ivf_index_and_load
from bench.dataset import ab_dataset, add_ab_args
from quiver.devcluster import ClusterLayout, LocalCluster
from tests.e2e.server import StandaloneServer

NAME = "bench_ab"
BATCH = 10_000


def _create(uri: str, dim: int) -> MilvusClient:
    client = MilvusClient(uri=uri)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=dim)
    client.create_collection(NAME, schema=schema, consistency_level="Bounded")
    return client


def _insert_interleaved(clients: list[MilvusClient], base: np.ndarray) -> list[float]:
    """Insert every batch into each target, alternating which goes first; seconds spent per target."""
    spent = [0.0] * len(clients)
    for k, start in enumerate(range(0, len(base), BATCH)):
        rows = [{"id": i, "v": base[i].tolist()} for i in range(start, min(start + BATCH, len(base)))]
        order = range(len(clients)) if k % 2 == 0 else reversed(range(len(clients)))
        for t in order:
            t0 = time.perf_counter()
            clients[t].insert(NAME, rows)
            spent[t] += time.perf_counter() - t0
    return spent


def _placement(client: MilvusClient) -> str:
    """Which querynodes lead each shard and which serve its sealed segments (the fan-out a search pays)."""
    parts = []
    for replica in client.describe_replica(NAME):
        for shard in replica.shards:
            parts.append(f"shard leader {shard.shard_leader}, served by {sorted(shard.shard_nodes)}")
    return "; ".join(parts)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_ab_args(ap)
    args = ap.parse_args(argv)
    data = ab_dataset(args)
    base = np.load(data / "base.npy")
    queries = np.load(data / "queries.npy")
    with tempfile.TemporaryDirectory(prefix="quiver-ab-") as tmp:
        standalone = StandaloneServer(Path(tmp) / "standalone")
        cluster = LocalCluster(Path(tmp) / "cluster", ClusterLayout())
        try:
            standalone.start()
            cluster.start_servers()
            cluster.start_roles()
            clients = [_create(standalone.uri, base.shape[1]), _create(cluster.uri, base.shape[1])]
            spent = _insert_interleaved(clients, base)
            for c in clients:
                ivf_index_and_load(c, NAME, "v", len(base), args.nlist)
            time.sleep(5)  # let the cluster's background passes settle

            def one(c: MilvusClient, q: np.ndarray) -> float:
                t0 = time.perf_counter()
                c.search(NAME, data=[q.tolist()], limit=10, search_params={"params": {"nprobe": args.nprobe}})
                return time.perf_counter() - t0

            for q in queries[:100]:  # warm-up
                one(clients[0], q)
                one(clients[1], q)
            print(f"\nstandalone vs local cluster, {len(base):,} x {base.shape[1]}, interleaved calls")
            print(f"cluster: {_placement(clients[1])}")
            print(f"insert ({BATCH:,}-row batches): standalone {len(base) / spent[0]:,.0f} rows/s, "
                  f"cluster {len(base) / spent[1]:,.0f} rows/s, ratio {spent[0] / spent[1]:.2f}x (goal >= 0.7x)")
            for r in range(args.rounds):
                lat: list[list[float]] = [[], []]
                for i, q in enumerate(queries):
                    for t in ((0, 1) if i % 2 == 0 else (1, 0)):
                        lat[t].append(one(clients[t], q))
                a, b = (float(np.median(x)) * 1000 for x in lat)
                print(f"IVF_FLAT nq=1 p50 round {r + 1}: standalone {a:.3f} ms, cluster {b:.3f} ms, "
                      f"difference {b - a:+.3f} ms (goal <= +1 ms)")
            print(f"cluster: {_placement(clients[1])}")
        finally:
            cluster.stop()
            standalone.stop()


if __name__ == "__main__":
    main()
