"""CreateCollection schema checks: every rule Milvus enforces, with its code and wording."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pymilvus.grpc_gen import common_pb2, schema_pb2

from common.errors import Code, MilvusError
from common.schema import DataType, Schema
from common.schema_rules import check_collection_name

FS = schema_pb2.FieldSchema


def _kv(**params: object) -> list[common_pb2.KeyValuePair]:
    return [common_pb2.KeyValuePair(key=k, value=str(v)) for k, v in params.items()]


def _base() -> schema_pb2.CollectionSchema:
    return schema_pb2.CollectionSchema(name="coll", fields=[
        FS(name="id", data_type=DataType.Int64, is_primary_key=True),
        FS(name="vec", data_type=DataType.FloatVector, type_params=_kv(dim=8)),
    ])


def _add(*fields: schema_pb2.FieldSchema) -> Callable[[schema_pb2.CollectionSchema], None]:
    return lambda p: p.fields.extend(fields)


def _set(index: int, **attrs: object) -> Callable[[schema_pb2.CollectionSchema], None]:
    def apply(p: schema_pb2.CollectionSchema) -> None:
        for k, v in attrs.items():
            if k == "type_params":
                del p.fields[index].type_params[:]
                p.fields[index].type_params.extend(v)  # type: ignore[arg-type]
            elif k == "default_value":
                p.fields[index].default_value.CopyFrom(v)  # type: ignore[arg-type]
            else:
                setattr(p.fields[index], k, v)
    return apply


def _rename(name: str) -> Callable[[schema_pb2.CollectionSchema], None]:
    return lambda p: setattr(p, "name", name)


def _default(**slot: object) -> schema_pb2.ValueField:
    return schema_pb2.ValueField(**slot)  # type: ignore[arg-type]


P = Code.PARAMETER_INVALID
CASES: list[tuple[str, Callable[[schema_pb2.CollectionSchema], None], int, str]] = [
    ("empty name", _rename(""), P, "collection name should not be empty: invalid parameter"),
    ("long name", _rename("a" * 256), P,
     f"Invalid collection name: {'a' * 256}.  the length of a collection name must be less than 255 "
     "characters: invalid parameter"),
    ("digit first", _rename("1abc"), P,
     "Invalid collection name: 1abc.  the first character of a collection name must be an underscore or "
     "letter: invalid parameter"),
    ("dash", _rename("a-b"), P,
     "Invalid collection name: a-b.  collection name can only contain numbers, letters and underscores: "
     "invalid parameter"),
    ("field digit first", _add(FS(name="1x", data_type=DataType.Int64)), Code.FIELD_INVALID_NAME,
     "Invalid field name: 1x. The first character of a field name must be an underscore or letter.: "
     "field name invalid[field=1x]"),
    ("field dollar", _add(FS(name="a$b", data_type=DataType.Int64)), Code.FIELD_INVALID_NAME,
     "Invalid field name: a$b. Field name can only contain numbers, letters, and underscores.: "
     "field name invalid[field=a$b]"),
    ("field keyword", _add(FS(name="AND", data_type=DataType.Int64)), Code.FIELD_INVALID_NAME,
     "Invalid field name: AND. AND is keyword in milvus.: field name invalid[field=AND]"),
    ("field empty", _add(FS(name=" ", data_type=DataType.Int64)), Code.FIELD_INVALID_NAME,
     "field name should not be empty: field name invalid[field=]"),
    ("field long", _add(FS(name="f" * 256, data_type=DataType.Int64)), Code.FIELD_INVALID_NAME,
     "The length of a field name must be less than 255 characters."),
    ("duplicate", _add(FS(name="vec", data_type=DataType.Int64)), P,
     "duplicated field name vec found: invalid parameter"),
    ("no pk", _set(0, is_primary_key=False), Code.PARAMETER_MISSING,
     "primary key is not specified: missing parameter"),
    ("two pks", _add(FS(name="id2", data_type=DataType.Int64, is_primary_key=True)), P,
     "there are more than one primary key, field name = id, id2: invalid parameter"),
    ("float pk", _set(0, data_type=DataType.Float), P,
     "the data type of primary key should be Int64 or VarChar: invalid parameter"),
    ("auto id not pk", _add(FS(name="x", data_type=DataType.Int64, autoID=True)), P,
     "only primary field can speficy AutoID with true, field name = x: invalid parameter"),
    ("varchar no max_length", _add(FS(name="s", data_type=DataType.VarChar)), Code.PARAMETER_MISSING,
     "type param(max_length) should be specified for the field(s) of collection coll: missing parameter"),
    ("varchar 0", _add(FS(name="s", data_type=DataType.VarChar, type_params=_kv(max_length=0))), P,
     "the maximum length specified for the field(s) should be in (0, 65535], but got 0 instead: "
     "invalid parameter"),
    ("varchar too long", _add(FS(name="s", data_type=DataType.VarChar, type_params=_kv(max_length=65536))), P,
     "should be in (0, 65535], but got 65536 instead"),
    ("array varchar no max_length", _add(FS(name="a", data_type=DataType.Array, element_type=DataType.VarChar,
                                            type_params=_kv(max_capacity=4))), Code.PARAMETER_MISSING,
     "type param(max_length) should be specified for the field(a)"),
    ("array no capacity", _add(FS(name="a", data_type=DataType.Array, element_type=DataType.Int64)),
     Code.PARAMETER_MISSING,
     "type param(max_capacity) should be specified for array field a of collection coll"),
    ("array capacity", _add(FS(name="a", data_type=DataType.Array, element_type=DataType.Int64,
                               type_params=_kv(max_capacity=4097))), P,
     "the maximum capacity specified for a Array should be in (0, 4096]: invalid parameter"),
    ("array of json", _add(FS(name="a", data_type=DataType.Array, element_type=DataType.JSON,
                             type_params=_kv(max_capacity=4))), P, "element type JSON is not supported"),
    ("array no element", _add(FS(name="a", data_type=DataType.Array, type_params=_kv(max_capacity=4))), P,
     "element data type None is not valid: invalid parameter"),
    ("no dim", _set(1, type_params=[]), P,
     "dimension is not defined in field type params of field vec, check type param `dim` for vector field"),
    ("dim 1", _set(1, type_params=_kv(dim=1)), P, "invalid dimension: 1. should be in range 2 ~ 32768"),
    ("dim big", _set(1, type_params=_kv(dim=32769)), P,
     "invalid dimension: 32769 of field vec. float vector dimension should be in range 2 ~ 32768"),
    ("dim text", _set(1, type_params=_kv(dim="x")), P, 'strconv.ParseInt: parsing "x": invalid syntax'),
    ("binary dim", _add(FS(name="b", data_type=DataType.BinaryVector, type_params=_kv(dim=12))), P,
     "invalid dimension: 12 of field b. binary vector dimension should be multiple of 8. "),
    ("sparse dim", _add(FS(name="sp", data_type=DataType.SparseFloatVector, type_params=_kv(dim=8))), P,
     "dim should not be specified for sparse vector field sp(0)"),
    ("no vector", lambda p: p.fields.pop(), P, "schema does not contain vector field: invalid parameter"),
    ("string", _add(FS(name="s", data_type=DataType.String)), P,
     "string data type not supported yet, please use VarChar type instead"),
    ("none type", _add(FS(name="n", data_type=0)), P, "data type None is not valid"),
    ("geometry", _add(FS(name="g", data_type=DataType.Geometry)), P,
     "field data type: Geometry is not supported"),
    ("array of vector", _add(FS(name="av", data_type=DataType.ArrayOfVector)), P,
     "array of vector can only be in the struct array field, field name: av"),
    ("too many fields", _add(*[FS(name=f"f{i}", data_type=DataType.Int64) for i in range(63)]), P,
     "maximum field's number should be limited to 64"),
    ("too many vectors", _add(*[FS(name=f"v{i}", data_type=DataType.FloatVector, type_params=_kv(dim=4))
                                for i in range(10)]), P,
     "maximum vector field's number should be limited to 10"),
    ("two partition keys", _add(FS(name="a", data_type=DataType.Int64, is_partition_key=True),
                                FS(name="b", data_type=DataType.Int64, is_partition_key=True)), P,
     "there are more than one partition key, field name = a, b"),
    ("partition key on pk", _set(0, is_partition_key=True), P,
     "the partition key field must not be primary field"),
    ("nullable partition key",
     _add(FS(name="a", data_type=DataType.Int64, is_partition_key=True, nullable=True)),
     P, "partition key field not support nullable: invalid parameter"),
    ("float partition key", _add(FS(name="a", data_type=DataType.Float, is_partition_key=True)), P,
     "the data type of partition key should be Int64 or VarChar"),
    ("json clustering key", _add(FS(name="j", data_type=DataType.JSON, is_clustering_key=True)),
     Code.COLLECTION_ILLEGAL_SCHEMA,
     "clustering key field j has unsupported data type JSON: illegal collection schema[collection=coll]"),
    ("two clustering keys", _add(FS(name="a", data_type=DataType.Int64, is_clustering_key=True),
                                 FS(name="b", data_type=DataType.Int64, is_clustering_key=True)),
     Code.COLLECTION_ILLEGAL_SCHEMA, "there are more than one clustering key, field name = a, b"),
    ("explicit dynamic", _add(FS(name="dyn", data_type=DataType.JSON, is_dynamic=True)), P,
     "cannot explicitly set a field as a dynamic field: invalid parameter"),
    ("nullable vector default", _set(1, nullable=True, default_value=_default(float_data=1.0)), P,
     "type not support default_value, type:FloatVector, name:vec"),
    ("nullable pk", _set(0, nullable=True), P, "primary field not support null: invalid parameter"),
    ("pk default", _set(0, default_value=_default(long_data=1)), P,
     "primary field not support default_value: invalid parameter"),
    ("vector default", _set(1, default_value=_default(float_data=1.0)), P,
     "type not support default_value, type:FloatVector, name:vec"),
    ("default mismatch", _add(FS(name="x", data_type=DataType.Int32, default_value=_default(long_data=5))), P,
     "default value type mismatches field schema type: invalid parameter[expected=DataType_Int64]"
     "[actual=not match]"),
    ("int8 default range",
     _add(FS(name="x", data_type=DataType.Int8, default_value=_default(int_data=200))), P,
     "default value out of range: invalid parameter[200 out of range -128 <= value <= 127]"),
    ("varchar default long", _add(FS(name="x", data_type=DataType.VarChar, type_params=_kv(max_length=3),
                                     default_value=_default(string_data="éé"))), P,
     "the length (4) of string exceeds max length (3): invalid parameter"),
    ("json default", _add(FS(name="x", data_type=DataType.JSON, default_value=_default(bytes_data=b"{}"))), P,
     "type not support default_value, type:JSON, name:x"),
]


@pytest.mark.parametrize("mutate,code,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rejected_like_milvus(mutate: Callable[[schema_pb2.CollectionSchema], None], code: int,
                              message: str) -> None:
    proto = _base()
    mutate(proto)
    with pytest.raises(MilvusError) as err:
        Schema.from_proto(proto)
    assert err.value.code == code
    assert message in err.value.message, err.value.message


def test_base_schema_is_valid_and_limits_are_inclusive() -> None:
    proto = _base()
    proto.name = "_" + "a" * 254
    proto.fields.extend([FS(name="s", data_type=DataType.VarChar, type_params=_kv(max_length=65535)),
                         FS(name="b", data_type=DataType.BinaryVector, type_params=_kv(dim=8 * 32768)),
                         FS(name="v2", data_type=DataType.Float16Vector, type_params=_kv(dim=32768)),
                         FS(name="a", data_type=DataType.Array, element_type=DataType.Bool,
                            type_params=_kv(max_capacity=4096))])
    proto.fields.extend(FS(name=f"f{i}", data_type=DataType.Int8) for i in range(58))
    schema = Schema.from_proto(proto)
    assert len(schema.fields) == 64 and schema.field("s").max_length == 65535


def test_varchar_pk_may_be_auto_id() -> None:
    proto = _base()
    proto.fields[0].data_type = DataType.VarChar
    proto.fields[0].autoID = True
    proto.fields[0].type_params.extend(_kv(max_length=36))
    assert Schema.from_proto(proto).primary.auto_id


def test_functions_other_than_bm25_are_not_supported() -> None:
    proto = _base()
    proto.functions.add(name="embed", type=schema_pb2.FunctionType.TextEmbedding, input_field_names=["a"],
                        output_field_names=["b"])
    with pytest.raises(MilvusError) as err:
        Schema.from_proto(proto)
    assert err.value.code == Code.UNIMPLEMENTED
    assert "TextEmbedding functions are not supported by Quiver" in err.value.message


def test_alias_wording() -> None:
    with pytest.raises(MilvusError) as err:
        check_collection_name("9a", kind="alias")
    assert err.value.message.startswith(
        "Invalid collection alias: 9a.  the first character of a collection alias")
