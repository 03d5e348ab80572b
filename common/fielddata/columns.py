"""The in-memory column representation of each Milvus type, and helpers that work on columns.

Every role that holds rows (proxy batches, datanode buffers, querynode segments, query
results) keeps them as a dict of numpy columns keyed by field name. This module is the one
place that says which numpy dtype and shape each DataType uses, what an empty or null cell
holds, and how to select and concatenate rows without caring about the type.

Representation: Bool ``bool_``; Int8..Int64 ``int8``..``int64``; Float ``float32``; Double
``float64``; Timestamptz ``int64`` (UTC microseconds); VarChar/String object array of ``str``;
JSON and "$meta" object array of parsed values; Array object array of 1-D arrays; FloatVector
``float32 (n, dim)``; Float16Vector ``float16 (n, dim)``; BFloat16Vector ``uint16 (n, dim)`` raw bits; BinaryVector
``uint8 (n, dim // 8)``; Int8Vector ``int8 (n, dim)``; SparseFloatVector object array of
``dict[int, float]``. A nullable field adds a ``bool`` column ``"<name>.valid"`` (True = set).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from pymilvus.grpc_gen.schema_pb2 import DataType

from common.schema import Field

VALID_SUFFIX = ".valid"

SCALAR_DTYPES: dict[int, type[np.generic]] = {
    DataType.Bool: np.bool_, DataType.Int8: np.int8, DataType.Int16: np.int16, DataType.Int32: np.int32,
    DataType.Int64: np.int64, DataType.Float: np.float32, DataType.Double: np.float64,
    DataType.Timestamptz: np.int64,  # microseconds since the epoch, UTC (common/timestamptz.py)
}
DENSE_VECTOR_DTYPES: dict[int, type[np.generic]] = {
    DataType.FloatVector: np.float32, DataType.Float16Vector: np.float16, DataType.BFloat16Vector: np.uint16,
    DataType.BinaryVector: np.uint8, DataType.Int8Vector: np.int8,
}
STRING_TYPES = frozenset({DataType.VarChar, DataType.String})


def valid_name(field_name: str) -> str:
    """Name of the validity column of a nullable field."""
    return field_name + VALID_SUFFIX


def row_width(field: Field) -> int:
    """Columns of a dense vector field's 2-D array (dim, or dim // 8 for binary)."""
    return field.dim // 8 if field.dtype == DataType.BinaryVector else field.dim


def element_dtype(element_type: int) -> Any:
    """numpy dtype of the elements of an Array field's rows."""
    return object if element_type in STRING_TYPES else SCALAR_DTYPES[element_type]


def empty_column(field: Field, n: int = 0) -> np.ndarray:
    """A column of ``n`` placeholder cells: zeros, "" for strings, None for JSON, empty rows.

    The dynamic "$meta" column holds an empty object per row, as Milvus fills it.
    """
    dtype = field.dtype
    if dtype in SCALAR_DTYPES:
        return np.zeros(n, dtype=SCALAR_DTYPES[dtype])
    if dtype in DENSE_VECTOR_DTYPES:
        return np.zeros((n, row_width(field)), dtype=DENSE_VECTOR_DTYPES[dtype])
    out = np.empty(n, dtype=object)
    if dtype in STRING_TYPES:
        out[:] = ""
    elif dtype == DataType.JSON:
        if field.is_dynamic:
            for i in range(n):
                out[i] = {}
    elif dtype == DataType.Array:
        el = element_dtype(field.element_type)
        for i in range(n):
            out[i] = np.empty(0, dtype=el)
    elif dtype == DataType.SparseFloatVector:
        for i in range(n):
            out[i] = {}
    else:
        raise ValueError(f"no column representation for data type {dtype}")
    return out


def object_column(values: Iterable[Any], n: int) -> np.ndarray:
    """A 1-D object array of ``n`` cells from ``values`` (lists and arrays stay single cells)."""
    return np.fromiter(values, dtype=object, count=n)


def num_rows(columns: Mapping[str, np.ndarray]) -> int:
    """Row count of a column dict (0 when empty)."""
    for column in columns.values():
        return len(column)
    return 0


def take_rows(columns: Mapping[str, np.ndarray], idx: Any) -> dict[str, np.ndarray]:
    """Rows ``idx`` (indices, slice or bool mask) of every column, validity columns included."""
    return {name: column[idx] for name, column in columns.items()}


def concat_columns(parts: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate column dicts with the same names, in order; ``[]`` gives ``{}``."""
    if not parts:
        return {}
    names = list(parts[0])
    for part in parts[1:]:
        if set(part) != set(names):
            raise ValueError(f"cannot concatenate columns {sorted(part)} with {sorted(names)}")
    return {name: parts[0][name] if len(parts) == 1 else np.concatenate([p[name] for p in parts])
            for name in names}
