"""Which columns a read returns, and how they are encoded for the client.

Resolves ``output_fields`` as Milvus does: ``*`` for every field, schema names, and — with a
dynamic field — any other name as a key of ``$meta``; a name that is none of these is an
error naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pymilvus.grpc_gen import schema_pb2

from common.errors import Code, MilvusError, invalid
from common.fielddata import encode_column
from common.schema import Schema
from common.timestamptz import check_timezone

META = "$meta"


@dataclass
class OutputPlan:
    fetch: list[str]  # columns to fetch from querynodes
    names: list[str]  # output_fields reported to the client
    dynamic_keys: list[str] = field(default_factory=list)  # $meta keys asked for by name
    whole_meta: bool = False  # every dynamic key ("*" or "$meta")
    timezone: str = ""  # Timestamptz output: the request's ``timezone``, else the collection's


def _hidden(schema: Schema, name: str) -> bool:
    """A BM25 function's output: Milvus never returns its raw rows (CanRetrieveRawFieldData)."""
    fn = schema.function_of_output(name) if schema.functions else None
    return fn is not None and fn.is_bm25


def plan_outputs(schema: Schema, requested: list[str], include_pk: bool, timezone: str = "") -> OutputPlan:
    """What to fetch and report for ``requested`` output fields; ``timezone`` (a request's
    ``timezone`` parameter, an IANA name) overrides the collection's for Timestamptz values."""
    if timezone:
        check_timezone(timezone)
    fetch: list[str] = []
    names: list[str] = []
    keys: list[str] = []
    whole = False
    dyn = schema.dynamic_field
    for name in requested:
        name = name.strip()
        if not name:
            continue
        if name == "*":
            for f in schema.fields:
                if f.is_dynamic:
                    whole = True
                elif f.name not in fetch and not _hidden(schema, f.name):
                    fetch.append(f.name)
                    names.append(f.name)
            continue
        found = schema.get(name)
        if found is not None and _hidden(schema, name):
            raise MilvusError(Code.PARAMETER_INVALID, f"not allowed to retrieve raw data of field {name}")
        if found is not None and not found.is_dynamic:
            if name not in fetch:
                fetch.append(name)
                names.append(name)
        elif dyn is not None and (name == META or found is not None):
            whole = True
        elif dyn is not None:
            keys.append(name)
            names.append(name)
        else:
            raise invalid(f"field {name} not exist")
    pk = schema.primary.name
    if include_pk and pk not in fetch:
        fetch.insert(0, pk)
        names.insert(0, pk)
    if (whole or keys) and dyn is not None:
        fetch.append(dyn.name)
        if whole and dyn.name not in names:
            names.append(dyn.name)
    for f in schema.fields:
        if f.nullable and f.name in fetch:
            fetch.append(f"{f.name}.valid")
    return OutputPlan(fetch, names, keys, whole, timezone)


def encode_outputs(schema: Schema, cols: dict[str, np.ndarray], plan: OutputPlan) -> list[schema_pb2.FieldData]:
    out = []
    for name in plan.fetch:
        if name.endswith(".valid") or name not in cols:
            continue
        f = schema.field(name)
        col = cols[name]
        if f.is_dynamic:
            if not plan.whole_meta:
                keys = plan.dynamic_keys
                col = (
                    np.array([{k: v[k] for k in keys if isinstance(v, dict) and k in v} for v in col], dtype=object)
                    if len(col)
                    else col
                )
        elif name not in plan.names:
            continue
        out.append(encode_column(f, col, cols.get(f"{name}.valid"), plan.timezone or schema.timezone))
    return out
