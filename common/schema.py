"""The collection schema every role shares: fields, ids, type parameters, proto conversion.

A schema arrives once, as the ``schemapb.CollectionSchema`` bytes of a CreateCollection
request; from then on every role (proxy validation, datanode binlogs, querynode columns and
expressions) needs the same facts about each field: its id, type, dimension, length limits,
nullability and default. :class:`Schema` holds them as plain frozen values,
:meth:`Schema.from_proto` rejects what Milvus rejects (see :mod:`common.schema_rules`), and
:meth:`Schema.to_proto` gives back what DescribeCollection returns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from typing import Any

from pymilvus.grpc_gen import common_pb2, schema_pb2
from pymilvus.grpc_gen.schema_pb2 import DataType

from common import timestamptz
from common.errors import Code, MilvusError
from common.schema_functions import FunctionSpec
from common.schema_rules import (
    DEFAULT_SLOT,
    DYNAMIC_FIELD_NAME,
    KNOWN_PARAMS,
    START_FIELD_ID,
    VECTOR_TYPES,
    check_added_field,
    check_collection,
    dtype_name,
    parse_int,
    uses_param,
)

# Property keys under this prefix are Quiver's own bookkeeping (e.g. the truncate point): every node
# receives them with the schema, clients never see them.
INTERNAL_PREFIX = "quiver."

__all__ = ["DataType", "Field", "Schema", "dtype_name", "VECTOR_TYPES", "DYNAMIC_FIELD_NAME"]


@dataclass(frozen=True)
class Field:
    """One column of a collection, with the type parameters Milvus keeps as KeyValuePairs."""

    field_id: int
    name: str
    dtype: int
    is_primary: bool = False
    auto_id: bool = False
    dim: int = 0
    max_length: int = 0
    element_type: int = 0
    max_capacity: int = 0
    nullable: bool = False
    default_value: Any = None
    is_dynamic: bool = False
    is_partition_key: bool = False
    description: str = ""
    is_clustering_key: bool = False
    extra_params: tuple[tuple[str, str], ...] = ()  # other type_params (mmap.enabled, analyzer, ...), verbatim
    is_function_output: bool = False  # computed from other fields by a schema function (BM25), never sent

    @property
    def type_params(self) -> dict[str, str]:
        """The verbatim type params (enable_analyzer, analyzer_params, enable_match, ...)."""
        return dict(self.extra_params)

    @property
    def is_vector(self) -> bool:
        return self.dtype in VECTOR_TYPES

    @classmethod
    def from_proto(cls, fs: schema_pb2.FieldSchema) -> Field:
        """Read a FieldSchema as sent by a client or stored; no validation beyond parsing numbers."""
        known: dict[str, int] = {}
        extra: list[tuple[str, str]] = []
        for kv in fs.type_params:
            if kv.key in KNOWN_PARAMS and uses_param(fs.data_type, fs.element_type, kv.key):
                known[kv.key] = parse_int(kv.key, kv.value, fs.name)
            else:
                extra.append((kv.key, kv.value))
        default = None
        if fs.HasField("default_value"):
            slot = fs.default_value.WhichOneof("data")
            if slot is not None:
                default = getattr(fs.default_value, slot)
                if fs.data_type == DataType.Timestamptz and isinstance(default, str):
                    default = timestamptz.parse_one(default, timestamptz.DEFAULT_TIMEZONE)
        return cls(field_id=fs.fieldID, name=fs.name, dtype=fs.data_type, is_primary=fs.is_primary_key,
                   auto_id=fs.autoID, dim=known.get("dim", 0), max_length=known.get("max_length", 0),
                   element_type=fs.element_type, max_capacity=known.get("max_capacity", 0),
                   nullable=fs.nullable, default_value=default, is_dynamic=fs.is_dynamic,
                   is_partition_key=fs.is_partition_key, description=fs.description,
                   is_clustering_key=fs.is_clustering_key, extra_params=tuple(extra),
                   is_function_output=fs.is_function_output)

    def to_proto(self) -> schema_pb2.FieldSchema:
        fs = schema_pb2.FieldSchema(
            fieldID=self.field_id, name=self.name, is_primary_key=self.is_primary,
            description=self.description, data_type=self.dtype, autoID=self.auto_id,
            element_type=self.element_type, is_dynamic=self.is_dynamic, nullable=self.nullable,
            is_partition_key=self.is_partition_key, is_clustering_key=self.is_clustering_key,
            is_function_output=self.is_function_output)
        for key in KNOWN_PARAMS:
            value = getattr(self, key)
            if value and uses_param(self.dtype, self.element_type, key):
                fs.type_params.append(common_pb2.KeyValuePair(key=key, value=str(value)))
        fs.type_params.extend(common_pb2.KeyValuePair(key=k, value=v) for k, v in self.extra_params)
        if self.default_value is not None and self.dtype in DEFAULT_SLOT:
            setattr(fs.default_value, DEFAULT_SLOT[self.dtype][0], self.default_value)
        return fs


@dataclass(frozen=True)
class Schema:
    """A collection's fields (user fields in order, then "$meta" when dynamic fields are on)."""

    name: str
    description: str
    fields: tuple[Field, ...]
    enable_dynamic_field: bool = False
    version: int = 0  # bumped by every field change (AddCollectionField, AlterCollectionField), as Milvus
    properties: tuple[tuple[str, str], ...] = ()  # the collection's properties (TTL, mmap, ...), sorted
    functions: tuple[FunctionSpec, ...] = ()  # BM25 functions: which field's text fills which sparse field
    _by_name: dict[str, Field] = dc_field(init=False, repr=False, compare=False)
    _by_id: dict[int, Field] = dc_field(init=False, repr=False, compare=False)
    _primary: Field | None = dc_field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {f.name: f for f in self.fields})
        object.__setattr__(self, "_by_id", {f.field_id: f for f in self.fields})
        object.__setattr__(self, "_primary", next((f for f in self.fields if f.is_primary), None))

    @property
    def primary(self) -> Field:
        """The primary key field (looked up once: every search and insert asks for it)."""
        if self._primary is None:
            raise MilvusError(Code.PARAMETER_INVALID, f"schema of {self.name!r} has no primary key field")
        return self._primary

    def get(self, name: str) -> Field | None:
        return self._by_name.get(name)

    def field(self, name: str) -> Field:
        found = self._by_name.get(name)
        if found is None:
            raise MilvusError(Code.FIELD_NOT_FOUND, f"field not found[field={name}]")
        return found

    def field_by_id(self, field_id: int) -> Field:
        found = self._by_id.get(field_id)
        if found is None:
            raise MilvusError(Code.FIELD_NOT_FOUND, f"field not found[field={field_id}]")
        return found

    @property
    def field_ids(self) -> frozenset[int]:
        return frozenset(self._by_id)

    @property
    def props(self) -> dict[str, str]:
        """The collection properties as a dict (what every node reads TTL and the like from)."""
        return dict(self.properties)

    @property
    def timezone(self) -> str:
        """Where Timestamptz text without an offset is read and results are written (property ``timezone``)."""
        return self.props.get(timestamptz.TIMEZONE_KEY) or timestamptz.DEFAULT_TIMEZONE

    def with_properties(self, props: dict[str, str]) -> Schema:
        """A copy carrying ``props`` as the collection's properties (the version is unchanged)."""
        return replace(self, properties=tuple(sorted(props.items())))

    def function_of_output(self, name: str) -> FunctionSpec | None:
        """The function that computes field ``name``, if any."""
        return next((fn for fn in self.functions if name in fn.output_names), None)

    @property
    def vector_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.is_vector)

    @property
    def dynamic_field(self) -> Field | None:
        return next((f for f in self.fields if f.is_dynamic), None)

    @property
    def partition_key(self) -> Field | None:
        return next((f for f in self.fields if f.is_partition_key), None)

    @classmethod
    def from_proto(cls, proto: schema_pb2.CollectionSchema) -> Schema:
        """Validate a CreateCollection schema as Milvus does, assign ids 100.., append "$meta"."""
        check_collection(proto)
        fields = [replace(Field.from_proto(fs), field_id=START_FIELD_ID + i)
                  for i, fs in enumerate(proto.fields)]
        if proto.enable_dynamic_field:
            fields.append(Field(field_id=START_FIELD_ID + len(fields), name=DYNAMIC_FIELD_NAME,
                                dtype=DataType.JSON, is_dynamic=True, description="dynamic schema"))
        ids = {f.name: f.field_id for f in fields}
        functions = tuple(
            replace(FunctionSpec.from_proto(fn), function_id=START_FIELD_ID + i,
                    input_ids=tuple(ids[n] for n in fn.input_field_names),
                    output_ids=tuple(ids[n] for n in fn.output_field_names))
            for i, fn in enumerate(proto.functions))
        return cls(proto.name, proto.description, tuple(fields), proto.enable_dynamic_field, functions=functions)

    def to_proto(self, include_dynamic: bool = False) -> schema_pb2.CollectionSchema:
        """The schema DescribeCollection returns: user fields only, unless include_dynamic."""
        proto = schema_pb2.CollectionSchema(name=self.name, description=self.description,
                                            enable_dynamic_field=self.enable_dynamic_field, version=self.version)
        proto.fields.extend(f.to_proto() for f in self.fields if include_dynamic or not f.is_dynamic)
        proto.properties.extend(common_pb2.KeyValuePair(key=k, value=v) for k, v in self.properties
                                if include_dynamic or not k.startswith(INTERNAL_PREFIX))
        proto.functions.extend(fn.to_proto() for fn in self.functions)
        return proto

    def to_bytes(self) -> bytes:
        return self.to_proto(include_dynamic=True).SerializeToString(deterministic=True)

    @classmethod
    def from_bytes(cls, data: bytes) -> Schema:
        """Read a schema written by :meth:`to_bytes` (already validated; ids kept)."""
        proto = schema_pb2.CollectionSchema.FromString(data)
        fields = tuple(Field.from_proto(fs) for fs in proto.fields)
        props = tuple(sorted((kv.key, kv.value) for kv in proto.properties))
        functions = tuple(FunctionSpec.from_proto(fn) for fn in proto.functions)
        return cls(proto.name, proto.description, fields, proto.enable_dynamic_field, proto.version, props, functions)

    def with_field(self, new: Field) -> Schema:
        """A copy with ``new`` appended (AddCollectionField rules); field_id 0 gets the next id."""
        check_added_field(self.name, self.fields, new)
        if new.field_id == 0:
            last = max((f.field_id for f in self.fields), default=START_FIELD_ID - 1)
            new = replace(new, field_id=last + 1)
        return replace(self, fields=(*self.fields, new), version=self.version + 1)

    def with_altered_field(self, new: Field) -> Schema:
        """A copy with the field of the same id replaced by ``new`` (AlterCollectionField)."""
        fields = tuple(new if f.field_id == new.field_id else f for f in self.fields)
        return replace(self, fields=fields, version=self.version + 1)
