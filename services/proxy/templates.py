"""Decode expression template values (``expr_params``) from their protobuf form."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pymilvus.grpc_gen import schema_pb2


def _array(arr: schema_pb2.TemplateArrayValue) -> list[Any]:
    kind = arr.WhichOneof("data")
    if kind is None:
        return []
    data = getattr(arr, kind)
    if kind == "array_data":
        return [_array(a) for a in data.data]
    if kind == "json_data":
        return [json.loads(x) for x in data.data]
    return list(data.data)


def template_value(v: schema_pb2.TemplateValue) -> Any:
    kind = v.WhichOneof("val")
    if kind is None:
        return None
    if kind == "array_val":
        return _array(v.array_val)
    return getattr(v, kind)


def expr_params(values: Mapping[str, schema_pb2.TemplateValue]) -> dict[str, Any] | None:
    if not values:
        return None
    return {k: template_value(v) for k, v in values.items()}
