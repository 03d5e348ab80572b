"""`python -m bench.deletes`: how fast a shard leader gets deletes onto its workers' sealed segments.

A delete names primary keys. The leader (services/querynode/delegator.py) forwards each one it
consumes to the workers serving the shard's sealed segments before tsafe passes it; the workers
mark the rows (services/querynode/segment.py). This bench runs a leader and three workers in one
process on the in-memory backends, the workers behind Quiver's internal RPC over TCP on loopback
as in a cluster (``--transport local``: the in-process transport standalone uses), over
``--segments`` sealed segments of ``--rows`` rows each, produces ``--deletes`` delete messages of
``--keys`` random existing keys each, and times them until tsafe passed the last one. Two columns:

- ``every worker``: the leader knows no segment's stats log, so every worker gets every delete
  (what happens when stats logs are missing; before the PK oracle, always);
- ``bloom routing``: the leader routes by each segment's stats log (min/max + bloom filter), so a
  worker gets only the keys its segments may hold, and nothing when none.

Both check the same thing: every key deleted is deleted on exactly its rows. Each column is the
median of ``--rounds`` runs, the two columns alternating.

    .venv/bin/python -m bench.deletes
    .venv/bin/python -m bench.deletes --segments 60 --rows 50000 --keys 1
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from pymilvus import CollectionSchema, DataType, FieldSchema
from pymilvus.client.prepare import Prepare

from common import msgs
from common.binlog import PkStats
from common.channels import pchannel_of
from common.msgstream.memory import MemoryStream
from common.rpc import Router, rpc
from common.rpc.tcp_transport import TcpServer
from common.schema import Schema
from common.storage.memory import MemoryStorage
from services.querynode.channel import ChannelServer
from services.querynode.columns import ColumnStore
from services.querynode.delegator import ShardDelegator
from services.querynode.segment import DELETED, TS, Segment
from services.querynode.worker import SealedStore

VCHANNEL = "bench-rootcoord-dml_0_7v0"
WORKERS = 3


class Worker:
    """A querynode's sealed store behind the apply_deletes RPC, counting the calls it gets."""

    def __init__(self) -> None:
        self.store = SealedStore()
        self.calls = 0

    @rpc
    def apply_deletes(self, vchannel: str, deletes: list[list[Any]], ready: list[int] | None = None) -> int:
        self.calls += 1
        return self.store.apply_deletes(vchannel, [(np.asarray(p), int(t)) for p, t in deletes], ready)


def _schema() -> Schema:
    fields = [FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=2)]
    proto = Prepare.get_schema_from_collection_schema("c", CollectionSchema(fields))
    return Schema.from_bytes(proto.SerializeToString())


def run(args: argparse.Namespace, routing: bool) -> dict[str, float]:
    schema, storage, stream, router = _schema(), MemoryStorage(), MemoryStream(), Router()
    workers = [Worker() for _ in range(WORKERS)]
    routes: dict[int, str] = {}
    stats: dict[int, tuple[list[str], int]] = {}
    endpoints = []
    server = TcpServer("127.0.0.1", 0) if args.transport == "tcp" else None
    for i, w in enumerate(workers):
        if server is None:
            endpoints.append(router.register_local(f"w{i}", w))
        else:
            server.add(f"w{i}", w)
            endpoints.append(f"tcp://127.0.0.1:{server.port}/w{i}")
    if server is not None:
        server.start()
    for sid in range(args.segments):
        pks = np.arange(sid * args.rows, (sid + 1) * args.rows, dtype=np.int64)
        key = f"stats_log/7/1/{sid}/100/1"
        storage.put(key, PkStats.build(pks).to_bytes())
        cols = {
            "id": pks, "v": np.zeros((args.rows, 2), np.float32),
            TS: np.ones(args.rows, np.int64), DELETED: np.zeros(args.rows, np.int64),
        }
        seg = Segment(sid, 1, VCHANNEL, schema, True, ColumnStore.of(cols, args.rows), version="v", max_ts=1)
        workers[sid % WORKERS].store.add(seg)
        routes[sid] = endpoints[sid % WORKERS]
        stats[sid] = ([key], args.rows)
    channel = ChannelServer(7, VCHANNEL, schema, stream, None, [], [1])
    pool = ThreadPoolExecutor(4)
    leader = ShardDelegator(channel, SealedStore(), router, pool, storage)
    stream.produce(pchannel_of(VCHANNEL), msgs.encode(msgs.TimeTickMsg(1)))
    leader.sync("local://leader", routes, stats=stats if routing else None)
    rng = np.random.default_rng(args.seed)
    batches = [rng.integers(0, args.segments * args.rows, args.keys) for _ in range(args.deletes)]
    try:
        started = time.perf_counter()
        for i, keys in enumerate(batches):
            stream.produce(pchannel_of(VCHANNEL), msgs.encode(msgs.DeleteMsg(VCHANNEL, 7, -1, 10 + i, keys)))
        last = 10 + args.deletes
        stream.produce(pchannel_of(VCHANNEL), msgs.encode(msgs.TimeTickMsg(last)))
        channel.wait_tsafe(last, 600)
        seconds = time.perf_counter() - started
    finally:
        channel.stop()
        pool.shutdown()
        if server is not None:
            server.stop()
    deleted = sum(s.num_rows - s.count(None, 1 << 62) for w in workers for s in w.store.all())
    expected = len(np.unique(np.concatenate(batches)))
    if deleted != expected:
        raise RuntimeError(f"{deleted} rows deleted, {expected} expected")
    return {"deletes_per_s": args.deletes / seconds, "worker_calls": sum(w.calls for w in workers),
            "rows": deleted}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.deletes", description=__doc__.split("\n\n")[0])
    p.add_argument("--segments", type=int, default=30)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--deletes", type=int, default=2000)
    p.add_argument("--keys", type=int, default=1, help="random existing keys per delete message")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--transport", choices=("tcp", "local"), default="tcp", help="how the leader reaches the workers")
    p.add_argument("--rounds", type=int, default=3, help="runs per column, alternating; the median is shown")
    args = p.parse_args(argv)
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for _ in range(args.rounds):  # alternating, so background load hits both columns alike
        for routing in (False, True):
            runs[routing].append(run(args, routing))
    every, routed = (sorted(runs[r], key=lambda x: x["deletes_per_s"])[args.rounds // 2] for r in (False, True))
    print(f"\ndeletes on sealed segments: {args.segments} x {args.rows:,} rows on {WORKERS} workers "
          f"({args.transport} RPC), {args.deletes:,} deletes of {args.keys} key(s)")
    print(f"{'':28}{'every worker':>16}{'bloom routing':>16}{'ratio':>10}")
    print(f"{'deletes/s':28}{every['deletes_per_s']:>16,.0f}{routed['deletes_per_s']:>16,.0f}"
          f"{routed['deletes_per_s'] / every['deletes_per_s']:>9.2f}x")
    print(f"{'apply_deletes calls':28}{every['worker_calls']:>16,}{routed['worker_calls']:>16,}")
    print(f"{'rows deleted (checked)':28}{every['rows']:>16,}{routed['rows']:>16,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
