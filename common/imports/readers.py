"""The three file formats of Milvus's bulk import, read from object storage into checked columns.

* JSON, row-based: ``{"rows": [{...}, ...]}`` or a plain list of row objects (Milvus 2.5
  accepts both); keys outside the schema go to the dynamic field.
* Parquet: one column per field (``$meta`` as a JSON string column for dynamic fields), as
  pymilvus's bulk writers produce it.
* NumPy: one ``<field name>.npy`` per field, all files of a batch together.

A batch is one JSON or Parquet file, or a set of NumPy files (Milvus's ImportFile). Every
failure is an :class:`ImportFileError` naming the file.
"""

from __future__ import annotations

import io
import posixpath
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from common.schema import Schema
from common.storage.base import ObjectNotFound, ObjectStorage

from .assemble import Columns, assemble, check_names, importable_fields
from .errors import ImportFileError

JSON, PARQUET, NUMPY = "json", "parquet", "numpy"
_SUFFIX = {".json": JSON, ".parquet": PARQUET, ".npy": NUMPY}


def file_type(paths: Sequence[str]) -> str:
    """The format of one batch; several files only for NumPy (Milvus's GetFileType rules)."""
    if not paths:
        raise ImportFileError("import request is empty")
    kinds = set()
    for p in paths:
        kind = _SUFFIX.get(posixpath.splitext(p)[1].lower())
        if kind is None:
            raise ImportFileError(f"unexpected file type, files={list(paths)}", p)
        kinds.add(kind)
    if len(kinds) > 1:
        raise ImportFileError(f"inconsistent file types, files={list(paths)}")
    kind = kinds.pop()
    if kind != NUMPY and len(paths) > 1:
        raise ImportFileError(f"for JSON or parquet file, each task only accepts one file, files={list(paths)}")
    return kind


def _get(storage: ObjectStorage, path: str) -> bytes:
    try:
        return storage.get(path.lstrip("/"))
    except (ObjectNotFound, KeyError, FileNotFoundError):
        raise ImportFileError("the file does not exist in the object storage", path) from None
    except ValueError as exc:
        raise ImportFileError(f"the file cannot be read: {exc}", path) from None


def read_batch(storage: ObjectStorage, schema: Schema, paths: Sequence[str]) -> Columns:
    """Checked columns of one batch (one JSON / Parquet file, or a set of NumPy files)."""
    kind = file_type(paths)
    if kind == NUMPY:
        return read_numpy(schema, {p: _get(storage, p) for p in paths})
    data = _get(storage, paths[0])
    try:
        return read_json(schema, data) if kind == JSON else read_parquet(schema, data)
    except ImportFileError as exc:
        raise exc.in_file(paths[0]) from None


def count_rows(storage: ObjectStorage, paths: Sequence[str]) -> int:
    """Rows in a batch without checking them (for progress), 0 if unknown."""
    try:
        kind = file_type(paths)
        if kind == PARQUET:
            return int(pq.ParquetFile(io.BytesIO(_get(storage, paths[0]))).metadata.num_rows)
    except Exception:
        return 0
    return 0


# ---- JSON ---------------------------------------------------------------------------------


def read_json(schema: Schema, data: bytes) -> Columns:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ImportFileError(f"the file is not valid JSON: {exc}") from None
    if isinstance(doc, dict):
        if "rows" not in doc or not isinstance(doc["rows"], list):
            raise ImportFileError('invalid JSON format, the root key should be "rows" holding a list of rows')
        rows = doc["rows"]
    elif isinstance(doc, list):
        rows = doc
    else:
        raise ImportFileError("invalid JSON format, expected a list of rows or an object with \"rows\"")
    dynamic = schema.dynamic_field
    known = {f.name for f in schema.fields}
    names: dict[str, None] = {}
    extra: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ImportFileError(
                f"invalid JSON format, each row should be a key-value map, but got type {type(row).__name__} in row {i}"
            )
        names.update(dict.fromkeys(row))
        extra.append({k: v for k, v in row.items() if k not in known} if dynamic is not None else {})
    check_names(schema, [n for n in names if n in known or dynamic is None], "JSON file")
    for f in importable_fields(schema):
        if f.name in names and not f.nullable and f.default_value is None:
            lacking = next((i for i, row in enumerate(rows) if f.name not in row), None)
            if lacking is not None:
                raise ImportFileError(f"value of field '{f.name}' is missed in row {lacking}")
    values = {name: [row.get(name) for row in rows] for name in names if name in known}
    return assemble(schema, values, len(rows), extra if dynamic is not None else None)


# ---- Parquet ------------------------------------------------------------------------------


def _arrow_values(col: pa.ChunkedArray) -> Any:
    """A uniform numeric list column as an (n, width) array, anything else as Python values."""
    arr = col.combine_chunks()
    if arr.null_count == 0 and (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)
                                or pa.types.is_boolean(arr.type)):
        return arr.to_numpy(zero_copy_only=False)
    if (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type) or pa.types.is_fixed_size_list(arr.type)) and (
        arr.null_count == 0 and len(arr) > 0
    ):
        value_type = arr.type.value_type
        if pa.types.is_integer(value_type) or pa.types.is_floating(value_type):
            lengths = pa.compute.list_value_length(arr).to_numpy(zero_copy_only=False)
            if (lengths == lengths[0]).all() and arr.values.null_count == 0:
                flat = arr.flatten().to_numpy(zero_copy_only=False)
                return flat.reshape(len(arr), int(lengths[0]))
    return arr.to_pylist()


def read_parquet(schema: Schema, data: bytes) -> Columns:
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ImportFileError(f"the file is not a valid Parquet file: {exc}") from None
    check_names(schema, table.column_names, "parquet file")
    values = {name: _arrow_values(table.column(name)) for name in table.column_names}
    return assemble(schema, values, table.num_rows)


# ---- NumPy --------------------------------------------------------------------------------


def _npy_values(arr: np.ndarray) -> Any:
    if arr.ndim == 2 and arr.dtype.kind in "iuf":
        return arr
    if arr.ndim == 1 and arr.dtype.kind in "biuf":
        return arr
    if arr.ndim != 1:
        raise ImportFileError(f"expected a 1-D array (or 2-D for vectors), got shape {arr.shape}")
    return arr.tolist()


def read_numpy(schema: Schema, files: dict[str, bytes]) -> Columns:
    values: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for path, data in files.items():
        name = posixpath.splitext(posixpath.basename(path))[0]
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError as exc:
            raise ImportFileError(f"the file is not a valid NumPy file: {exc}", path) from None
        if name in values:
            raise ImportFileError(f"duplicated NumPy file for field '{name}'", path)
        try:
            check_names(schema, [name], "NumPy files")
            values[name] = _npy_values(arr)
        except ImportFileError as exc:
            raise exc.in_file(path) from None
        counts[path] = len(arr)
    if len(set(counts.values())) > 1:
        raise ImportFileError(f"the NumPy files have different row counts: {counts}")
    n = next(iter(counts.values()), 0)
    try:
        return assemble(schema, values, n)
    except ImportFileError as exc:
        raise exc.in_file(",".join(files)) from None
