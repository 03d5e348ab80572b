"""From per-field values read out of files to checked insert columns, with Milvus's import rules.

Readers hand over ``{name: values}`` (a list per field, ``None`` for a null cell, a missing key
for a field the file lacks) plus, for row-based JSON, the keys no field claims. The rules are
those of Milvus's import: an auto_id primary key must not be in the file; a field the file lacks
is null when nullable, its default when it has one, and otherwise an error; a null in a
non-nullable field takes the default or fails; keys outside the schema go to the dynamic field
("$meta") when it is on and are an error otherwise. The columns then pass through the insert
decoder (:func:`common.fielddata.decode_insert`), so ranges, VarChar lengths, finiteness, JSON
size and array capacity are checked exactly as for an Insert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from common.errors import MilvusError
from common.fielddata import decode_insert, encode_column
from common.schema import Field, Schema

from .coerce import to_column
from .errors import ImportFileError

Columns = dict[str, np.ndarray]


def importable_fields(schema: Schema) -> list[Field]:
    """Fields a file provides: all but the dynamic field, an auto_id primary key and function outputs."""
    return [f for f in schema.fields
            if not f.is_dynamic and not (f.is_primary and f.auto_id) and not f.is_function_output]


def check_names(schema: Schema, names: Sequence[str], what: str) -> None:
    """Refuse an auto_id primary key, and names the schema lacks (beyond "$meta" when dynamic)."""
    pk = schema.primary
    if pk.auto_id and pk.name in names:
        raise ImportFileError(f"the primary key '{pk.name}' is auto-generated, no need to provide")
    dynamic = schema.dynamic_field
    for name in names:
        f = schema.get(name)
        if f is not None and f.is_function_output:
            raise ImportFileError(f"the field '{name}' is output by function, no need to provide")
        if f is None and not (dynamic is not None and name == dynamic.name):
            raise ImportFileError(f"the field '{name}' is not defined in schema, but found in the {what}")


def _fill(f: Field, values: Sequence[Any] | None, n: int, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    if values is None:
        if f.default_value is None and not f.nullable:
            raise ImportFileError(f"value of field '{f.name}' is missed")
        values = [None] * n
    column, valid = to_column(f, values, timezone)
    if not valid.all():
        if f.default_value is not None:
            column[~valid] = f.default_value
            valid = np.ones(n, dtype=np.bool_)
        elif not f.nullable:
            row = int(np.flatnonzero(~valid)[0])
            raise ImportFileError(f"value of field '{f.name}' is null in row {row}, but the field is not nullable")
    return column, valid


def assemble(
    schema: Schema, values: Mapping[str, Sequence[Any]], n: int, extra: Sequence[dict[str, Any]] | None = None
) -> Columns:
    """Checked columns (as decode_insert returns them) for ``n`` rows.

    ``extra`` (row-based files) holds per row the keys outside the schema; they are merged
    into the dynamic field's object, a key given twice being an error as in Milvus.
    """
    if n <= 0:
        raise ImportFileError("the file has no rows")
    fds = []
    for f in importable_fields(schema):
        column, valid = _fill(f, values.get(f.name), n, schema.timezone)
        fds.append(encode_column(f, column, valid if f.nullable else None))
    dynamic = schema.dynamic_field
    if dynamic is not None:
        raw = values.get(dynamic.name)
        meta, _ = to_column(dynamic, list(raw) if raw is not None else [{}] * n)
        for i in range(n):
            if meta[i] is None:
                meta[i] = {}
        if extra is not None:
            for i, keys in enumerate(extra):
                dup = set(keys) & set(meta[i])
                if dup:
                    raise ImportFileError(f"duplicated key '{sorted(dup)[0]}' in the dynamic field of row {i}")
                if keys:
                    meta[i] = {**meta[i], **keys}
        fds.append(encode_column(dynamic, meta))
    try:
        return decode_insert(schema, fds, n)
    except ImportFileError:
        raise
    except MilvusError as exc:
        raise ImportFileError(exc.message) from None
