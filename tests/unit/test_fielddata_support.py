"""Shared builders for the schema and fielddata tests: messages made by pymilvus itself.

The codec must accept exactly what clients send, so the tests build CreateCollection
schemas, insert requests and search placeholders with pymilvus's own client-side encoders
(MilvusClient.create_schema, Prepare.row_insert_param / batch_insert_param,
Prepare._prepare_placeholder_str) rather than hand-written protobufs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pymilvus import DataType as DT
from pymilvus import MilvusClient
from pymilvus.client.abstract import CollectionSchema as DescribedSchema
from pymilvus.client.prepare import Prepare
from pymilvus.grpc_gen import milvus_pb2, schema_pb2

from common.schema import Schema


def client_schema(fields: list[tuple[str, Any, dict[str, Any]]], *, dynamic: bool = False,
                  name: str = "c1") -> schema_pb2.CollectionSchema:
    """The CollectionSchema proto pymilvus sends for ``create_collection(name, schema=...)``."""
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=dynamic)
    for field_name, dtype, kwargs in fields:
        s.add_field(field_name, dtype, **kwargs)
    return Prepare.get_schema_from_collection_schema(name, s)


def described(schema: Schema) -> dict[str, Any]:
    """What pymilvus makes of our DescribeCollection answer (the dict insert() works from)."""
    return DescribedSchema(milvus_pb2.DescribeCollectionResponse(schema=schema.to_proto())).dict()


def row_insert(schema: Schema, rows: list[dict[str, Any]]) -> milvus_pb2.InsertRequest:
    """The InsertRequest MilvusClient.insert(rows) sends for this schema."""
    info = described(schema)
    return Prepare.row_insert_param(schema.name, rows, "", info["fields"], [],
                                    enable_dynamic=info["enable_dynamic_field"])


def row_upsert(schema: Schema, rows: list[dict[str, Any]]) -> milvus_pb2.UpsertRequest:
    info = described(schema)
    return Prepare.row_upsert_param(schema.name, rows, "", info["fields"], [],
                                    enable_dynamic=info["enable_dynamic_field"])


def column_insert(schema: Schema, columns: dict[str, list[Any]]) -> milvus_pb2.InsertRequest:
    """The InsertRequest of ORM Collection.insert([...columns]) (column-based)."""
    info = described(schema)
    types = {f["name"]: f["type"] for f in info["fields"]}
    entities = [{"name": k, "type": types[k], "values": v} for k, v in columns.items()]
    return Prepare.batch_insert_param(schema.name, entities, "", info["fields"])


def placeholder(data: Any, vector_type: Any = None) -> bytes:
    """PlaceholderGroup bytes as MilvusClient.search(data=...) builds them."""
    return Prepare._prepare_placeholder_str(data, False, vector_type)


ALL_TYPES: list[tuple[str, Any, dict[str, Any]]] = [
    ("pk", DT.INT64, {"is_primary": True}),
    ("b", DT.BOOL, {}),
    ("i8", DT.INT8, {}),
    ("i16", DT.INT16, {}),
    ("i32", DT.INT32, {}),
    ("f", DT.FLOAT, {}),
    ("d", DT.DOUBLE, {}),
    ("s", DT.VARCHAR, {"max_length": 16}),
    ("j", DT.JSON, {}),
    ("arr_i", DT.ARRAY, {"element_type": DT.INT16, "max_capacity": 4}),
    ("arr_s", DT.ARRAY, {"element_type": DT.VARCHAR, "max_capacity": 4, "max_length": 8}),
    ("fv", DT.FLOAT_VECTOR, {"dim": 4}),
    ("bv", DT.BINARY_VECTOR, {"dim": 16}),
    ("hv", DT.FLOAT16_VECTOR, {"dim": 4}),
    ("bfv", DT.BFLOAT16_VECTOR, {"dim": 4}),
    ("i8v", DT.INT8_VECTOR, {"dim": 4}),
    ("sv", DT.SPARSE_FLOAT_VECTOR, {}),
]


def all_types_schema(dynamic: bool = True) -> Schema:
    return Schema.from_proto(client_schema(ALL_TYPES, dynamic=dynamic))


def all_types_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Rows covering every type; row i carries the dynamic key "extra" = i."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        rows.append({
            "pk": i, "b": bool(i % 2), "i8": -i, "i16": 300 * i, "i32": -70000 * i, "f": i / 4, "d": i / 3,
            "s": f"ü{i}", "j": {"k": i, "l": [1, "x"]}, "arr_i": list(range(i % 5)),
            "arr_s": ["a", "bé"][: i % 3], "fv": rng.random(4, dtype=np.float32),
            "bv": bytes([i % 256, 255 - i % 256]), "hv": rng.random(4).astype(np.float16),
            "bfv": rng.random(4).astype(np.float32).tolist(), "i8v": np.array([i, -i, 1, -1], dtype=np.int8),
            "sv": {3: 0.5, 10 + i: 1.5}, "extra": i,
        })
    return rows


def test_support_builds_realistic_requests() -> None:
    req = row_insert(all_types_schema(), all_types_rows(3))
    assert req.num_rows == 3
    names = [fd.field_name for fd in req.fields_data]
    assert names[-1] == "$meta" and req.fields_data[-1].is_dynamic
    assert {"pk", "fv", "sv"} <= set(names)
