"""The hits a search finally returns, and their encoding as Milvus's SearchResultData.

Plain search, grouping search, hybrid search and search iterators each choose their hits in
their own way, but they all answer with the same message: per query a run of hits (``topks``),
their ids and scores, the output columns and, for grouping, each hit's group value. ``Picked``
is that choice, flat in query order; ``encode`` turns it into the protobuf once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pymilvus.grpc_gen import schema_pb2

from common.fielddata import empty_column, encode_column, encode_ids
from common.reduce import Hits
from common.schema import Field, Schema
from services.proxy.outputs import OutputPlan, encode_outputs

INT64 = 5


@dataclass
class Picked:
    """Hits chosen for the reply, flat in query order (``topks[q]`` of them for query q)."""

    pks: np.ndarray
    scores: np.ndarray  # float32
    topks: list[int]
    cols: dict[str, np.ndarray] = field(default_factory=dict)
    group_values: np.ndarray | None = None

    @classmethod
    def empty(cls, nq: int, pk_dtype: int) -> Picked:
        pks = np.empty(0, dtype=np.int64 if pk_dtype == INT64 else object)
        return cls(pks, np.empty(0, dtype=np.float32), [0] * nq)


def take(hits: Hits, flat: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Columns ``names`` of ``hits`` at flat positions (q * k + j)."""
    return {n: hits.fields[n][flat] for n in names if n in hits.fields}


def from_hits(hits: Hits, offset: int, limit: int, names: list[str]) -> Picked:
    """Per query the filled hits ``offset .. offset + limit`` of merged ``hits``."""
    flat_parts: list[np.ndarray] = []
    topks: list[int] = []
    for q in range(hits.nq):
        idx = np.flatnonzero(hits.filled[q])[offset : offset + limit]
        flat_parts.append(q * hits.k + idx)
        topks.append(len(idx))
    flat = np.concatenate(flat_parts) if flat_parts else np.empty(0, dtype=np.int64)
    return Picked(hits.pks.reshape(-1)[flat], hits.scores.reshape(-1)[flat], topks, take(hits, flat, names))


def encode(
    schema: Schema,
    plan: OutputPlan,
    nq: int,
    top_k: int,
    picked: Picked,
    group_field: Field | None = None,
) -> schema_pb2.SearchResultData:
    """SearchResultData for ``picked``; scores are sent as they are (already rounded)."""
    result = schema_pb2.SearchResultData(num_queries=nq, top_k=top_k, primary_field_name=schema.primary.name)
    pks = picked.pks
    if pks.dtype == object and schema.primary.dtype == INT64:
        pks = pks.astype(np.int64)
    result.ids.CopyFrom(encode_ids(pks, schema.primary.dtype))
    result.scores.extend(np.asarray(picked.scores, dtype=np.float32).tolist())
    result.topks.extend(picked.topks)
    if len(pks):
        result.fields_data.extend(encode_outputs(schema, picked.cols, plan))
    else:
        cols = {n: empty_column(schema.field(n), 0) for n in plan.fetch if not n.endswith(".valid")}
        result.fields_data.extend(encode_outputs(schema, cols, plan))
    result.output_fields.extend(plan.names)
    if group_field is not None:
        values = picked.group_values if picked.group_values is not None else empty_column(group_field, 0)
        result.group_by_field_value.CopyFrom(encode_column(group_field, values, None))
    return result
