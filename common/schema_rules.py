"""Milvus's CreateCollection and AddCollectionField rules, with Milvus's codes and wording.

The proxy (createCollectionTask.PreExecute, ValidateField, validateAddFieldRequest) and the
rootcoord (checkFieldSchema) reject a bad schema before anything is stored; clients and the
Milvus test-suite match on their messages. This module repeats those checks on the
``schemapb`` messages, in Milvus's order, so :mod:`common.schema` can stay a plain model.
Messages from Go's plain errors (no merr title) are reported as code 1100.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pymilvus.grpc_gen import schema_pb2
from pymilvus.grpc_gen.schema_pb2 import DataType

from common import timestamptz
from common.errors import Code, MilvusError
from common.schema_functions import check_analyzers, check_functions

if TYPE_CHECKING:
    from common.schema import Field

DYNAMIC_FIELD_NAME = "$meta"
START_FIELD_ID = 100
MAX_FIELD_NUM = 64
MAX_VECTOR_FIELD_NUM = 10
MAX_NAME_LENGTH = 255
MAX_DIMENSION = 32768
MAX_VARCHAR_LENGTH = 65535
MAX_ARRAY_CAPACITY = 4096

VECTOR_TYPES = frozenset({DataType.FloatVector, DataType.BinaryVector, DataType.Float16Vector,
                          DataType.BFloat16Vector, DataType.SparseFloatVector, DataType.Int8Vector})
_SCALAR_TYPES = frozenset({DataType.Bool, DataType.Int8, DataType.Int16, DataType.Int32, DataType.Int64,
                           DataType.Float, DataType.Double, DataType.VarChar, DataType.JSON, DataType.Array,
                           DataType.Timestamptz})
_ARRAY_ELEMENT_TYPES = frozenset({DataType.Bool, DataType.Int8, DataType.Int16, DataType.Int32,
                                  DataType.Int64, DataType.Float, DataType.Double, DataType.VarChar})
_CLUSTERING_KEY_TYPES = frozenset({DataType.Int8, DataType.Int16, DataType.Int32, DataType.Int64,
                                   DataType.Float, DataType.Double, DataType.VarChar})
# Words the expression grammar reserves (Milvus pkg/common FieldNameKeywords).
_KEYWORDS = frozenset({
    "$meta", "like", "exists", "EXISTS", "and", "or", "not", "in", "json_contains", "JSON_CONTAINS",
    "json_contains_all", "JSON_CONTAINS_ALL", "json_contains_any", "JSON_CONTAINS_ANY",
    "array_contains", "ARRAY_CONTAINS", "array_contains_all", "ARRAY_CONTAINS_ALL",
    "array_contains_any", "ARRAY_CONTAINS_ANY", "array_length", "ARRAY_LENGTH", "true", "True", "TRUE",
    "false", "False", "FALSE", "text_match", "TEXT_MATCH", "phrase_match", "PHRASE_MATCH",
    "random_sample", "RANDOM_SAMPLE"
})
KNOWN_PARAMS = ("dim", "max_length", "max_capacity")
# ValueField oneof that carries a default for each type, and the name Milvus prints for it.
DEFAULT_SLOT = {
    DataType.Bool: ("bool_data", "DataType_Bool"), DataType.Int8: ("int_data", "DataType_Int"),
    DataType.Int16: ("int_data", "DataType_Int"), DataType.Int32: ("int_data", "DataType_Int"),
    DataType.Int64: ("long_data", "DataType_Int64"), DataType.Float: ("float_data", "DataType_Float"),
    DataType.Double: ("double_data", "DataType_Double"),
    DataType.VarChar: ("string_data", "DataType_VarChar"),
    DataType.Timestamptz: ("long_data", "DataType_Int64"),  # stored as UTC microseconds; sent as text
}
_INT_RANGE = {DataType.Int8: (-128, 127), DataType.Int16: (-32768, 32767)}


def dtype_name(dtype: int) -> str:
    """Milvus's name of a DataType value ("FloatVector"), or the number when unknown."""
    try:
        return DataType.Name(dtype)
    except ValueError:
        return str(dtype)


