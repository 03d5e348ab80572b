"""Schema model: ids, type params, lookups, DescribeCollection output and storage round trip."""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus import DataType as DT
from pymilvus.grpc_gen import schema_pb2

from common.errors import Code, MilvusError
from common.schema import DYNAMIC_FIELD_NAME, DataType, Field, Schema
from tests.unit.test_fielddata_support import all_types_schema, client_schema, described


def _schema(dynamic: bool = True) -> Schema:
    return Schema.from_proto(client_schema([
        ("id", DT.VARCHAR, {"is_primary": True, "max_length": 64}),
        ("vec", DT.FLOAT_VECTOR, {"dim": 8, "mmap_enabled": True}),
        ("cat", DT.INT64, {"is_partition_key": True}),
        ("age", DT.INT16, {"default_value": np.int16(7), "nullable": True}),
        ("name", DT.VARCHAR, {"max_length": 20, "default_value": "anon", "description": "who"}),
        ("tags", DT.ARRAY, {"element_type": DT.VARCHAR, "max_capacity": 3, "max_length": 5}),
        ("bits", DT.BINARY_VECTOR, {"dim": 16}),
        ("sp", DT.SPARSE_FLOAT_VECTOR, {}),
    ], dynamic=dynamic, name="people"))


def test_ids_in_order_and_dynamic_field_appended() -> None:
    s = _schema()
    assert [(f.field_id, f.name) for f in s.fields] == [
        (100, "id"), (101, "vec"), (102, "cat"), (103, "age"), (104, "name"), (105, "tags"), (106, "bits"),
        (107, "sp"), (108, DYNAMIC_FIELD_NAME)]
    meta = s.dynamic_field
    assert meta is not None and meta.is_dynamic and meta.dtype == DataType.JSON
    assert s.enable_dynamic_field and s.name == "people"
    assert _schema(dynamic=False).dynamic_field is None


def test_type_params_and_flags_parsed() -> None:
    s = _schema()
    assert s.primary.name == "id" and s.primary.max_length == 64 and s.primary.dtype == DataType.VarChar
    assert s.field("vec").dim == 8 and s.field("vec").is_vector
    assert s.field("vec").extra_params == (("mmap.enabled", "true"),)
    assert s.field("bits").dim == 16 and s.field("sp").dim == 0
    tags = s.field("tags")
    assert (tags.element_type, tags.max_capacity, tags.max_length) == (DataType.VarChar, 3, 5)
    assert s.field("age").default_value == 7 and s.field("age").nullable
    assert s.field("name").default_value == "anon" and s.field("name").description == "who"
    assert s.partition_key is not None and s.partition_key.name == "cat"
    assert [f.name for f in s.vector_fields] == ["vec", "bits", "sp"]


def test_lookups() -> None:
    s = _schema()
    assert s.get("nope") is None
    assert s.field_by_id(102).name == "cat"
    with pytest.raises(MilvusError) as err:
        s.field("nope")
    assert err.value.code == Code.FIELD_NOT_FOUND and err.value.message == "field not found[field=nope]"
    with pytest.raises(MilvusError) as err:
        s.field_by_id(999)
    assert err.value.code == Code.FIELD_NOT_FOUND


def test_describe_collection_shape_is_what_pymilvus_reads() -> None:
    s = _schema()
    proto = s.to_proto()
    assert DYNAMIC_FIELD_NAME not in [f.name for f in proto.fields]  # Milvus hides "$meta"
    assert proto.enable_dynamic_field
    info = described(s)
    fields = {f["name"]: f for f in info["fields"]}
    assert fields["vec"]["params"] == {"dim": 8, "mmap_enabled": True}
    assert fields["id"]["params"] == {"max_length": 64} and fields["id"]["is_primary"]
    assert fields["tags"]["params"] == {"max_length": 5, "max_capacity": 3}
    assert fields["tags"]["element_type"] == DT.VARCHAR
    assert fields["age"]["default_value"].int_data == 7 and fields["age"]["nullable"]
    assert fields["name"]["default_value"].string_data == "anon"
    assert fields["cat"]["is_partition_key"]
    assert [f["field_id"] for f in info["fields"]] == list(range(100, 108))
    assert info["enable_dynamic_field"] is True
    assert len(s.to_proto(include_dynamic=True).fields) == 9


def test_describe_keeps_client_type_params_verbatim() -> None:
    sent = client_schema([("id", DT.INT64, {"is_primary": True, "auto_id": True}),
                          ("v", DT.FLOAT_VECTOR, {"dim": 4})])
    back = Schema.from_proto(sent).to_proto()
    for a, b in zip(sent.fields, back.fields, strict=True):
        assert list(a.type_params) == list(b.type_params)
        assert (a.name, a.data_type, a.autoID) == (b.name, b.data_type, b.autoID)
        assert a.is_primary_key == b.is_primary_key


def test_bytes_round_trip_keeps_everything() -> None:
    for s in (_schema(), all_types_schema()):
        again = Schema.from_bytes(s.to_bytes())
        assert again == s
        assert again.dynamic_field == s.dynamic_field
        assert again.field_by_id(101) == s.field_by_id(101)


def test_with_field_appends_nullable_field_with_next_id() -> None:
    s = _schema()
    grown = s.with_field(Field(0, "score", DataType.Double, nullable=True))
    assert grown.field("score").field_id == 109
    assert len(grown.fields) == len(s.fields) + 1 and s.get("score") is None
    kept = grown.with_field(Field(500, "note", DataType.VarChar, max_length=10, nullable=True))
    assert kept.field("note").field_id == 500


@pytest.mark.parametrize("new,message", [
    (Field(0, "age", DataType.Int64, nullable=True), "duplicate field name: age: invalid parameter"),
    (Field(0, "x", DataType.Int64),
     "added field must be nullable, please check it, field name = x: invalid parameter"),
    (Field(0, "x", DataType.Int64, is_primary=True, nullable=True),
     "not support to add pk field, field name = x"),
    (Field(0, "x", DataType.VarChar, nullable=True),
     "type param(max_length) should be specified for the field(x)"),
    (Field(0, "1x", DataType.Int64, nullable=True),
     "The first character of a field name must be an underscore"),
    (Field(0, "v", DataType.FloatVector, dim=1, nullable=True), "invalid dimension: 1"),
])
def test_with_field_rejects_what_add_collection_field_rejects(new: Field, message: str) -> None:
    with pytest.raises(MilvusError) as err:
        _schema().with_field(new)
    assert message in err.value.message


def test_field_proto_round_trip() -> None:
    f = Field(105, "tags", DataType.Array, element_type=DataType.Int32, max_capacity=9, nullable=True,
              description="d", extra_params=(("mmap.enabled", "false"),))
    fs = f.to_proto()
    assert isinstance(fs, schema_pb2.FieldSchema)
    assert [(kv.key, kv.value) for kv in fs.type_params] == [("max_capacity", "9"), ("mmap.enabled", "false")]
    assert Field.from_proto(fs) == f
