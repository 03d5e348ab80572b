"""Partial-update upserts: merge the fields a client sent with the stored rows, as Milvus 2.6 does.

An upsert with ``partial_update=True`` (or with any array ``field_ops``) carries only some fields.
For each primary key that already exists, the fields left out keep their stored values, the dynamic
field's keys are merged into the stored ones, and an ARRAY_APPEND / ARRAY_REMOVE op combines the
sent array with the stored one. A key that does not exist yet is an insert: the fields left out
must be nullable or have a default value. The result is a complete set of columns that the normal
upsert path (delete the old row, insert the new one) writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pymilvus.grpc_gen import schema_pb2
from pymilvus.grpc_gen.schema_pb2 import DataType

from common.errors import invalid
from common.fielddata import empty_column, valid_name
from common.schema import Field, Schema

REPLACE = schema_pb2.FieldPartialUpdateOp.REPLACE
APPEND = schema_pb2.FieldPartialUpdateOp.ARRAY_APPEND
REMOVE = schema_pb2.FieldPartialUpdateOp.ARRAY_REMOVE


def parse_ops(schema: Schema, request: Any) -> dict[str, int]:
    """The non-REPLACE ops by field name, checked like validateFieldPartialUpdateOps."""
    ops: dict[str, int] = {}
    seen: set[str] = set()
    sent = {fd.field_name: fd for fd in request.fields_data}
    for op_msg in getattr(request, "field_ops", ()):
        name = op_msg.field_name
        if not name:
            raise invalid("FieldPartialUpdateOp.field_name is required")
        if name in seen:
            raise invalid(f'duplicate partial-update op for field "{name}"')
        seen.add(name)
        op = int(op_msg.op)
        if op == REPLACE:
            continue
        field = schema.get(name)
        if field is not None and field.is_primary:
            raise invalid(f'field "{name}" is the primary key and cannot carry a partial-update op')
        if field is None:
            raise invalid(f"fieldName {name} not exist in collection schema")
        if op not in (APPEND, REMOVE):
            raise invalid(f"unsupported partial update op: {op}")
        if field.dtype != DataType.Array:
            op_name = schema_pb2.FieldPartialUpdateOp.OpType.Name(op)
            type_name = DataType.Name(field.dtype)
            raise invalid(f'op {op_name} requires Array field, but field "{name}" is {type_name}')
        if name not in sent:
            raise invalid(f'partial-update op targets field "{name}" not present in fields_data')
        ops[name] = op
    return ops


def _array_op(base: np.ndarray, update: np.ndarray, op: int, field: Field) -> np.ndarray:
    if op == APPEND:
        merged = np.concatenate([np.asarray(base), np.asarray(update)])
        if field.max_capacity and len(merged) > field.max_capacity:
            raise invalid(f"array length {len(merged)} exceeds max_capacity {field.max_capacity}")
        return merged
    drop = set(np.asarray(update).tolist())
    return np.asarray([v for v in np.asarray(base).tolist() if v not in drop], dtype=np.asarray(base).dtype)


def _filler(field: Field, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Values for rows inserted without this field: its default, else null; else an error."""
    if field.default_value is None and not field.nullable and not field.is_dynamic:
        raise invalid(f"fieldSchema({field.name}) has no corresponding fieldData pass in")
    column = empty_column(field, n)
    if field.default_value is not None:
        column[:] = field.default_value
        return column, np.ones(n, dtype=np.bool_)
    return column, np.zeros(n, dtype=np.bool_)


def merge_partial(
    schema: Schema,
    sent: Mapping[str, np.ndarray],
    stored: Mapping[str, np.ndarray],
    ops: Mapping[str, int],
) -> dict[str, np.ndarray]:
    """Complete columns for every row of ``sent``: stored values fill what the client left out.

    ``sent`` holds the decoded columns of the request (partial: only fields the client sent, with
    ``<name>.valid`` for nullable ones); ``stored`` holds the existing rows of those keys, as a
    query returns them (any order, every field).
    """
    pk = schema.primary.name
    keys = sent[pk]
    n = len(keys)
    stored_pos = {k: i for i, k in enumerate(stored[pk].tolist())} if stored else {}
    src = np.array([stored_pos.get(k, -1) for k in keys.tolist()], dtype=np.int64)
    upd = np.flatnonzero(src >= 0)  # rows that update a stored row
    new = np.flatnonzero(src < 0)  # rows that insert
    out: dict[str, np.ndarray] = {}
    for field in schema.fields:
        name = field.name
        vname = valid_name(name)
        if name in sent:
            column = sent[name].copy()
            valid = sent.get(vname)
            valid = valid.copy() if valid is not None else None
            if len(upd) and field.is_dynamic:
                for i in upd:
                    merged = dict(stored[name][src[i]] or {})
                    merged.update(column[i] or {})
                    column[i] = merged
            elif len(upd) and name in ops:
                for i in upd:
                    if valid is not None and not valid[i]:
                        # an explicit null in the payload leaves the stored row as it is
                        column[i] = stored[name][src[i]]
                        valid[i] = bool(stored[vname][src[i]]) if vname in stored else True
                        continue
                    column[i] = _array_op(stored[name][src[i]], column[i], ops[name], field)
                    if valid is not None:
                        valid[i] = True
        else:
            column, valid = _filler(field, n) if len(new) else (empty_column(field, n), None)
            if len(upd):
                column[upd] = stored[name][src[upd]]
                if field.nullable:
                    if valid is None:
                        valid = np.ones(n, dtype=np.bool_)
                    valid[upd] = stored[vname][src[upd]] if vname in stored else True
        out[name] = column
        if field.nullable:
            out[vname] = valid if valid is not None else np.ones(n, dtype=np.bool_)
    return out


def stored_rows_expr(schema: Schema) -> tuple[str, list[str]]:
    """The query that reads the stored rows of the keys in template parameter ``pks``."""
    fields = [f.name for f in schema.fields]
    fetch = fields + [valid_name(f.name) for f in schema.fields if f.nullable]
    return f"{schema.primary.name} in {{pks}}", fetch
