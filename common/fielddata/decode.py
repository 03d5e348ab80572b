"""Turn the FieldData of an Insert/Upsert request into checked numpy columns, as Milvus's proxy does.

This is the proxy's insert pre-execute in one call: match each FieldData to a schema field
(duplicates, unknown names, "$meta" only with dynamic fields on), require every field that
has neither a default nor nullability, refuse a client primary key under auto_id, run the
per-type checks of :mod:`.decode_scalar` / :mod:`.decode_vector`, then expand nullable and
default-valued fields from their ``valid_data`` (clients send only the set values), check
every column has ``num_rows`` rows and compute the outputs of the schema's BM25 functions (a
client may not send them). The result feeds the DML channel and every later role.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymilvus.grpc_gen import schema_pb2
from pymilvus.grpc_gen.schema_pb2 import DataType

from common.bm25 import fill_function_outputs
from common.schema import DYNAMIC_FIELD_NAME, Field, Schema

from ._errors import invalid_msg, mismatch, num_rows_mismatch, plain
from .columns import empty_column, object_column, valid_name
from .decode_scalar import array_rows, check_dynamic_rows, json_rows, read_scalar
from .decode_vector import read_vector


def decode_insert(schema: Schema, fields_data: Sequence[schema_pb2.FieldData], num_rows: int, *,
                  for_upsert: bool = False, allow_insert_auto_id: bool = False,
                  partial_update: bool = False, timezone: str | None = None) -> dict[str, np.ndarray]:
    """Checked columns for every field (plus ``"<name>.valid"`` for nullable ones).

    An auto_id primary key is left out on insert (the proxy allocates it) unless
    ``allow_insert_auto_id`` and the client sent it; an upsert always needs the primary key.
    ``partial_update`` (upsert) leaves out fields the client did not send instead of filling.
    ``timezone`` reads Timestamptz strings that carry no offset (default: the collection's).
    """
    tz = timezone or schema.timezone
    if num_rows <= 0:
        raise mismatch("num_rows should be greater than 0", "invalid num_rows", num_rows)
    sent = _match_fields(schema, fields_data)
    pk = schema.primary
    auto_pk = pk.auto_id and not for_upsert
    if auto_pk and pk.name in sent and not allow_insert_auto_id:
        raise invalid_msg(f"can not assign primary field data when auto id enabled and "
                          f"allow_insert_auto_id is false {pk.name}")
    for f in schema.fields:
        if f.is_function_output and f.name in sent:
            raise plain("attempt to insert bm25 function output field")
        skipped = (f.is_primary and auto_pk) or f.is_dynamic or (partial_update and not f.is_primary)
        skipped = skipped or f.is_function_output
        if f.name not in sent and not skipped and f.default_value is None and not f.nullable:
            raise invalid_msg(f"fieldSchema({f.name}) has no corresponding fieldData pass in")
    static = [f.name for f in schema.fields if not f.is_dynamic]
    out: dict[str, np.ndarray] = {}
    for f in schema.fields:
        fd = sent.get(f.name)
        if fd is None:
            if (f.is_primary and auto_pk) or partial_update or f.is_function_output:
                continue
            column, valid = _missing(f, num_rows)
        else:
            column, valid = _expand(f, _read(f, fd, static, tz), fd.valid_data, num_rows)
        out[f.name] = column
        if f.nullable:
            out[valid_name(f.name)] = valid
    if schema.functions and not partial_update:  # a partial update computes them after the merge
        fill_function_outputs(schema, out)
    return out


def _match_fields(schema: Schema,
                  fields_data: Sequence[schema_pb2.FieldData]) -> dict[str, schema_pb2.FieldData]:
    dynamic = schema.dynamic_field
    sent: dict[str, schema_pb2.FieldData] = {}
    for fd in fields_data:
        name = fd.field_name
        if fd.is_dynamic or name == DYNAMIC_FIELD_NAME:
            if dynamic is None:
                raise plain("without dynamic schema enabled, the field name cannot be set to "
                            f"{DYNAMIC_FIELD_NAME}")
            name = dynamic.name
        if name in sent:
            raise invalid_msg(f"duplicated field {fd.field_name} found")
        if schema.get(name) is None:
            raise invalid_msg(f"fieldName {fd.field_name} not exist in collection schema")
        sent[name] = fd
    return sent


def _read(field: Field, fd: schema_pb2.FieldData, static: Sequence[str], timezone: str) -> np.ndarray:
    """The values present in ``fd`` (nulls still omitted), checked."""
    if field.is_vector:
        return read_vector(field, fd)
    values = read_scalar(field, fd, timezone)
    if field.dtype == DataType.JSON:
        rows = json_rows(field, values)
        if field.is_dynamic:
            check_dynamic_rows(rows, static)
        return object_column(rows, len(rows))
    if field.dtype == DataType.Array:
        arrays = array_rows(field, values)
        return object_column(arrays, len(arrays))
    return values


def _missing(field: Field, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A field the client left out: "{}" rows for "$meta", else its default, else nulls."""
    column = empty_column(field, n)
    if field.default_value is not None:
        column[:] = field.default_value
        return column, np.ones(n, dtype=np.bool_)
    return column, np.zeros(n, dtype=np.bool_)


def _expand(field: Field, values: np.ndarray, valid_data: Sequence[bool],
            n: int) -> tuple[np.ndarray, np.ndarray]:
    """fillWithValue + checkAligned: place present values, fill nulls/defaults, count rows."""
    count = len(values)
    has_default = field.default_value is not None
    if not field.nullable and not has_default:
        if len(valid_data) and not np.asarray(valid_data, dtype=np.bool_).all():
            raise mismatch(f"the length of valid_data of field({field.name}) is wrong", 0, len(valid_data))
        if count != n:
            raise num_rows_mismatch(field.name, count, n)
        return values, np.ones(n, dtype=np.bool_)
    if len(valid_data) == 0:
        valid = np.ones(n, dtype=np.bool_)
    elif len(valid_data) != n:
        raise mismatch(f"the length of valid_data of field({field.name}) is wrong", n, len(valid_data))
    else:
        valid = np.asarray(valid_data, dtype=np.bool_)
    n_valid = int(valid.sum())
    if count == n_valid:
        column = values if n_valid == n else empty_column(field, n)
        if n_valid != n:
            column[valid] = values
    elif count == n and not field.is_vector:
        column = values
        column[~valid] = empty_column(field, n - n_valid)
    else:
        raise mismatch("the length of field is wrong", n_valid, count)
    if has_default:
        column[~valid] = field.default_value
        valid = np.ones(n, dtype=np.bool_)
    return column, valid
