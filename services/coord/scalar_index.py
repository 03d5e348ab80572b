"""Which scalar index types a field accepts (Milvus's rules), and what each one is built as.

CreateIndex on a scalar field names INVERTED, STL_SORT, Trie, BITMAP or AUTOINDEX (or no
type: AUTOINDEX). The type rules follow Milvus's index checkers: STL_SORT on numbers only,
Trie on strings only, BITMAP on bool/integer/string (and arrays of those) but never the
primary key, INVERTED on everything but JSON (a JSON field takes INVERTED, BITMAP or AUTOINDEX
on a path with a cast type: json_index.py). Scalar indexes need no build on an indexnode:
querynodes build the in-memory structure when they load a sealed segment, so the build is
recorded finished at once and never blocks load (only vector fields need an index to load).
"""

from __future__ import annotations

from pymilvus.grpc_gen.schema_pb2 import DataType

from common.errors import Code, MilvusError, invalid
from common.index import normalize_index_type
from common.index.params import SPECS
from common.schema import Field, dtype_name

SCALAR_INDEX_TYPES = ("INVERTED", "STL_SORT", "TRIE", "BITMAP", "AUTOINDEX")

_INTEGERS = frozenset({DataType.Int8, DataType.Int16, DataType.Int32, DataType.Int64})
_FLOATS = frozenset({DataType.Float, DataType.Double})
_NUMBERS = _INTEGERS | _FLOATS
_STRINGS = frozenset({DataType.VarChar, DataType.String})


def unknown_index_type(index_type: str) -> MilvusError:
    """Milvus's answer to an index type no checker knows (WrapErrParameterInvalid wording)."""
    return invalid(f"invalid parameter[expected=valid index][actual=invalid index type: {index_type}]")


def check_scalar_type_on_vector(index_type: str, field: Field, metric: str) -> None:
    """A scalar index type named on a vector field: refused as Milvus's checkTrain does.

    Milvus first finds the type's checker (so the type is known), checks a sparse field's
    metric, then asks the checker whether it builds on the field's data type.
    """
    name = normalize_index_type(index_type)
    if name not in SCALAR_INDEX_TYPES or name == "AUTOINDEX":
        return
    if field.dtype == DataType.SparseFloatVector and metric not in ("IP", "BM25"):
        raise invalid("only IP&BM25 is the supported metric type for sparse index")
    raise MilvusError(
        Code.INDEX_NOT_SUPPORTED, f"data type {dtype_name(field.dtype)} can't build with this index {name}"
    )


def _primitive_auto(dtype: int) -> str:
    """What AUTOINDEX builds on a scalar type (Milvus picks BITMAP for bool, else inverted/hybrid)."""
    return "BITMAP" if dtype == DataType.Bool else "INVERTED"


def resolve_scalar_index(index_type: str, field: Field) -> str:
    """Check a scalar index request; returns the engine built (AUTOINDEX resolved).

    Raises MilvusError with Milvus's wording when the type is unknown or does not fit the field.
    """
    name = normalize_index_type(index_type)
    if name not in SCALAR_INDEX_TYPES:
        if name in SPECS:
            raise MilvusError(
                Code.INDEX_NOT_SUPPORTED, f"data type {dtype_name(field.dtype)} can't build with this index {name}"
            )
        raise unknown_index_type(index_type)
    dtype, elem = field.dtype, field.element_type
    if dtype == DataType.Timestamptz:  # int64 microseconds: a sorted index serves its ranges
        if name in ("AUTOINDEX", "STL_SORT", "INVERTED"):
            return "STL_SORT" if name == "AUTOINDEX" else name
        raise invalid(f"{name} are not supported on {dtype_name(dtype)} field")
    if name == "AUTOINDEX":
        if dtype in _NUMBERS or dtype in _STRINGS or dtype == DataType.Bool:
            return _primitive_auto(dtype)
        if dtype == DataType.Array and (elem in _NUMBERS or elem in _STRINGS or elem == DataType.Bool):
            return _primitive_auto(elem)
        raise invalid(f"create auto index on type:{dtype_name(dtype)} is not supported")
    if name == "STL_SORT" and dtype not in _NUMBERS:
        raise invalid("STL_SORT are only supported on numeric field")
    if name == "TRIE" and dtype not in _STRINGS:
        raise invalid("TRIE are only supported on varchar field")
    if name == "BITMAP":
        if field.is_primary:
            raise invalid("create bitmap index on primary key not supported")
        ok = (DataType.Bool, *_INTEGERS, *_STRINGS)
        if dtype not in ok and dtype != DataType.Array:
            raise invalid("bitmap index are only supported on bool, int, string and array field")
        if dtype == DataType.Array and elem not in ok:
            raise invalid("bitmap index are only supported on bool, int, string for array field")
    if name == "INVERTED" and dtype not in (DataType.Bool, *_NUMBERS, *_STRINGS, DataType.Array):
        raise invalid(f"INVERTED are not supported on {dtype_name(dtype)} field")
    return name