def _invalid(msg: str, code: int = Code.PARAMETER_INVALID, title: str = "invalid parameter") -> MilvusError:
    """merr.WrapErrParameterInvalidMsg: ``"<msg>: invalid parameter"``."""
    return MilvusError(code, f"{msg}: {title}")


def _mismatch(msg: str, expected: object, actual: object) -> MilvusError:
    """merr.WrapErrParameterInvalid: ``"<msg>: invalid parameter[expected=..][actual=..]"``."""
    return _plain(f"{msg}: invalid parameter[expected={expected}][actual={actual}]")


def _plain(msg: str) -> MilvusError:
    """A Milvus error returned as a plain Go error (no merr title), reported as code 1100."""
    return MilvusError(Code.PARAMETER_INVALID, msg)


def uses_param(dtype: int, element_type: int, key: str) -> bool:
    """Whether type param ``key`` (dim, max_length, max_capacity) means something for this type."""
    if key == "dim":
        return dtype in VECTOR_TYPES and dtype != DataType.SparseFloatVector
    if key == "max_length":
        return dtype == DataType.VarChar or (dtype == DataType.Array and element_type == DataType.VarChar)
    return dtype == DataType.Array


def parse_int(key: str, value: str, field_name: str) -> int:
    """A numeric type param, with Milvus's error when it is not an integer."""
    try:
        return int(value.strip())
    except ValueError:
        if key == "max_capacity":
            raise _invalid(f"the value for {key} of field {field_name} must be an integer") from None
        raise _plain(f'strconv.ParseInt: parsing "{value}": invalid syntax') from None


# ---------------------------------------------------------------- CreateCollection validation

def check_collection(proto: schema_pb2.CollectionSchema) -> None:
    """Milvus proxy createCollectionTask.PreExecute, then rootcoord's checks, in that order."""
    if len(proto.struct_array_fields):
        raise MilvusError(Code.UNIMPLEMENTED, "struct array fields are not supported by Quiver yet")
    check_functions(proto)
    fields = list(proto.fields)
    if len(fields) > MAX_FIELD_NUM:
        raise _plain(f"maximum field's number should be limited to {MAX_FIELD_NUM}")
    n_vectors = sum(f.data_type in VECTOR_TYPES for f in fields)
    if n_vectors > MAX_VECTOR_FIELD_NUM:
        raise _plain(f"maximum vector field's number should be limited to {MAX_VECTOR_FIELD_NUM}")
    if n_vectors == 0:
        raise _invalid("schema does not contain vector field")
    check_collection_name(proto.name)
    _check_primary_key(fields)
    if any(f.is_dynamic for f in fields):
        raise _invalid("cannot explicitly set a field as a dynamic field")
    _check_auto_id(fields)
    for f in fields:
        _check_type(f)
    _check_partition_key(fields)
    _check_clustering_key(fields, proto.name)
    for f in fields:
        _check_field_params(f, proto.name)
    seen: set[str] = set()
    for f in fields:
        if f.name in seen:
            raise _invalid(f"duplicated field name {f.name} found")
        seen.add(f.name)
    for f in fields:
        _check_null_and_default(f)
    check_analyzers(proto)


def check_collection_name(name: str, kind: str = "name") -> None:
    """validateCollectionNameOrAlias (also used for aliases with kind="alias")."""
    if not name:
        raise _invalid(f"collection {kind} should not be empty")
    bad = f"Invalid collection {kind}: {name}. "
    if len(name) > MAX_NAME_LENGTH:
        raise _invalid(f"{bad} the length of a collection {kind} must be less than {MAX_NAME_LENGTH} "
                       "characters")
    if not (name[0] == "_" or _is_alpha(name[0])):
        raise _invalid(f"{bad} the first character of a collection {kind} must be an underscore or letter")
    if not all(c == "_" or _is_alpha(c) or c.isdigit() and c.isascii() for c in name[1:]):
        raise _invalid(f"{bad} collection {kind} can only contain numbers, letters and underscores")


