"""decode_insert on what pymilvus sends: every type, nullable/default filling, dynamic fields."""

from __future__ import annotations

from typing import Any

import numpy as np
from pymilvus import DataType as DT

from common.fielddata import bfloat16_to_float32, decode_insert
from common.schema import DataType, Field, Schema
from tests.unit.test_fielddata_support import (
    all_types_rows,
    all_types_schema,
    client_schema,
    column_insert,
    row_insert,
)


def test_every_type_from_row_based_insert() -> None:
    schema = all_types_schema()
    rows = all_types_rows(6)
    req = row_insert(schema, rows)
    cols = decode_insert(schema, req.fields_data, req.num_rows)
    assert list(cols) == [f.name for f in schema.fields]
    assert cols["pk"].dtype == np.int64 and cols["pk"].tolist() == list(range(6))
    assert cols["b"].dtype == np.bool_ and cols["b"].tolist() == [bool(i % 2) for i in range(6)]
    assert cols["i8"].dtype == np.int8 and cols["i8"].tolist() == [-i for i in range(6)]
    assert cols["i16"].dtype == np.int16 and cols["i32"].dtype == np.int32
    assert cols["i32"].tolist() == [-70000 * i for i in range(6)]
    assert cols["f"].dtype == np.float32 and cols["d"].dtype == np.float64
    np.testing.assert_array_equal(cols["d"], np.array([i / 3 for i in range(6)]))
    assert cols["s"].dtype == object and cols["s"].tolist() == [f"ü{i}" for i in range(6)]
    assert cols["j"][5] == {"k": 5, "l": [1, "x"]}
    assert cols["arr_i"][3].dtype == np.int16 and cols["arr_i"][3].tolist() == [0, 1, 2]
    assert cols["arr_s"][2].tolist() == ["a", "bé"] and cols["arr_s"][0].tolist() == []
    assert cols["fv"].shape == (6, 4) and cols["fv"].dtype == np.float32
    np.testing.assert_array_equal(cols["fv"], np.stack([r["fv"] for r in rows]))
    assert cols["bv"].shape == (6, 2) and cols["bv"][1].tolist() == [1, 254]
    assert cols["hv"].dtype == np.float16
    np.testing.assert_array_equal(cols["hv"], np.stack([r["hv"] for r in rows]))
    assert cols["bfv"].dtype == np.uint16  # float32 values sent for a bfloat16 field are converted
    expected_bf = np.array([r["bfv"] for r in rows])
    np.testing.assert_allclose(bfloat16_to_float32(cols["bfv"]), expected_bf, rtol=1e-2)
    assert cols["i8v"].dtype == np.int8 and cols["i8v"][2].tolist() == [2, -2, 1, -1]
    assert cols["sv"][4] == {3: 0.5, 14: 1.5}
    assert cols["$meta"].tolist() == [{"extra": i} for i in range(6)]
    assert all(c.flags.writeable for c in cols.values())


def test_column_based_insert_matches_row_based() -> None:
    schema = all_types_schema(dynamic=False)
    rows = all_types_rows(4)
    for r in rows:
        del r["extra"]
    columns = {name: [r[name] for r in rows] for name in rows[0]}
    columns["bfv"] = [np.asarray(v, dtype=np.float32).astype(np.float16).tobytes() for v in columns["bfv"]]
    columns["hv"] = [v.tobytes() for v in columns["hv"]]
    columns["i8v"] = [v.tobytes() for v in columns["i8v"]]
    req = column_insert(schema, columns)
    cols = decode_insert(schema, req.fields_data, req.num_rows)
    by_rows = decode_insert(schema, row_insert(schema, rows).fields_data, 4)
    for name in ("pk", "b", "i8", "i16", "i32", "f", "d", "s", "fv", "bv", "hv", "i8v"):
        np.testing.assert_array_equal(cols[name], by_rows[name])
    assert [c.tolist() for c in cols["arr_s"]] == [c.tolist() for c in by_rows["arr_s"]]
    assert cols["j"].tolist() == by_rows["j"].tolist() and cols["sv"].tolist() == by_rows["sv"].tolist()


