"""The ``quiver`` command line: ``quiver run standalone`` (and, in a cluster, one role)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from common.config import QuiverConfig, load_config
from common.logs import setup_logging

ROLES = ("standalone", "proxy", "coord", "querynode", "datanode", "indexnode")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quiver", description="Quiver: a Milvus-compatible vector database")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start Quiver standalone, or one role of a cluster")
    run.add_argument("role", choices=ROLES)
    run.add_argument("--config", help="YAML configuration file (also QUIVER_CONFIG)")
    run.add_argument("--data-dir", help="where standalone keeps its data (default ./quiver-data)")
    run.add_argument("--host", help="address to bind (default 127.0.0.1)")
    run.add_argument("--grpc-port", type=int, help="Milvus gRPC port (default 19530)")
    run.add_argument("--http-port", type=int, help="HTTP port for health, metrics and REST (default 9091)")
    run.add_argument("--internal-port", type=int, help="cluster roles: port of Quiver's internal RPC")
    run.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    return parser


def _config(args: argparse.Namespace) -> QuiverConfig:
    return load_config(
        args.config,
        data_dir=args.data_dir,
        host=args.host,
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        internal_port=args.internal_port,
        log_level=args.log_level,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = _config(args)
    setup_logging(cfg.log_level, cfg.log_format, role=args.role, node=str(cfg.node_id or ""))
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # it logs every CPU feature it probes
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.role == "standalone":
        from quiver.standalone import start_standalone

        node = start_standalone(cfg)
        print(
            f"Quiver standalone is ready: Milvus gRPC on {cfg.host}:{node.proxy.grpc_port}, "
            f"HTTP on {cfg.host}:{node.proxy.http_port}, data in {cfg.data_dir}",
            flush=True,
        )
    else:
        from quiver.cluster import start_role

        node = start_role(args.role, cfg)  # type: ignore[assignment]
    stop.wait()
    node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