def check_field_name(raw: str) -> None:
    """validateFieldName: code 1701, ``"<why>: field name invalid[field=<name>]"``."""
    name = raw.strip()

    def bad(why: str) -> MilvusError:
        return MilvusError(Code.FIELD_INVALID_NAME, f"{why}: field name invalid[field={name}]")

    if not name:
        raise bad("field name should not be empty")
    prefix = f"Invalid field name: {name}. "
    if len(name) > MAX_NAME_LENGTH:
        raise bad(f"{prefix}The length of a field name must be less than {MAX_NAME_LENGTH} characters.")
    if not (name[0] == "_" or _is_alpha(name[0])):
        raise bad(f"{prefix}The first character of a field name must be an underscore or letter.")
    if not all(c == "_" or _is_alpha(c) or c.isdigit() and c.isascii() for c in name[1:]):
        raise bad(f"{prefix}Field name can only contain numbers, letters, and underscores.")
    if name in _KEYWORDS or name.lower() in ("like", "and", "or", "not", "in", "null"):
        raise bad(f"{prefix}{name} is keyword in milvus.")


def _is_alpha(c: str) -> bool:
    return c.isascii() and c.isalpha()


def _check_primary_key(fields: list[schema_pb2.FieldSchema]) -> None:
    first: schema_pb2.FieldSchema | None = None
    for f in fields:
        if not f.is_primary_key:
            continue
        if first is not None:
            raise _invalid(f"there are more than one primary key, field name = {first.name}, {f.name}")
        if f.data_type not in (DataType.Int64, DataType.VarChar):
            raise _invalid("the data type of primary key should be Int64 or VarChar")
        first = f
    if first is None:
        raise _invalid("primary key is not specified", Code.PARAMETER_MISSING, "missing parameter")


def _check_auto_id(fields: list[schema_pb2.FieldSchema]) -> None:
    first: schema_pb2.FieldSchema | None = None
    for f in fields:
        if not f.autoID:
            continue
        if first is not None:
            raise _invalid("only one field can speficy AutoID with true, "
                           f"field name = {first.name}, {f.name}")
        first = f
        if not f.is_primary_key:
            raise _invalid(f"only primary field can speficy AutoID with true, field name = {f.name}")


def _check_type(f: schema_pb2.FieldSchema) -> None:
    dtype = f.data_type
    if dtype == DataType.String:
        raise _invalid("string data type not supported yet, please use VarChar type instead")
    if dtype == 0:
        raise _invalid("data type None is not valid")
    if dtype == DataType.Array:
        el = f.element_type
        if el == DataType.String:
            raise _invalid("string data type not supported yet, please use VarChar type instead")
        if el == 0:
            raise _invalid("element data type None is not valid")
        if el not in _ARRAY_ELEMENT_TYPES:
            raise _invalid(f"element type {dtype_name(el)} is not supported")
    elif dtype == DataType.ArrayOfVector:
        raise _invalid(f"array of vector can only be in the struct array field, field name: {f.name}")
    elif dtype not in _SCALAR_TYPES and dtype not in VECTOR_TYPES:
        raise _mismatch(f"field data type: {dtype_name(dtype)} is not supported",
                        "valid field", f"field data type: {dtype_name(dtype)} is not supported")


def _check_partition_key(fields: list[schema_pb2.FieldSchema]) -> None:
    first: schema_pb2.FieldSchema | None = None
    for f in fields:
        if not f.is_partition_key:
            continue
        if first is not None:
            raise _plain(f"there are more than one partition key, field name = {first.name}, {f.name}")
        if f.is_primary_key:
            raise _plain("the partition key field must not be primary field")
        if f.nullable:
            raise _invalid("partition key field not support nullable")
        if f.data_type not in (DataType.Int64, DataType.VarChar):
            raise _plain("the data type of partition key should be Int64 or VarChar")
        first = f


