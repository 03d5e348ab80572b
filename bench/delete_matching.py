"""`python -m bench.delete_matching`: how long finding the rows of deletes takes where no RPC is involved.

bench.deletes times deletes reaching sealed segments through a shard leader. Three more places
match delete keys against rows, each on a thread that consumes a channel (so a slow one holds up
everything behind it on that channel); this times each in-process on synthetic data:

- growing segment (services/querynode/segment.py): a querynode segment growing to ``--rows`` rows in
  1,000-row batches with two ``--keys``-key deletes after each batch, int64 and VARCHAR keys;
- datanode flush (services/datanode/channel.py ``_deletes_for``): the deletes a flushing segment
  of ``--rows`` rows takes from ``--deletes`` one-key delete messages kept by the datanode;
- datanode sync (``_write_deltas``): ``--deletes`` one-key deletes of a sync routed to
  ``--segments`` flushed segments of 100k keys each through their stats logs.

    .venv/bin/python -m bench.delete_matching
    .venv/bin/python -m bench.delete_matching --rows 1000000 --deletes 100000
"""

from __future__ import annotations

import argparse
import itertools
import time
from typing import Any

import numpy as np

from common import binlog
from common.msgstream.memory import MemoryStream
from common.storage.memory import MemoryStorage
from services.datanode.channel import ChannelWriter
from tests.unit.test_datanode_deletes import SCHEMA, VCH
from tests.unit.test_growing_deletes import growing_segment

BATCH = 1000


def _keys(kind: str, values: np.ndarray) -> np.ndarray:
    return values.astype(np.int64) if kind == "int" else np.array([f"k{v}" for v in values], dtype=object)


def growing(kind: str, rows: int, keys: int) -> list[float]:
    """Seconds per apply_delete while one growing segment fills up."""
    rng = np.random.default_rng(0)
    seg = growing_segment(kind)
    spent = []
    for start in range(0, rows, BATCH):
        ids = _keys(kind, rng.permutation(np.arange(start, start + BATCH)))
        seg.append({"id": ids, "v": np.zeros((BATCH, 2), np.float32)}, 10 + start, BATCH)
        for j in range(2):
            pks = _keys(kind, rng.integers(0, start + BATCH, keys))
            t0 = time.perf_counter()
            seg.apply_delete(pks, 10**12 + start + j)
            spent.append(time.perf_counter() - t0)
    return spent


class _Coord:
    def call(self, method: str, **kw: object) -> object:
        raise AssertionError(f"no coordinator call expected: {method}")


def flush_matching(rows: int, deletes: int) -> float:
    rng = np.random.default_rng(1)
    pks = rng.permutation(rows * 2)[:rows].astype(np.int64)
    row_ts = np.full(rows, 100, dtype=np.int64)
    kept = [(rng.integers(0, 2 * rows, 1), 200 + i) for i in range(deletes)]
    t0 = time.perf_counter()
    ChannelWriter._deletes_for(pks, row_ts, kept)
    return time.perf_counter() - t0


def sync_routing(segments: int, deletes: int) -> float:
    rng = np.random.default_rng(2)
    coord: Any = _Coord()
    w = ChannelWriter(1, VCH, SCHEMA, MemoryStream(), MemoryStorage(), coord, 1e9)
    for sid in range(segments):
        w.flushed_stats[sid] = binlog.SegmentPkStats(
            [binlog.PkStats.build(np.arange(sid * 100_000, (sid + 1) * 100_000))]
        )
        w.flushed_partitions[sid] = 1
    w.new_deletes = [(rng.integers(0, segments * 100_000, 1), 1000 + i) for i in range(deletes)]
    ids = itertools.count(1)
    t0 = time.perf_counter()
    w._write_deltas(lambda: next(ids), w.new_deletes, list(w.flushed_stats))
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--keys", type=int, default=5, help="keys per delete on the growing segment")
    ap.add_argument("--deletes", type=int, default=20_000)
    ap.add_argument("--segments", type=int, default=100)
    args = ap.parse_args(argv)
    print(f"\nDelete matching without RPC ({args.rows:,} rows, {args.deletes:,} deletes, {args.segments} segments)")
    for kind in ("int", "str"):
        spent = growing(kind, args.rows, args.keys)
        label = "int64" if kind == "int" else "varchar"
        print(
            f"  growing segment, {label} keys, {len(spent):,} deletes of {args.keys} keys while it grows: "
            f"total {sum(spent):.2f} s, p50 {np.median(spent) * 1000:.3f} ms, max {max(spent) * 1000:.1f} ms"
        )
    print(
        f"  datanode flush of {args.rows:,} rows against {args.deletes:,} kept deletes: "
        f"{flush_matching(args.rows, args.deletes):.3f} s"
    )
    print(
        f"  datanode sync of {args.deletes:,} deletes to {args.segments} flushed segments: "
        f"{sync_routing(args.segments, args.deletes):.3f} s"
    )


if __name__ == "__main__":
    main()
