"""Turn REST v2 JSON parameters into the protobuf pieces the gRPC API expects.

Collection schemas (quick setup or a full ``schema``), index parameters, search parameters,
consistency levels and property maps all arrive as loosely typed JSON and leave as
``CollectionSchema`` bytes and ``KeyValuePair`` lists, with Milvus's REST defaults: primary key
``id`` (Int64), vector field ``vector``, metric COSINE, dynamic field on, one shard, Bounded.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from pymilvus.grpc_gen import common_pb2, schema_pb2

from common.errors import Code
from services.proxy.rest.envelope import MISSING_PARAMETERS, RestError, invalid_parameter, rest_error
from services.proxy.rest.models import CreateCollectionReq, FieldSchemaModel, FunctionModel, IndexParam

DEFAULT_PRIMARY = "id"
DEFAULT_VECTOR = "vector"
DEFAULT_METRIC = "COSINE"
DEFAULT_SHARDS = 1
START_FIELD_ID = 100
LEVELS = "[Strong, Session, Bounded, Eventually, Customized]"


def go_format(value: Any) -> str:
    """A JSON value as Go's ``fmt.Sprintf("%v")`` prints it (true, 10, 0.5, text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def kv_pairs(values: Mapping[str, Any]) -> list[common_pb2.KeyValuePair]:
    return [common_pb2.KeyValuePair(key=k, value=go_format(v)) for k, v in values.items()]


def kv_json(pairs: Any) -> list[dict[str, str]]:
    return [{"key": p.key, "value": p.value} for p in pairs]


def consistency(level: str) -> tuple[int, bool]:
    """(ConsistencyLevel, use_default_consistency) from a REST ``consistencyLevel``."""
    if not level:
        return common_pb2.Bounded, True
    if level not in common_pb2.ConsistencyLevel.DESCRIPTOR.values_by_name:
        raise RestError(
            Code.PARAMETER_INVALID,
            f"consistencyLevel can only be {LEVELS}, default: Bounded, "
            f"err:parameter:'{level}' is incorrect, please check it: invalid parameter",
        )
    return common_pb2.ConsistencyLevel.Value(level), False


def _data_type(name: str, what: str) -> int:
    if name not in schema_pb2.DataType.DESCRIPTOR.values_by_name or name == "None":
        raise invalid_parameter(f"{what} {name} is invalid(case sensitive)")
    return schema_pb2.DataType.Value(name)


_DEFAULT_SLOTS = {
    schema_pb2.Bool: ("bool_data", bool),
    schema_pb2.Int8: ("int_data", int),
    schema_pb2.Int16: ("int_data", int),
    schema_pb2.Int32: ("int_data", int),
    schema_pb2.Int64: ("long_data", int),
    schema_pb2.Float: ("float_data", float),
    schema_pb2.Double: ("double_data", float),
    schema_pb2.VarChar: ("string_data", str),
    schema_pb2.String: ("string_data", str),
}


def _default_value(field: FieldSchemaModel, dtype: int, out: schema_pb2.FieldSchema) -> None:
    if field.defaultValue is None:
        return
    slot = _DEFAULT_SLOTS.get(dtype)
    if slot is None:
        raise invalid_parameter(f"unexpected default value type: {field.dataType}")
    name, kind = slot
    value = field.defaultValue
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is bool:
        good = isinstance(value, bool)
    elif kind is int:
        good = number and float(value).is_integer()
    elif kind is float:
        good = number
    else:
        good = isinstance(value, str)
    if not good:
        raise invalid_parameter(f"wrong defaultValue type for field {field.fieldName}: {value!r}")
    setattr(out.default_value, name, kind(value))


def _field(field: FieldSchemaModel, auto_id: bool, outputs: set[str]) -> schema_pb2.FieldSchema:
    dtype = _data_type(field.dataType, "data type")
    out = schema_pb2.FieldSchema(
        name=field.fieldName,
        is_primary_key=field.isPrimary,
        is_partition_key=field.isPartitionKey,
        is_clustering_key=field.isClusteringKey,
        data_type=dtype,  # type: ignore[arg-type]
        nullable=field.nullable,
        description=field.description,
        autoID=auto_id if field.isPrimary else False,
        is_function_output=field.fieldName in outputs,
    )
    if dtype == schema_pb2.Array:
        out.element_type = _data_type(field.elementDataType, "element data type")  # type: ignore[assignment]
    for key, value in field.elementTypeParams.items():
        text = value if isinstance(value, str) else json.dumps(value)
        out.type_params.append(common_pb2.KeyValuePair(key=key, value=text))
    _default_value(field, dtype, out)
    return out


def field_proto(field: FieldSchemaModel) -> schema_pb2.FieldSchema:
    """One field of a REST schema (``/collections/fields/add``) as a FieldSchema."""
    return _field(field, False, set())


def _function(fn: FunctionModel) -> schema_pb2.FunctionSchema:
    if fn.type not in schema_pb2.FunctionType.DESCRIPTOR.values_by_name:
        raise invalid_parameter(f"unsupported function type: {fn.type}")
    return schema_pb2.FunctionSchema(
        name=fn.name,
        description=fn.description,
        type=schema_pb2.FunctionType.Value(fn.type),
        input_field_names=fn.inputFieldNames,
        output_field_names=fn.outputFieldNames,
        params=kv_pairs(fn.params),
    )


