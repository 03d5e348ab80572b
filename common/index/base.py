"""The VectorIndex interface every index engine implements, and what they share.

Querynodes hold one VectorIndex per sealed segment and call ``search`` with the segment's
filter/delete mask; indexnodes build and ``serialize`` them; ``load_index`` turns the bytes
back into the right engine. Shared here: query preparation (dtype widening, COSINE
normalisation), argument checks, range search on top of any engine's top-k, and the
serialized container (a JSON header plus named binary blobs).
"""

from __future__ import annotations

import abc
import json
import struct
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from common.errors import invalid

from .dtypes import as_binary, as_float32, is_binary, is_sparse
from .kernels import empty_result
from .metrics import COSINE, metric_ascending, normalize_rows
from .params import check_range_order, validate_search_params

MAGIC = b"QVRIDX"
FORMAT_VERSION = 1
ALIGN = 64
_LEN = struct.Struct("<I")

Knn = Callable[[Any, int, dict[str, Any], "np.ndarray | None"], tuple[np.ndarray, np.ndarray]]


class VectorIndex(abc.ABC):
    """A searchable, serializable vector index over ``count`` rows (offsets in build order)."""

    kind: ClassVar[str]  # serialized engine tag
    index_type: str  # as created by the user (may be AUTOINDEX)
    engine: str  # the concrete index (e.g. HNSW for AUTOINDEX on float vectors)
    metric_type: str
    dim: int
    count: int
    dtype: int
    build_params: dict[str, Any]

    def search(
        self,
        queries: Any,
        k: int,
        params: Mapping[str, Any] | None = None,
        valid: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows per query: (scores float32 (nq, k), offsets int64 (nq, k)).

        Offsets are row positions in build order; -1 (score +/-inf) where fewer than k rows
        qualify. ``valid`` is a bool mask (count,) of the rows allowed (filters, deletes).
        ``params`` are search parameters (nprobe, ef, radius, range_filter, ...).
        """
        if k <= 0:
            raise invalid(f"topk [{k}] is invalid, it should be in range [1, 16384]")
        sp = validate_search_params(self.index_type, params or {}, k=k)
        q = self.prepare_queries(queries)
        nq = query_count(q)
        mask = check_valid(valid, self.count)
        if self.count == 0 or nq == 0 or (mask is not None and not mask.any()):
            return empty_result(nq, k, metric_ascending(self.metric_type))
        if mask is not None and mask.all():
            mask = None
        if "radius" in sp:
            return range_search(self._knn, q, nq, k, sp, mask, self.metric_type, self.count)
        return self._knn(q, k, sp, mask)

    def prepare_queries(self, queries: Any) -> Any:
        """Queries in the engine's native layout (float32 normalised for COSINE, packed bits)."""
        if is_binary(self.dtype):
            return as_binary(queries, self.dim)
        if is_sparse(self.dtype):
            return queries
        q = as_float32(queries, self.dtype)
        if q.shape[1] != self.dim:
            raise invalid(
                f"vector dimension mismatch: the dim ({q.shape[1]}) of query vectors is not equal "
                f"to the index dim ({self.dim})"
            )
        return normalize_rows(q) if self.metric_type == COSINE else q

    @abc.abstractmethod
    def _knn(self, q: Any, k: int, params: dict[str, Any], valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Engine top-k on prepared queries with normalised params; valid is None or a partial mask."""

    @abc.abstractmethod
    def _payload(self) -> tuple[dict[str, Any], dict[str, bytes | memoryview]]:
        """Engine metadata (JSON-able) and named binary blobs for ``serialize``."""

    @classmethod
    @abc.abstractmethod
    def _restore(cls, header: dict[str, Any], blobs: dict[str, memoryview]) -> VectorIndex:
        """Inverse of ``_payload``: header has the common fields plus the engine metadata."""

    @abc.abstractmethod
    def memory_bytes(self) -> int:
        """Approximate resident size of the loaded index."""

    def serialize(self) -> bytes:
        meta, blobs = self._payload()
        header = {
            "kind": self.kind,
            "index_type": self.index_type,
            "engine": self.engine,
            "metric_type": self.metric_type,
            "dim": self.dim,
            "count": self.count,
            "dtype": self.dtype,
            "build_params": self.build_params,
            "meta": meta,
            "blobs": [[name, len(memoryview(b).cast("B"))] for name, b in blobs.items()],
        }
        head = json.dumps(header).encode()
        parts: list[bytes | memoryview] = [MAGIC, _LEN.pack(FORMAT_VERSION), _LEN.pack(len(head)), head]
        pos = len(MAGIC) + 8 + len(head)
        for blob in blobs.values():
            parts.append(bytes(_aligned(pos) - pos))
            view = memoryview(blob).cast("B")
            parts.append(view)
            pos = _aligned(pos) + len(view)
        return b"".join(parts)

    def _init_common(self, header: Mapping[str, Any]) -> None:
        self.index_type = str(header["index_type"])
        self.engine = str(header["engine"])
        self.metric_type = str(header["metric_type"])
        self.dim = int(header["dim"])
        self.count = int(header["count"])
        self.dtype = int(header["dtype"])
        self.build_params = dict(header.get("build_params") or {})

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(index_type={self.index_type}, engine={self.engine}, "
            f"metric={self.metric_type}, dim={self.dim}, count={self.count})"
        )


_REGISTRY: dict[str, type[VectorIndex]] = {}


def register(cls: type[VectorIndex]) -> type[VectorIndex]:
    """Class decorator: make an engine loadable by its ``kind`` tag."""
    _REGISTRY[cls.kind] = cls
    return cls


def load_index(data: bytes | bytearray | memoryview) -> VectorIndex:
    """Rebuild a VectorIndex from ``serialize()`` output."""
    view = memoryview(data).cast("B")
    if bytes(view[: len(MAGIC)]) != MAGIC:
        raise invalid("index data is corrupted: bad magic")
    pos = len(MAGIC)
    (version,) = _LEN.unpack_from(view, pos)
    if version != FORMAT_VERSION:
        raise invalid(f"index data format version {version} is not supported")
    (head_len,) = _LEN.unpack_from(view, pos + 4)
    pos += 8
    header = json.loads(bytes(view[pos : pos + head_len]))
    pos += head_len
    blobs: dict[str, memoryview] = {}
    for name, length in header["blobs"]:
        pos = _aligned(pos)
        blobs[name] = view[pos : pos + length]
        pos += length
    if pos != len(view):
        raise invalid("index data is corrupted: size mismatch")
    cls = _REGISTRY.get(header["kind"])
    if cls is None:
        raise invalid(f"index data has unknown engine kind {header['kind']}")
    return cls._restore(header, blobs)


def _aligned(pos: int) -> int:
    """Blobs start on 64-byte boundaries so arrays viewed in place are SIMD/BLAS friendly."""
    return (pos + ALIGN - 1) // ALIGN * ALIGN


def array_from(blob: memoryview, dtype: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A read-only array over a blob, zero-copy unless the buffer is misaligned."""
    arr = np.frombuffer(blob, dtype=dtype)
    if not arr.flags.aligned:
        arr = arr.copy()
    return arr.reshape(shape) if shape is not None else arr


def as_buffer(arr: np.ndarray) -> memoryview:
    """A flat byte view of an array (copied only if not C-contiguous), for serialization."""
    return np.ascontiguousarray(arr).reshape(-1).data.cast("B")


def query_count(q: Any) -> int:
    return int(q.shape[0]) if isinstance(q, np.ndarray) else len(q)


def check_valid(valid: np.ndarray | None, count: int) -> np.ndarray | None:
    if valid is None:
        return None
    mask = np.asarray(valid, dtype=bool)
    if mask.shape != (count,):
        raise invalid(f"valid mask has shape {mask.shape}, expected ({count},)")
    return mask


def select_queries(q: Any, rows: np.ndarray) -> Any:
    if isinstance(q, np.ndarray):
        return q[rows]
    return [q[int(r)] for r in rows]


def range_search(
    knn: Knn,
    q: Any,
    nq: int,
    k: int,
    params: dict[str, Any],
    valid: np.ndarray | None,
    metric: str,
    count: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k restricted to the band between ``radius`` and ``range_filter`` (Milvus semantics).

    Ascending metrics keep ``range_filter <= d < radius``; descending ones keep
    ``radius < d <= range_filter``. Runs the engine's top-k with a growing k until each
    query has k hits in the band or its candidates leave the radius.
    """
    asc = metric_ascending(metric)
    radius = float(params["radius"])
    rf = params.get("range_filter")
    range_filter = None if rf is None else float(rf)
    check_range_order(asc, radius, range_filter)
    out_d, out_i = empty_result(nq, k, asc)
    pending = np.arange(nq)
    kk = min(max(k, 16), count)
    while pending.size:
        sp = dict(params)
        if "ef" in sp:
            sp["ef"] = max(int(sp["ef"]), kk)
        d, i = knn(select_queries(q, pending), kk, sp, valid)
        found = i >= 0
        inside = found & ((d < radius) if asc else (d > radius))
        keep = inside
        if range_filter is not None:
            keep = inside & ((d >= range_filter) if asc else (d <= range_filter))
        order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
        kd = np.take_along_axis(d, order, axis=1)
        ki = np.take_along_axis(i, order, axis=1)
        kept = np.take_along_axis(keep, order, axis=1)
        kd[~kept] = np.inf if asc else -np.inf
        ki[~kept] = -1
        width = kd.shape[1]
        done = (keep.sum(axis=1) >= k) | ~inside[:, -1] | (kk >= count)
        rows = pending[done]
        out_d[rows, :width] = kd[done]
        out_i[rows, :width] = ki[done]
        pending = pending[~done]
        kk = min(kk * 4, count)
    return out_d, out_i