def _check_clustering_key(fields: list[schema_pb2.FieldSchema], collection: str) -> None:
    first: schema_pb2.FieldSchema | None = None
    for f in fields:
        if not f.is_clustering_key:
            continue
        if f.data_type in VECTOR_TYPES:
            raise MilvusError(Code.COLLECTION_ILLEGAL_SCHEMA,
                              f"vector clustering key not allowed[collection={collection}]")
        if f.data_type not in _CLUSTERING_KEY_TYPES:
            raise _illegal(collection, f"clustering key field {f.name} has unsupported data type "
                                       f"{dtype_name(f.data_type)}")
        if first is not None:
            raise _illegal(collection, "there are more than one clustering key, "
                                       f"field name = {first.name}, {f.name}")
        first = f


def _illegal(collection: str, msg: str) -> MilvusError:
    return MilvusError(Code.COLLECTION_ILLEGAL_SCHEMA,
                       f"{msg}: illegal collection schema[collection={collection}]")


def _params(f: schema_pb2.FieldSchema) -> dict[str, str]:
    out: dict[str, str] = {}
    for kv in f.type_params:
        out.setdefault(kv.key, kv.value)
    return out


def _check_field_params(f: schema_pb2.FieldSchema, collection: str) -> None:
    """ValidateField: name, dimension, max_length, max_capacity."""
    check_field_name(f.name)
    params = _params(f)
    if f.data_type in VECTOR_TYPES:
        _check_dim(f, params)
    if uses_param(f.data_type, f.element_type, "max_length"):
        if "max_length" not in params:
            raise _invalid(f"type param(max_length) should be specified for the field({f.name}) of "
                           f"collection {collection}", Code.PARAMETER_MISSING, "missing parameter")
        length = parse_int("max_length", params["max_length"], f.name)
        if not 0 < length <= MAX_VARCHAR_LENGTH:
            raise _invalid(f"the maximum length specified for the field({f.name}) should be in "
                           f"(0, {MAX_VARCHAR_LENGTH}], but got {length} instead")
    if f.data_type == DataType.Array:
        if "max_capacity" not in params:
            raise _invalid(f"type param(max_capacity) should be specified for array field {f.name} of "
                           f"collection {collection}", Code.PARAMETER_MISSING, "missing parameter")
        capacity = parse_int("max_capacity", params["max_capacity"], f.name)
        if not 0 < capacity <= MAX_ARRAY_CAPACITY:
            raise _invalid(f"the maximum capacity specified for a Array should be in "
                           f"(0, {MAX_ARRAY_CAPACITY}]")


def _check_dim(f: schema_pb2.FieldSchema, params: dict[str, str]) -> None:
    if f.data_type == DataType.SparseFloatVector:
        if "dim" in params:
            raise _invalid(f"dim should not be specified for sparse vector field {f.name}({f.fieldID})")
        return
    if "dim" not in params:
        raise _invalid(f"dimension is not defined in field type params of field {f.name}, "
                       "check type param `dim` for vector field")
    dim = parse_int("dim", params["dim"], f.name)
    if dim <= 1:
        raise _invalid(f"invalid dimension: {dim}. should be in range 2 ~ {MAX_DIMENSION}")
    if f.data_type == DataType.BinaryVector:
        if dim % 8:
            raise _invalid(f"invalid dimension: {dim} of field {f.name}. binary vector dimension should be "
                           "multiple of 8. ")
        if dim > MAX_DIMENSION * 8:
            raise _invalid(f"invalid dimension: {dim} of field {f.name}. binary vector dimension should "
                           f"be in range 2 ~ {MAX_DIMENSION * 8}")
    elif dim > MAX_DIMENSION:
        raise _invalid(f"invalid dimension: {dim} of field {f.name}. float vector dimension should be in "
                       f"range 2 ~ {MAX_DIMENSION}")