def quick_schema(req: CreateCollectionReq) -> schema_pb2.CollectionSchema:
    if req.collection_schema.functions:
        raise invalid_parameter("functions are not supported for quickly create collection")
    if req.dimension <= 0:
        raise invalid_parameter(
            f"dimension is required for quickly create collection(default metric type: {DEFAULT_METRIC})"
        )
    pk = schema_pb2.FieldSchema(
        fieldID=START_FIELD_ID,
        name=req.primaryFieldName or DEFAULT_PRIMARY,
        is_primary_key=True,
        data_type=schema_pb2.Int64,
        autoID=req.autoID,
    )
    if req.idType in ("VarChar", "Varchar"):
        pk.data_type = schema_pb2.VarChar
        pk.type_params.append(common_pb2.KeyValuePair(key="max_length", value=go_format(req.params.get("max_length"))))
    elif req.idType not in ("", "Int64", "int64"):
        raise invalid_parameter(f"idType can only be [Int64, VarChar], default: Int64, got {req.idType}")
    vector = schema_pb2.FieldSchema(
        fieldID=START_FIELD_ID + 1,
        name=req.vectorFieldName or DEFAULT_VECTOR,
        data_type=schema_pb2.FloatVector,
        type_params=[common_pb2.KeyValuePair(key="dim", value=str(req.dimension))],
    )
    dynamic = req.params.get("enableDynamicField", True)
    if isinstance(dynamic, str):
        if dynamic.lower() not in ("true", "false", "1", "0"):
            raise invalid_parameter(f"parse enableDynamicField fail, got {dynamic}")
        dynamic = dynamic.lower() in ("true", "1")
    return schema_pb2.CollectionSchema(
        name=req.collectionName, description=req.description, fields=[pk, vector], enable_dynamic_field=bool(dynamic)
    )


def full_schema(req: CreateCollectionReq) -> schema_pb2.CollectionSchema:
    spec = req.collection_schema
    functions = [_function(f) for f in spec.functions]
    outputs = {name for f in spec.functions for name in f.outputFieldNames}
    names = {f.fieldName for f in spec.fields}
    for index in req.indexParams:
        if index.fieldName not in names:
            raise rest_error(MISSING_PARAMETERS, f"`{index.fieldName}` hasn't defined in schema")
    return schema_pb2.CollectionSchema(
        name=req.collectionName,
        description=req.description,
        autoID=spec.autoID,
        fields=[_field(f, spec.autoID, outputs) for f in spec.fields],
        functions=functions,
        enable_dynamic_field=spec.enableDynamicField,
    )


def collection_options(req: CreateCollectionReq) -> dict[str, Any]:
    """shards_num, consistency_level, num_partitions and properties from ``params``."""
    params = req.params
    out: dict[str, Any] = {"shards_num": DEFAULT_SHARDS, "consistency_level": common_pb2.Bounded}
    if "shardsNum" in params:
        with contextlib.suppress(ValueError):
            out["shards_num"] = int(go_format(params["shardsNum"]))
    if "consistencyLevel" in params:
        level = str(params["consistencyLevel"])
        if level not in common_pb2.ConsistencyLevel.DESCRIPTOR.values_by_name:
            raise invalid_parameter(f"consistencyLevel can only be {LEVELS}, default: Bounded, got {level}")
        out["consistency_level"] = common_pb2.ConsistencyLevel.Value(level)
    if "partitionsNum" in params and any(f.isPartitionKey for f in req.collection_schema.fields):
        with contextlib.suppress(ValueError):
            out["num_partitions"] = int(go_format(params["partitionsNum"]))
    props = {}
    for key, prop in (
        ("ttlSeconds", "collection.ttl.seconds"),
        ("partitionKeyIsolation", "partitionkey.isolation"),
        ("mmap.enabled", "mmap.enabled"),
    ):
        if key in params:
            props[prop] = params[key]
    out["properties"] = kv_pairs(props)
    return out


def index_extra_params(index: IndexParam) -> list[common_pb2.KeyValuePair]:
    pairs = []
    index_type = index.indexType or index.params.get("index_type", "")
    if index_type:
        pairs.append(common_pb2.KeyValuePair(key="index_type", value=go_format(index_type)))
    if index.metricType:
        pairs.append(common_pb2.KeyValuePair(key="metric_type", value=index.metricType))
    build = {k: v for k, v in index.params.items() if k != "index_type"}
    if build:
        pairs.append(common_pb2.KeyValuePair(key="params", value=json.dumps(build)))
    return pairs


def search_params(raw: Mapping[str, Any]) -> list[common_pb2.KeyValuePair]:
    """Milvus 2.5.2+: every key of ``searchParams`` may sit at the top or in ``params``."""
    inner = raw.get("params") or {}
    if not isinstance(inner, dict):
        raise invalid_parameter("searchParams.params must be a dict")
    merged = dict(inner)
    for key, value in raw.items():
        if key == "params":
            continue
        if key in inner and not _same(inner[key], value):
            raise invalid_parameter(
                f"ambiguous parameter: {key}, in search_param: {value}, in search_param.params: {inner[key]}"
            )
        merged[key] = value
    pairs = [common_pb2.KeyValuePair(key="params", value=json.dumps(merged))]
    rename = {"metricType": "metric_type", "ignoreGrowing": "ignore_growing"}
    for key, value in raw.items():
        if key != "params":
            pairs.append(common_pb2.KeyValuePair(key=rename.get(key, key), value=go_format(value)))
    pairs.append(common_pb2.KeyValuePair(key="round_decimal", value="-1"))
    return pairs


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)
