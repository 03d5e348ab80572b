"""Search with group_by: the best hits per distinct value of a scalar field, done in the proxy.

Milvus groups inside segcore with a vector iterator. Quiver's querynodes only know top-k, so
the proxy asks them for the top ``k`` candidates with the group field as an extra output,
walks the candidates best first (a group takes a hit while it has fewer than ``group_size``;
a new group opens while fewer than ``offset + limit`` groups exist) and, when some query has
neither filled all its groups nor run out of candidates, asks again with a larger ``k``.
The answer is therefore exact on exact (FLAT) indexes: the groups are ordered by their best
hit, each group's hits by score, and the first ``offset`` groups are skipped.

The parameter rules and messages are Milvus 2.5's (internal/proxy/search_util.go and the
segcore group-by operator): the field must exist, not be nullable, and be Bool, an integer or
VarChar; ``group_size`` is 1..10; no grouping with range search or iterators.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pymilvus.grpc_gen import schema_pb2

from common.errors import Code, MilvusError, invalid
from common.reduce import Hits
from common.schema import Field, Schema
from services.proxy.search_results import Picked, take
from services.proxy.search_spec import bool_param

GROUPABLE = {
    schema_pb2.DataType.Bool,
    schema_pb2.DataType.Int8,
    schema_pb2.DataType.Int16,
    schema_pb2.DataType.Int32,
    schema_pb2.DataType.Int64,
    schema_pb2.DataType.VarChar,
}
MAX_GROUP_SIZE = 10  # quotaAndLimits.limits.maxGroupSize
FIRST_WIDTH = 64


@dataclass(frozen=True)
class GroupSpec:
    field: Field
    size: int
    strict: bool


def parse_group(schema: Schema, params: dict[str, str]) -> GroupSpec | None:
    """The group_by settings of a request's params (search_params or rank_params), or None."""
    name = params.get("group_by_field", "")
    if not name:
        return None
    fld = schema.get(name)
    if fld is None or fld.is_dynamic:
        raise MilvusError(Code.FIELD_NOT_FOUND, f"groupBy field not found in schema: field not found[field={name}]")
    if fld.nullable:
        raise invalid(f"groupBy field({name}) not support nullable == true: invalid parameter")
    if fld.dtype not in GROUPABLE:
        type_name = schema_pb2.DataType.Name(fld.dtype)  # type: ignore[arg-type]
        raise invalid(f"unsupported data type {type_name} for group by operator")
    raw = params.get("group_size")
    size = 1
    if raw is not None:
        try:
            size = int(raw.strip(), 0)
        except ValueError as exc:
            raise invalid(f"failed to parse input group size:{raw}: invalid parameter") from exc
        if size <= 0:
            raise invalid(f"input group size:{size} is negative, failed to do search_groupby: invalid parameter")
    if size > MAX_GROUP_SIZE:
        raise invalid(f"input group size:{size} exceeds configured max group size:{MAX_GROUP_SIZE}: invalid parameter")
    spec = GroupSpec(fld, size, bool_param(params, "strict_group_size"))
    if bool_param(params, "iterator"):
        raise invalid("invalid parameter[expected=][actual=]: Not allowed to do groupBy when doing iteration")
    if "radius" in params.get("params", ""):
        raise invalid(
            "invalid parameter[expected=][actual=]: Not allowed to do range-search when doing search-group-by"
        )
    return spec


def select_groups(values: np.ndarray, n: int, groups: int, size: int) -> tuple[list[list[int]], bool]:
    """Walk the first ``n`` candidates (best first) into at most ``groups`` groups of ``size``.

    Returns the accepted positions per group (groups in order of their best hit) and whether
    every group is full (more candidates could not change the answer).
    """
    members: dict[object, list[int]] = {}
    full = 0
    for i in range(n):
        v = values[i]
        key = v.item() if isinstance(v, np.generic) else v
        got = members.get(key)
        if got is None:
            if len(members) >= groups:
                continue
            got = members[key] = []
        if len(got) >= size:
            continue
        got.append(i)
        if len(got) == size:
            full += 1
            if full == groups:
                return list(members.values()), True
    return list(members.values()), False


def grouped_hits(
    search: Callable[[int, list[str]], Hits | None],
    nq: int,
    spec: GroupSpec,
    offset: int,
    limit: int,
    names: list[str],
    pk_dtype: int,
) -> Picked:
    """Grouped results of ``search(k, fetch)``, widening ``k`` until every query is settled."""
    groups = offset + limit
    k = max(FIRST_WIDTH, 2 * groups * spec.size)
    fetch = list(dict.fromkeys([*names, spec.field.name]))
    while True:
        hits = search(k, fetch)
        if hits is None:
            out = Picked.empty(nq, pk_dtype)
            out.group_values = np.empty(0, dtype=object)
            return out
        flat_parts: list[np.ndarray] = []
        topks: list[int] = []
        settled = True
        values = hits.fields[spec.field.name]
        for q in range(nq):
            filled = int(hits.filled[q].sum())  # merged hits are packed best first
            row = values[q * hits.k : q * hits.k + filled]
            chosen, complete = select_groups(row, filled, groups, spec.size)
            if not complete and filled >= k:
                settled = False
                break
            picked = [i for g in chosen[offset:] for i in g]
            flat_parts.append(q * hits.k + np.asarray(picked, dtype=np.int64))
            topks.append(len(picked))
        if settled:
            flat = np.concatenate(flat_parts) if flat_parts else np.empty(0, dtype=np.int64)
            return Picked(
                hits.pks.reshape(-1)[flat],
                hits.scores.reshape(-1)[flat],
                topks,
                take(hits, flat, names),
                values[flat],
            )
        k *= 4
