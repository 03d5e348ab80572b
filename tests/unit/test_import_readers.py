"""The bulk import readers (JSON rows, Parquet, NumPy) on the in-memory storage.

The reference is the insert path: the columns a reader produces must equal what
decode_insert makes of the same rows sent as an Insert. Bad files fail with ImportFileError
(code 2100) naming the field and the file.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pymilvus import DataType as DT

from common.fielddata import decode_insert
from common.imports import IMPORT_FAILED, ImportFileError, file_type, read_batch
from common.schema import Schema
from common.storage.memory import MemoryStorage
from tests.unit.test_fielddata_support import all_types_rows, all_types_schema, client_schema, row_insert


def _plain(v: Any) -> Any:
    """A row value as a JSON file holds it (vectors as lists, sparse keys as strings)."""
    if isinstance(v, bytes):
        return list(v)
    if isinstance(v, np.ndarray):
        return v.astype(np.float64).tolist() if v.dtype.kind == "f" else v.tolist()
    if isinstance(v, dict):
        return {str(k): x for k, x in v.items()}
    return v


def _json_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in r.items()} for r in rows]


def _expected(schema: Schema, rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    req = row_insert(schema, rows)
    return decode_insert(schema, req.fields_data, req.num_rows)


def _assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(want)
    for name, col in want.items():
        g = got[name]
        if col.dtype == object:
            assert len(g) == len(col), name
            for a, b in zip(g, col, strict=True):
                if isinstance(b, np.ndarray):
                    assert a.dtype == b.dtype and a.tolist() == b.tolist(), name
                else:
                    assert a == b, name
        else:
            assert g.dtype == col.dtype, name
            np.testing.assert_array_equal(g, col, err_msg=name)


def _parquet(columns: dict[str, list[Any]]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.mark.parametrize("wrapped", [True, False])
def test_json_rows_every_type_equal_insert(storage: MemoryStorage, wrapped: bool) -> None:
    schema = all_types_schema()
    rows = all_types_rows(7)
    body = _json_rows(rows)
    storage.put("in/rows.json", json.dumps({"rows": body} if wrapped else body).encode())
    got = read_batch(storage, schema, ["in/rows.json"])
    _assert_same(got, _expected(schema, rows))
    assert got["$meta"][3] == {"extra": 3}


def test_parquet_every_type_equal_insert(storage: MemoryStorage) -> None:
    schema = all_types_schema()
    rows = all_types_rows(5, seed=3)
    plain = _json_rows(rows)
    cols: dict[str, list[Any]] = {f.name: [r[f.name] for r in plain] for f in schema.fields if not f.is_dynamic}
    cols["j"] = [json.dumps(r["j"]) for r in plain]
    cols["sv"] = [json.dumps(r["sv"]) for r in plain]
    cols["$meta"] = [json.dumps({"extra": r["extra"]}) for r in plain]
    storage.put("p/1.parquet", _parquet(cols))
    _assert_same(read_batch(storage, schema, ["p/1.parquet"]), _expected(schema, rows))


def test_numpy_batch_equal_insert(storage: MemoryStorage) -> None:
    schema = Schema.from_proto(client_schema([
        ("pk", DT.INT64, {"is_primary": True}),
        ("s", DT.VARCHAR, {"max_length": 16}),
        ("f", DT.FLOAT, {}),
        ("fv", DT.FLOAT_VECTOR, {"dim": 4}),
        ("bv", DT.BINARY_VECTOR, {"dim": 16}),
        ("j", DT.JSON, {}),
    ]))
    rng = np.random.default_rng(1)
    n = 9
    fv = rng.random((n, 4), dtype=np.float32)
    bv = rng.integers(0, 256, (n, 2), dtype=np.uint8)
    files = {
        "np/pk.npy": _npy(np.arange(n, dtype=np.int64) * 10),
        "np/s.npy": _npy(np.array([f"s{i}" for i in range(n)])),
        "np/f.npy": _npy(np.arange(n, dtype=np.float32) / 2),
        "np/fv.npy": _npy(fv),
        "np/bv.npy": _npy(bv),
        "np/j.npy": _npy(np.array([json.dumps({"i": i}) for i in range(n)])),
    }
    for k, v in files.items():
        storage.put(k, v)
    rows = [
        {"pk": i * 10, "s": f"s{i}", "f": i / 2, "fv": fv[i], "bv": bytes(bv[i]), "j": {"i": i}} for i in range(n)
    ]
    _assert_same(read_batch(storage, schema, list(files)), _expected(schema, rows))


def _nullable_schema(auto_id: bool = False, dynamic: bool = False) -> Schema:
    return Schema.from_proto(client_schema([
        ("pk", DT.INT64, {"is_primary": True, "auto_id": auto_id}),
        ("age", DT.INT32, {"nullable": True}),
        ("tag", DT.VARCHAR, {"max_length": 8, "default_value": "none"}),
        ("v", DT.FLOAT_VECTOR, {"dim": 2}),
    ], dynamic=dynamic))


def test_nullable_default_and_auto_id(storage: MemoryStorage) -> None:
    schema = _nullable_schema(auto_id=True)
    rows = [{"age": 5, "tag": "x", "v": [1, 2]}, {"age": None, "v": [3, 4]}, {"tag": None, "v": [5, 6]}]
    storage.put("r.json", json.dumps(rows).encode())
    got = read_batch(storage, schema, ["r.json"])
    assert "pk" not in got
    assert got["age.valid"].tolist() == [True, False, False]
    assert got["age"][0] == 5
    assert got["tag"].tolist() == ["x", "none", "none"]


def _fails(storage: MemoryStorage, schema: Schema, path: str, data: bytes, *fragments: str) -> None:
    storage.put(path, data)
    with pytest.raises(ImportFileError) as err:
        read_batch(storage, schema, [path])
    assert err.value.code == IMPORT_FAILED
    for fragment in (*fragments, path):
        assert fragment in err.value.message, err.value.message


def test_bad_json_files(storage: MemoryStorage) -> None:
    schema = _nullable_schema()
    ok = {"pk": 1, "age": 3, "v": [1.0, 2.0]}
    _fails(storage, schema, "a.json", json.dumps([{"pk": 1, "age": 3}]).encode(), "value of field 'v' is missed")
    _fails(storage, schema, "b.json", json.dumps([ok | {"v": [1.0]}]).encode(), "expected dim '2'", "got dim '1'")
    _fails(storage, schema, "c.json", json.dumps([ok | {"age": "old"}]).encode(), "expected type 'Int32'", "'age'")
    _fails(storage, schema, "d.json", json.dumps([ok | {"zzz": 1}]).encode(), "'zzz' is not defined in schema")
    _fails(storage, schema, "e.json", b"{not json", "not valid JSON")
    _fails(storage, schema, "f.json", json.dumps({"data": []}).encode(), '"rows"')
    _fails(storage, schema, "g.json", json.dumps([ok | {"pk": None}]).encode(), "'pk'", "not nullable")
    _fails(storage, schema, "h.json", json.dumps([ok | {"age": 2**40}]).encode(), "'age'", "out of the range")
    _fails(storage, schema, "i.json", json.dumps([ok | {"tag": "much too long"}]).encode(), "tag")
    _fails(storage, schema, "j.json", json.dumps([]).encode(), "no rows")
    auto = _nullable_schema(auto_id=True)
    _fails(storage, auto, "k.json", json.dumps([ok]).encode(), "'pk' is auto-generated")


def test_dynamic_rows_merge_meta(storage: MemoryStorage) -> None:
    schema = _nullable_schema(dynamic=True)
    rows = [{"pk": 1, "v": [0, 1], "x": 1, "$meta": {"y": 2}}, {"pk": 2, "v": [0, 1], "$meta": json.dumps({"z": 3})}]
    storage.put("dyn.json", json.dumps({"rows": rows}).encode())
    got = read_batch(storage, schema, ["dyn.json"])
    assert got["$meta"].tolist() == [{"y": 2, "x": 1}, {"z": 3}]
    dup = [{"pk": 1, "v": [0, 1], "x": 1, "$meta": {"x": 2}}]
    _fails(storage, schema, "dup.json", json.dumps(dup).encode(), "duplicated key 'x'")


def test_bad_parquet_and_numpy(storage: MemoryStorage) -> None:
    schema = _nullable_schema()
    _fails(storage, schema, "p1.parquet", _parquet({"pk": [1], "age": [2]}), "value of field 'v' is missed")
    _fails(storage, schema, "p2.parquet", _parquet({"pk": [1], "v": [[1.0, 2.0, 3.0]]}), "expected dim '2'")
    _fails(storage, schema, "p3.parquet", _parquet({"pk": ["a"], "v": [[1.0, 2.0]]}), "expected type 'Int64'")
    _fails(storage, schema, "p4.parquet", b"PAR1garbage", "not a valid Parquet file")
    _fails(storage, schema, "p5.parquet", _parquet({"pk": [1], "v": [[1.0, 2.0]], "q": [1]}), "'q' is not defined")
    storage.put("n/pk.npy", _npy(np.arange(3, dtype=np.int64)))
    storage.put("n/v.npy", _npy(np.zeros((2, 2), dtype=np.float32)))
    with pytest.raises(ImportFileError, match="different row counts"):
        read_batch(storage, schema, ["n/pk.npy", "n/v.npy"])
    storage.put("n/v.npy", _npy(np.zeros((3, 5), dtype=np.float32)))
    with pytest.raises(ImportFileError, match="expected dim '2'.*got dim '5'"):
        read_batch(storage, schema, ["n/pk.npy", "n/v.npy"])
    storage.put("n/v.npy", _npy(np.zeros((3, 2), dtype=np.float32)))
    storage.put("n/pk.npy", _npy(np.arange(3, dtype=np.float64)))
    with pytest.raises(ImportFileError, match="expected type 'Int64' for field 'pk'"):
        read_batch(storage, schema, ["n/pk.npy", "n/v.npy"])
    with pytest.raises(ImportFileError, match="does not exist"):
        read_batch(storage, schema, ["missing/x.parquet"])


def test_file_types() -> None:
    assert file_type(["a/b.JSON"]) == "json"
    assert file_type(["a.npy", "b.npy"]) == "numpy"
    for bad, msg in ((["a.csv"], "unexpected file type"), (["a.json", "b.json"], "only accepts one file"),
                     (["a.npy", "b.json"], "inconsistent"), ([], "empty")):
        with pytest.raises(ImportFileError, match=msg):
            file_type(bad)
