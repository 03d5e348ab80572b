"""Indexes on a path inside a JSON field (or a key of the dynamic field), checked as Milvus 2.6 does.

CreateIndex on a JSON field names INVERTED, BITMAP or AUTOINDEX (which Milvus resolves to
INVERTED for JSON) with ``json_cast_type`` and, optionally, ``json_path`` (the field itself
when absent) and ``json_cast_function``. A name that is no field of the schema means a key of
"$meta" when the dynamic field is on. The path is parsed like a filter identifier and stored
as Milvus stores it, a JSON pointer ("/a/0/b", "" for the whole field), which also makes the
default index name ("my_json/a/b", "$meta/key/a"). A JSON field may hold several indexes, one
per path. Querynodes build nothing for them: filters on the path scan the values and give the
answers they give without the index (the index is a hint to Milvus's engine, not a semantic).
"""

from __future__ import annotations

from typing import Any

from common.errors import MilvusError, invalid
from common.expr.builder import Builder
from common.expr.grammar import parse
from common.expr.nodes import Column, Path
from common.index import normalize_index_type
from common.schema import Field, Schema

JSON_INDEX_TYPES = ("INVERTED", "BITMAP", "AUTOINDEX")
_INVERTED_CASTS = ("BOOL", "DOUBLE", "VARCHAR", "ARRAY_BOOL", "ARRAY_DOUBLE", "ARRAY_VARCHAR", "JSON")
_BITMAP_CASTS = ("BOOL", "VARCHAR")
_CAST_FUNCTIONS = {"STRING_TO_DOUBLE": "DOUBLE"}  # function -> the only cast type it goes with
_WRAP = ": invalid parameter[expected=valid index params][actual=invalid index params]"


def indexed_field(schema: Schema, field_name: str) -> Field | None:
    """Milvus's GetFieldFromNameDefaultJSON: a schema field, else "$meta" when dynamic fields are on."""
    field = schema.get(field_name)
    if field is None and schema.enable_dynamic_field:
        return schema.dynamic_field
    return field


def is_json_index_request(index_type: str) -> bool:
    return normalize_index_type(index_type or "AUTOINDEX") in JSON_INDEX_TYPES


def json_index_params(
    index_type: str, field: Field, schema: Schema, field_name: str, user: dict[str, str]
) -> dict[str, Any]:
    """The stored parameters of a JSON path index: engine, json_path (a JSON pointer), cast type."""
    name = normalize_index_type(index_type or "AUTOINDEX")
    engine = "INVERTED" if name == "AUTOINDEX" else name
    cast = user.get("json_cast_type")
    if cast is None and engine == "BITMAP":  # not a path index then: BITMAP on a JSON field as such
        raise invalid("bitmap index are only supported on bool, int, string and array field")
    if cast is None:
        raise invalid(f"json index must specify cast type: missing parameter[missing_param=json_cast_type]{_WRAP}")
    cast = cast.strip().upper()
    allowed = _BITMAP_CASTS if engine == "BITMAP" else _INVERTED_CASTS
    if cast not in allowed:
        suffix = " for BITMAP index" if engine == "BITMAP" else ""
        raise invalid(f"json_cast_type {cast} is not supported{suffix}: invalid parameter{_WRAP}")
    out: dict[str, Any] = {"engine": engine, "json_cast_type": cast}
    function = user.get("json_cast_function")
    if function is not None and engine == "INVERTED":
        function = function.strip().upper()
        if function not in _CAST_FUNCTIONS:
            raise invalid(f"json_cast_function {function} is not supported: invalid parameter{_WRAP}")
        if _CAST_FUNCTIONS[function] != cast:
            raise invalid(
                f"json_cast_function {function} is not supported for json_cast_type {cast}: invalid parameter{_WRAP}"
            )
        out["json_cast_function"] = function
    out["json_path"] = nested_path(user.get("json_path") or field_name, field, schema)
    return out


def nested_path(identifier: str, field: Field, schema: Schema) -> str:
    """``my_json['a'][0]`` -> "/a/0" (JSON pointer, "~" and "/" escaped), as datacoord stores it."""
    try:
        node = Builder(schema, None, {}).transform(parse(identifier))
    except MilvusError:
        raise
    except Exception as exc:  # lark's parse and visit errors carry the parser's message
        cause = getattr(exc, "orig_exc", exc)
        raise invalid(f"cannot parse identifier: {identifier}, error: {cause}") from None
    if isinstance(node, Path):
        column, keys = node.column, node.path
    elif isinstance(node, Column):
        column, keys = node, ()
    else:
        raise invalid(f"cannot parse identifier: {identifier}")
    if column.name != field.name:
        raise invalid("fieldID not match with field name")
    if not keys:
        return ""
    return "/" + "/".join(str(k).replace("~", "~0").replace("/", "~1") for k in keys)


def display_field_name(field: Field, params: dict[str, Any]) -> str:
    """DescribeIndex's field name: for "$meta" the dynamic key the path starts with (Milvus 2.6)."""
    path = params.get("json_path", "")
    if not field.is_dynamic or not path:
        return field.name
    first = path.removeprefix("/").split("/", 1)[0]
    return first.replace("~1", "/").replace("~0", "~")
