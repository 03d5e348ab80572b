"""A shared data set for the search-feature e2e tests (hybrid search, group_by, iterators).

One collection with three float vector fields (L2, IP, COSINE; FLAT, so searches are exact)
and scalar fields to filter and group on. Part of the rows are flushed (sealed segments) and
the rest stay growing, so every search merges both kinds of segment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymilvus import DataType, MilvusClient

DIM = 8
METRICS = {"v_l2": "L2", "v_ip": "IP", "v_cos": "COSINE"}


@dataclass
class DataSet:
    name: str
    pks: np.ndarray
    vectors: dict[str, np.ndarray]
    cat: np.ndarray
    tag: np.ndarray
    flag: np.ndarray
    price: np.ndarray

    def group_of(self, field: str) -> dict[object, object]:
        col = getattr(self, field)
        return {int(p): (v.item() if isinstance(v, np.generic) else v) for p, v in zip(self.pks, col, strict=True)}


def build(client: MilvusClient, name: str, n: int = 400, seed: int = 7, sealed: int = 250) -> DataSet:
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    for field in METRICS:
        schema.add_field(field, DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("cat", DataType.INT64)
    schema.add_field("tag", DataType.VARCHAR, max_length=16)
    schema.add_field("flag", DataType.BOOL)
    schema.add_field("price", DataType.FLOAT)
    index = client.prepare_index_params()
    for field, metric in METRICS.items():
        index.add_index(field, index_type="FLAT", metric_type=metric)
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    rng = np.random.default_rng(seed)
    pks = np.arange(1000, 1000 + n, dtype=np.int64)
    vectors = {f: rng.standard_normal((n, DIM)).astype(np.float32) for f in METRICS}
    cat = (np.arange(n) * 7 % 13).astype(np.int64)
    tag = np.array([f"t{i % 5}" for i in range(n)], dtype=object)
    flag = np.arange(n) % 3 == 0
    price = (np.arange(n) % 50).astype(np.float32)
    rows = [
        {
            "id": int(pks[i]),
            **{f: vectors[f][i].tolist() for f in METRICS},
            "cat": int(cat[i]),
            "tag": str(tag[i]),
            "flag": bool(flag[i]),
            "price": float(price[i]),
        }
        for i in range(n)
    ]
    client.insert(name, rows[:sealed])
    client.flush(name)
    client.insert(name, rows[sealed:])
    client.load_collection(name)
    return DataSet(name, pks, vectors, cat, tag, flag, price)


def wait_indexed(client: MilvusClient, name: str, field: str, rows: int, timeout: float = 120.0) -> None:
    """Until ``field``'s index covers ``rows`` rows with none pending (segments of 1024+ rows)."""
    deadline = time.monotonic() + timeout
    while True:
        desc: dict[str, Any] = client.describe_index(name, field) or {}
        if desc.get("pending_index_rows", 1) == 0 and desc.get("indexed_rows", 0) >= rows:
            return
        assert time.monotonic() < deadline, desc
        time.sleep(0.3)
