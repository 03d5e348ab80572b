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
    filled = hits.filled
    if not offset and limit >= hits.k and filled.all():  # the common case: every hit, as it is
        flat = np.arange(filled.size)
        topks = [hits.k] * hits.nq
    else:
        seen = np.cumsum(filled, axis=1)  # 1-based rank of each filled hit within its query
        chosen = filled & (seen > offset) & (seen <= offset + limit)
        flat = np.flatnonzero(chosen)  # row-major: query order, then rank order
        topks = np.count_nonzero(chosen, axis=1).tolist()
    return Picked(hits.pks.reshape(-1)[flat], hits.scores.reshape(-1)[flat], topks, take(hits, flat, names))


def _packed_field(number: int, payload: bytes) -> bytes:
    """Wire bytes of a packed repeated field: tag (length-delimited), varint length, payload."""
    head = bytearray([number << 3 | 2])
    n = len(payload)
    while n >= 0x80:
        head.append(n & 0x7F | 0x80)
        n >>= 7
    head.append(n)
    return bytes(head) + payload


_SCORES_FIELD = schema_pb2.SearchResultData.DESCRIPTOR.fields_by_name["scores"].number


def encode(
    schema: Schema,
    plan: OutputPlan,
    nq: int,
    top_k: int,
    picked: Picked,
    group_field: Field | None = None,
    into: schema_pb2.SearchResultData | None = None,
) -> schema_pb2.SearchResultData:
    """SearchResultData for ``picked`` (written into ``into`` when given, e.g. the ``results`` of the
    reply, which saves copying it); scores are sent as they are (already rounded)."""
    result = schema_pb2.SearchResultData() if into is None else into
    result.SetInParent()
    result.num_queries = nq
    result.top_k = top_k
    result.primary_field_name = schema.primary.name
    pks = picked.pks
    if pks.dtype == object and schema.primary.dtype == INT64:
        pks = pks.astype(np.int64)
    if len(pks) and schema.primary.dtype == INT64:
        result.ids.int_id.data.extend(np.asarray(pks, dtype=np.int64).tolist())
    else:
        result.ids.CopyFrom(encode_ids(pks, schema.primary.dtype))
    scores = np.ascontiguousarray(picked.scores, dtype="<f4")
    if len(scores):  # the float32 bytes are the packed field's payload: no Python floats in between
        result.MergeFromString(_packed_field(_SCORES_FIELD, scores.tobytes()))
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
