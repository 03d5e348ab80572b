"""A steady pymilvus insert + search load against a cluster, recording what was acknowledged."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
from pymilvus import DataType, MilvusClient

DIM = 8


def create_collection(uri: str, name: str) -> None:
    client = MilvusClient(uri=uri)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    client.close()


def vectors_for(ids: np.ndarray) -> np.ndarray:
    """Each id's vector is a function of the id, so any row can be checked on its own."""
    phases = np.arange(1, DIM + 1, dtype=np.float64)
    return np.sin(np.outer(ids.astype(np.float64) * 0.7311, phases)).astype(np.float32)


@dataclass
class Load:
    """Inserts batches of fresh ids and searches, until stopped; errors are counted, not raised."""

    uri: str
    collection: str
    batch: int = 100
    acked: list[int] = field(default_factory=list)
    insert_errors: int = 0
    searches: int = 0
    search_errors: int = 0
    _next: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)

    def _client(self) -> MilvusClient:
        return MilvusClient(uri=self.uri, timeout=15)

    def _run(self) -> None:
        client: MilvusClient | None = None
        while not self._stop.is_set():
            try:
                if client is None:
                    client = self._client()
                ids = np.arange(self._next, self._next + self.batch, dtype=np.int64)
                self._next += self.batch  # a failed batch's ids are never reused: no ambiguity
                vecs = vectors_for(ids)
                client.insert(self.collection, [{"id": int(i), "v": vecs[k]} for k, i in enumerate(ids)])
                self.acked.extend(int(i) for i in ids)
            except Exception:
                self.insert_errors += 1
                client = None
                time.sleep(0.2)
                continue
            try:
                client.search(self.collection, data=[vecs[0].tolist()], limit=3, consistency_level="Bounded")
                self.searches += 1
            except Exception:
                self.search_errors += 1
            time.sleep(0.05)