def _check_null_and_default(f: schema_pb2.FieldSchema) -> None:
    """rootcoord checkFieldSchema plus the proxy's primary-key rules."""
    tname = dtype_name(f.data_type)
    if f.nullable and f.is_primary_key:
        raise _invalid("primary field not support null")
    slot = f.default_value.WhichOneof("data") if f.HasField("default_value") else None
    if slot is None:
        return
    if f.is_primary_key:
        raise _invalid("primary field not support default_value")
    if f.data_type == DataType.Timestamptz and slot == "string_data":
        timestamptz.parse_one(f.default_value.string_data, timestamptz.DEFAULT_TIMEZONE)  # refused if bad
        return
    expected = DEFAULT_SLOT.get(f.data_type)
    if expected is None:
        raise _invalid(f"type not support default_value, type:{tname}, name:{f.name}")
    if slot != expected[0]:
        names = {s: n for s, n in DEFAULT_SLOT.values()}
        raise _mismatch("default value type mismatches field schema type", names.get(slot, slot), "not match")
    value = getattr(f.default_value, slot)
    if f.data_type in _INT_RANGE:
        low, high = _INT_RANGE[f.data_type]
        if not low <= value <= high:
            raise _plain(f"default value out of range: invalid parameter"
                         f"[{value} out of range {low} <= value <= {high}]")
    if f.data_type == DataType.VarChar:
        max_length = int(_params(f)["max_length"])
        if len(value.encode()) > max_length:
            raise _mismatch(f"the length ({len(value.encode())}) of string exceeds max length ({max_length})",
                            "valid length string", "string length exceeds max length")


# ---------------------------------------------------------------- AddCollectionField validation

def check_added_field(collection: str, fields: Sequence[Field], new: Field) -> None:
    """Milvus 2.6 addCollectionFieldTask.PreExecute, in its order, then rootcoord's checkFieldSchema
    (a vector field too: nullable, its rows written before it are null)."""
    if len(fields) >= MAX_FIELD_NUM:
        raise _invalid(f"The number of fields has reached the maximum value {MAX_FIELD_NUM}")
    if new.is_vector and sum(f.is_vector for f in fields) >= MAX_VECTOR_FIELD_NUM:
        raise _plain(f"maximum vector field's number should be limited to {MAX_VECTOR_FIELD_NUM}")
    if new.is_dynamic or new.name in (DYNAMIC_FIELD_NAME, "RowID", "Timestamp"):
        raise _invalid(f"not support to add system field, field name = {new.name}")
    if new.is_primary:
        raise _invalid(f"not support to add pk field, field name = {new.name}")
    if not new.nullable:
        raise _invalid(f"added field must be nullable, please check it, field name = {new.name}")
    if new.auto_id:
        raise _invalid(f"only primary field can speficy AutoID with true, field name = {new.name}")
    if new.is_partition_key:
        raise _invalid(f"not support to add partition key field, field name  = {new.name}")
    if new.is_clustering_key:
        if new.dtype not in _CLUSTERING_KEY_TYPES:
            raise _invalid(f"clustering key field {new.name} has unsupported data type {dtype_name(new.dtype)}")
        if any(f.is_clustering_key for f in fields):
            raise _invalid(f"already has another clutering key field, field name: {new.name}")
    proto = new.to_proto()
    _check_type(proto)
    _check_field_params(proto, collection)
    if any(f.name == new.name for f in fields):
        raise _invalid(f"duplicate field name: {new.name}")
    _check_null_and_default(proto)


def check_raw_default(fs: schema_pb2.FieldSchema) -> None:
    """A default whose oneof slot does not fit the type is refused before the field is parsed."""
    if fs.HasField("default_value") and fs.default_value.WhichOneof("data") is not None:
        _check_null_and_default(fs)
