"""Search by primary keys (Milvus 2.6): the query vectors are the stored vectors of given rows.

A SearchRequest may carry ``ids`` instead of a placeholder group. As Milvus's proxy does
(handleIfSearchByPK), the ids are checked (no duplicates, the primary key's type), the rows' vectors
of the searched field are read at the search's own timestamp (a missing id fails the request), and
the search runs with those vectors, in the order of the ids. A row whose vector is null (a nullable
vector field) gets no query: its result is empty, and the reply still has one result per id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from common.errors import invalid
from common.fielddata import valid_name
from common.reduce import merge_rows
from common.schema import Field
from services.proxy.meta_cache import CollectionMeta
from services.proxy.reader import ShardReader
from services.proxy.search_results import Picked

INT64 = 5
VARCHAR = 21


@dataclass
class PkQueries:
    vectors: np.ndarray  # the non-null vectors, in the order of the ids
    present: np.ndarray  # per id, whether its vector is set (it has a query)

    def expand(self, picked: Picked) -> Picked:
        """``picked`` (one run of hits per query) as one run per id: empty for a null vector."""
        runs = iter(picked.topks)
        picked.topks = [next(runs) if p else 0 for p in self.present.tolist()]
        return picked


def requested_ids(request: Any) -> list[Any] | None:
    """The primary keys a search is by, or None for a search by vectors."""
    if "ids" not in request.DESCRIPTOR.fields_by_name or not request.HasField("ids"):
        return None
    which = request.ids.WhichOneof("id_field")
    if which == "int_id":
        return list(request.ids.int_id.data) or None
    if which == "str_id":
        return list(request.ids.str_id.data) or None
    return None


def fetch_queries(
    reader: ShardReader, meta: CollectionMeta, field: Field, ids: list[Any], partition_ids: list[int], gts: int
) -> PkQueries:
    """The vectors of ``field`` of the rows ``ids``, read at ``gts``."""
    pk = meta.schema.primary
    if len(set(ids)) != len(ids):
        raise invalid("duplicate IDs found in search request: invalid parameter")
    want_int = pk.dtype == INT64
    if want_int != isinstance(ids[0], int):
        kind, pk_kind = ("int64", "int64") if want_int else ("string", "varchar")
        raise invalid(f"primary key is {pk_kind}, but IDs type mismatch: invalid parameter"
                      f"[expected={kind} IDs][actual=got other type]")
    valid = valid_name(field.name)
    fetch = [pk.name, field.name, *([valid] if field.nullable else [])]
    replies = reader.fan_out(
        meta, "query", partition_ids=partition_ids, expr=f"{pk.name} in {{__quiver_ids}}",
        expr_params={"__quiver_ids": ids}, output_fields=fetch, limit=None, guarantee_ts=gts, read_ts=0,
    )
    rows = merge_rows([r["rows"] for r in replies], pk.name, None, 0)
    found = rows[pk.name].tolist() if rows else []
    where = {k: i for i, k in enumerate(found)}
    missing = [k for k in ids if k not in where]
    if missing:
        shown = " ".join(str(k) for k in missing)
        raise invalid(f"some of the provided primary key IDs do not exist: missing IDs = [{shown}]: invalid parameter")
    order = np.fromiter((where[k] for k in ids), dtype=np.int64, count=len(ids))
    vectors = rows[field.name][order]
    present = np.asarray(rows[valid][order], dtype=np.bool_) if valid in rows else np.ones(len(ids), np.bool_)
    return PkQueries(vectors if present.all() else vectors[present], present)
