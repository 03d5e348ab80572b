"""``python -m quiver.devcluster up|down`` — what ``make cluster`` and ``make cluster-down`` run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from quiver.devcluster.cluster import ClusterLayout, LocalCluster, stop_from_state

DEFAULT_DIR = Path(".cluster")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quiver.devcluster")
    parser.add_argument("command", choices=("up", "down"))
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where data, logs and state live")
    parser.add_argument("--querynodes", type=int, default=2)
    parser.add_argument("--datanodes", type=int, default=1)
    parser.add_argument("--indexnodes", type=int, default=1)
    parser.add_argument("--proxies", type=int, default=1)
    parser.add_argument("--coords", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "down":
        stopped = stop_from_state(args.dir)
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    if (args.dir / "state.json").exists():
        print(f"a cluster is already running from {args.dir} (make cluster-down first)", file=sys.stderr)
        return 1
    layout = ClusterLayout(args.coords, args.querynodes, args.datanodes, args.indexnodes, args.proxies)
    cluster = LocalCluster(args.dir.resolve(), layout)
    try:
        cluster.start_servers()
        cluster.start_roles()
    except Exception:
        cluster.stop()
        raise
    cluster.save_state()
    print("Quiver cluster is up:")
    print(f"  etcd        {cluster.etcd.endpoint}")
    print(f"  S3          {cluster.s3.endpoint} (access key {cluster.s3.access_key})")
    print(f"  Pulsar      {cluster.pulsar.service_url}")
    for r in cluster.roles:
        extra = f"  Milvus gRPC 127.0.0.1:{r.grpc_port}, HTTP 127.0.0.1:{r.http_port}" if r.role == "proxy" else ""
        print(f"  {r.name:<12}pid {r.pid}{extra}")
    print(f"  logs        {cluster.workdir}/*.log")
    print(f"pymilvus: MilvusClient(uri=\"{cluster.uri}\")   stop with: make cluster-down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
