"""JSON path indexes (a path of a JSON field or a key of "$meta"), checked as Milvus 2.6 checks them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pymilvus import CollectionSchema, DataType, FieldSchema
from pymilvus.client.prepare import Prepare

from common.config import QuiverConfig
from common.errors import MilvusError
from common.kv.memory import MemoryKV
from common.msgstream.memory import MemoryStream
from common.rpc import Router
from common.storage.memory import MemoryStorage
from services.coord.server import Coordinator

WRAP = ": invalid parameter[expected=valid index params][actual=invalid index params]"


@pytest.fixture
def coord() -> Iterator[Coordinator]:
    cfg = QuiverConfig(kv={"backend": "memory"}, stream={"backend": "memory", "pchannel_count": 1})
    c = Coordinator(cfg, MemoryKV(), MemoryStream(), Router(), storage=MemoryStorage())
    c.activate()
    c.stop()
    yield c


def _collection(coord: Coordinator) -> int:
    schema = CollectionSchema(
        [
            FieldSchema("id", DataType.INT64, is_primary=True),
            FieldSchema("my_json", DataType.JSON),
            FieldSchema("v", DataType.FLOAT_VECTOR, dim=4),
        ],
        enable_dynamic_field=True,
    )
    return coord.root.create_collection(
        "default", Prepare.get_schema_from_collection_schema("c", schema).SerializeToString()
    )


def _create(coord: Coordinator, cid: int, field: str, name: str = "", **params: str) -> int:
    user = {"index_type": "INVERTED", **params}
    return coord.index.create_index(cid, field, name, dict(user), user_params=dict(user))


def test_paths_names_describe_and_drop(coord: Coordinator) -> None:
    cid = _collection(coord)
    paths = {
        "my_json['a']['b']": "my_json/a/b",
        "my_json['a']": "my_json/a",
        "my_json": "my_json",
        "my_json['a'][0]['b']": "my_json/a/0/b",
        'my_json["x/y~z"]': "my_json/x~1y~0z",
    }
    ids = {name: _create(coord, cid, "my_json", json_path=p, json_cast_type="double") for p, name in paths.items()}
    assert len(set(ids.values())) == len(paths)
    # the same request again names the same index (no duplicate)
    assert _create(coord, cid, "my_json", json_path="my_json['a']['b']", json_cast_type="double") == ids["my_json/a/b"]
    desc = {d["index_name"]: d for d in coord.index.describe_index(cid)}
    assert set(desc) == set(paths.values())
    assert desc["my_json/a/b"]["field_name"] == "my_json"
    assert desc["my_json/a/b"]["params"]["json_path"] == "my_json['a']['b']"  # as the client sent it
    assert desc["my_json/a/b"]["params"]["json_cast_type"] == "double"
    # a dynamic key: the "$meta" field, described under the key's name
    _create(coord, cid, "dyn_key", json_path="dyn_key['a']", json_cast_type="varchar")
    _create(coord, cid, "dyn_key", json_cast_type="bool", index_type="AUTOINDEX")  # path: the key itself
    (d,) = coord.index.describe_index(cid, index_name="$meta/dyn_key/a")
    assert d["field_name"] == "dyn_key"
    assert [x["index_name"] for x in coord.index.describe_index(cid, index_name="$meta/dyn_key")] == ["$meta/dyn_key"]
    coord.index.drop_index(cid, index_name="my_json/a")
    assert "my_json/a" not in {d["index_name"] for d in coord.index.describe_index(cid)}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "json index must specify cast type: missing parameter[missing_param=json_cast_type]" + WRAP),
        (
            {"json_path": "my_json['a']"},
            "json index must specify cast type: missing parameter[missing_param=json_cast_type]" + WRAP,
        ),
        ({"json_cast_type": "int64"}, "json_cast_type INT64 is not supported: invalid parameter" + WRAP),
        (
            {"json_cast_type": "double", "json_cast_function": "nope"},
            "json_cast_function NOPE is not supported: invalid parameter" + WRAP,
        ),
        (
            {"json_cast_type": "varchar", "json_cast_function": "string_to_double"},
            "json_cast_function STRING_TO_DOUBLE is not supported for json_cast_type VARCHAR: invalid parameter" + WRAP,
        ),
        ({"json_cast_type": "double", "json_path": "other['a']"}, "fieldID not match with field name"),
        (
            {"json_cast_type": "double", "index_type": "BITMAP"},
            "json_cast_type DOUBLE is not supported for BITMAP index: invalid parameter" + WRAP,
        ),
        ({"json_cast_type": "double", "index_type": "STL_SORT"}, "STL_SORT are only supported on numeric field"),
    ],
)
def test_bad_json_index_requests_store_nothing(coord: Coordinator, params: dict[str, str], message: str) -> None:
    cid = _collection(coord)
    with pytest.raises(MilvusError) as err:
        _create(coord, cid, "my_json", **params)
    assert err.value.message == message
    with pytest.raises(MilvusError):
        coord.index.describe_index(cid)  # nothing was stored


def test_same_path_twice_under_another_name_is_refused(coord: Coordinator) -> None:
    cid = _collection(coord)
    _create(coord, cid, "my_json", json_path="my_json['a']", json_cast_type="double")
    with pytest.raises(MilvusError, match="at most one distinct index"):
        _create(coord, cid, "my_json", "other_name", json_path="my_json['a']", json_cast_type="double")
    with pytest.raises(MilvusError, match="at most one distinct index"):
        _create(coord, cid, "my_json", json_path="my_json['a']", json_cast_type="varchar")