def _nullable_schema() -> Schema:
    return Schema.from_proto(client_schema([
        ("id", DT.INT64, {"is_primary": True, "auto_id": True}),
        ("v", DT.FLOAT_VECTOR, {"dim": 2}),
        ("score", DT.DOUBLE, {"nullable": True}),
        ("age", DT.INT32, {"default_value": np.int32(18)}),
        ("nick", DT.VARCHAR, {"max_length": 8, "nullable": True, "default_value": "anon"}),
        ("meta", DT.JSON, {"nullable": True}),
        ("tags", DT.ARRAY, {"element_type": DT.INT64, "max_capacity": 3, "nullable": True}),
    ]))


def test_nullable_and_default_values_are_expanded() -> None:
    schema = _nullable_schema()
    rows: list[dict[str, Any]] = [
        {"v": [0.0, 1.0], "score": 1.5, "age": 30, "nick": "bob", "meta": {"a": 1}, "tags": [1, 2]},
        {"v": [1.0, 1.0], "score": None, "age": None, "nick": None, "meta": None, "tags": None},
        {"v": [2.0, 1.0]}]
    req = row_insert(schema, rows)
    cols = decode_insert(schema, req.fields_data, req.num_rows)
    assert "id" not in cols  # auto_id: the proxy allocates it
    assert cols["score"].tolist() == [1.5, 0.0, 0.0] and cols["score.valid"].tolist() == [True, False, False]
    assert cols["age"].tolist() == [30, 18, 18] and "age.valid" not in cols
    # a nullable field with a default never stores null: Milvus fills the default
    assert cols["nick"].tolist() == ["bob", "anon", "anon"] and cols["nick.valid"].tolist() == [True] * 3
    assert cols["meta"].tolist() == [{"a": 1}, None, None]
    assert cols["meta.valid"].tolist() == [True, False, False]
    assert cols["tags"][0].tolist() == [1, 2] and cols["tags"][1].tolist() == []
    assert cols["tags.valid"].tolist() == [True, False, False]


def test_fields_left_out_are_filled_with_null_or_default() -> None:
    schema = _nullable_schema()
    req = row_insert(schema, [{"v": [0.0, 1.0]}, {"v": [1.0, 0.0]}])
    kept = [fd for fd in req.fields_data if fd.field_name == "v"]
    cols = decode_insert(schema, kept, 2)
    assert cols["score.valid"].tolist() == [False, False] and cols["age"].tolist() == [18, 18]
    assert cols["nick"].tolist() == ["anon", "anon"] and cols["nick.valid"].all()
    assert cols["meta"].tolist() == [None, None] and cols["tags"][1].dtype == np.int64


def test_full_length_nullable_payload_is_accepted() -> None:
    schema = _nullable_schema()
    req = row_insert(schema, [{"v": [0.0, 1.0], "score": 2.0}, {"v": [1.0, 0.0], "score": 3.0}])
    score = next(fd for fd in req.fields_data if fd.field_name == "score")
    score.valid_data[1] = False  # two values sent, second flagged null
    cols = decode_insert(schema, req.fields_data, 2)
    assert cols["score"].tolist() == [2.0, 0.0] and cols["score.valid"].tolist() == [True, False]


def test_dynamic_field_defaults_to_empty_objects_when_absent() -> None:
    schema = all_types_schema()
    req = row_insert(schema, [{k: v for k, v in r.items() if k != "extra"} for r in all_types_rows(2)])
    fds = [fd for fd in req.fields_data if not fd.is_dynamic]
    cols = decode_insert(schema, fds, 2)
    assert cols["$meta"].tolist() == [{}, {}]


def test_upsert_keeps_auto_id_primary_key_and_partial_update_skips_fields() -> None:
    schema = _nullable_schema()
    req = row_insert(schema, [{"v": [0.0, 1.0], "score": 1.0}])
    pk = req.fields_data.add(field_name="id", type=DT.INT64)
    pk.scalars.long_data.data.append(77)
    cols = decode_insert(schema, req.fields_data, 1, for_upsert=True)
    assert cols["id"].tolist() == [77]
    partial = [fd for fd in req.fields_data if fd.field_name in ("id", "score")]
    cols = decode_insert(schema, partial, 1, for_upsert=True, partial_update=True)
    assert set(cols) == {"id", "score", "score.valid"}
    cols = decode_insert(schema, req.fields_data, 1, allow_insert_auto_id=True)
    assert cols["id"].tolist() == [77]


def test_float32_payload_for_float16_field_is_converted() -> None:
    schema = Schema.from_proto(client_schema([("id", DT.INT64, {"is_primary": True}),
                                              ("h", DT.FLOAT16_VECTOR, {"dim": 2})]))
    req = row_insert(schema, [{"id": 1, "h": [0.5, 2.0]}, {"id": 2, "h": np.array([1.0, 3.0])}])
    assert req.fields_data[1].vectors.WhichOneof("data") == "float_vector"
    cols = decode_insert(schema, req.fields_data, 2)
    assert cols["h"].dtype == np.float16 and cols["h"].tolist() == [[0.5, 2.0], [1.0, 3.0]]


def test_decodes_ten_thousand_rows_quickly() -> None:
    schema = Schema.from_proto(client_schema([("pk", DT.VARCHAR, {"is_primary": True, "max_length": 32}),
                                              ("v", DT.FLOAT_VECTOR, {"dim": 128}), ("x", DT.DOUBLE, {})]))
    n = 10_000
    vectors = np.random.default_rng(1).random((n, 128), dtype=np.float32)
    req = column_insert(schema, {"pk": [f"id-{i}" for i in range(n)], "v": vectors.tolist(),
                                 "x": np.arange(n, dtype=np.float64).tolist()})
    cols = decode_insert(schema, req.fields_data, n)
    np.testing.assert_array_equal(cols["v"], vectors)
    assert cols["pk"][9999] == "id-9999" and cols["x"][5] == 5.0


def test_partial_update_leaves_out_every_field_not_sent() -> None:
    schema = all_types_schema()
    req = row_insert(schema, all_types_rows(2))
    sent = [fd for fd in req.fields_data if fd.field_name in ("pk", "fv")]
    cols = decode_insert(schema, sent, 2, for_upsert=True, partial_update=True)
    assert list(cols) == ["pk", "fv"]


def test_nullable_vectors_arrive_compressed_and_are_expanded() -> None:
    schema = Schema("nv", "", (Field(100, "id", DataType.Int64, is_primary=True),
                               Field(101, "v", DataType.FloatVector, dim=2, nullable=True),
                               Field(102, "b", DataType.BinaryVector, dim=8, nullable=True)))
    req = row_insert(schema, [{"id": 1, "v": [1.0, 2.0], "b": b"\x01"}, {"id": 2, "v": None, "b": None},
                              {"id": 3, "v": [3.0, 4.0], "b": b"\x03"}])
    assert len(next(fd for fd in req.fields_data if fd.field_name == "v").vectors.float_vector.data) == 4
    cols = decode_insert(schema, req.fields_data, 3)
    assert cols["v"].tolist() == [[1.0, 2.0], [0.0, 0.0], [3.0, 4.0]]
    assert cols["v.valid"].tolist() == [True, False, True] and cols["b"][:, 0].tolist() == [1, 0, 3]
    none = row_insert(schema, [{"id": 1, "v": None, "b": None}])
    cols = decode_insert(schema, none.fields_data, 1)
    assert cols["v"].shape == (1, 2) and not cols["v.valid"][0]
