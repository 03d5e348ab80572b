"""The coordinator's schema and property changes (services/coord/alter.py) on in-memory backends.

Each refused request must name the problem with Milvus's code and leave the stored catalog
exactly as it was (checked on the KV store itself); accepted ones survive a restart and are
pushed to the nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pymilvus import CollectionSchema, DataType, FieldSchema
from pymilvus.client.prepare import Prepare

from common import tso
from common.collection_props import TRUNCATE_KEY, expire_ts, truncated_before
from common.config import QuiverConfig
from common.errors import Code, MilvusError
from common.kv.memory import MemoryKV
from common.msgstream.memory import MemoryStream
from common.rpc import Router, rpc
from common.schema import Schema
from common.session import Session, SessionInfo
from services.coord.catalog import Catalog
from services.coord.meta import DROPPED, FLUSHED, SegmentInfo
from services.coord.server import Coordinator


def schema_bytes(name: str = "c1") -> bytes:
    fields = [
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("v", DataType.FLOAT_VECTOR, dim=4),
        FieldSchema("tag", DataType.VARCHAR, max_length=8),
    ]
    return Prepare.get_schema_from_collection_schema(name, CollectionSchema(fields)).SerializeToString()


def field_bytes(name: str, dtype: DataType, **kwargs: Any) -> bytes:
    proto, _, _ = Prepare.get_field_schema(FieldSchema(name, dtype, **kwargs).to_dict())
    return proto.SerializeToString()


class FakeNode:
    """A querynode/datanode that records the schemas pushed to it."""

    def __init__(self) -> None:
        self.pushed: list[tuple[int, Schema]] = []

    @rpc
    def update_schema(self, collection_id: int, schema: str) -> None:
        import base64

        self.pushed.append((collection_id, Schema.from_bytes(base64.b64decode(schema))))


@pytest.fixture
def env() -> Iterator[tuple[Coordinator, MemoryKV, FakeNode]]:
    cfg = QuiverConfig(kv={"backend": "memory"}, stream={"backend": "memory", "pchannel_count": 4})
    kv, router = MemoryKV(), Router()
    c = Coordinator(cfg, kv, MemoryStream(), router)
    c.activate()
    c.stop()  # no background loop: the tests drive every step
    node = FakeNode()
    endpoint = router.register_local("querynode-7", node)
    session = Session(kv, c.meta_root, SessionInfo("querynode", 7, endpoint), 30)
    yield c, kv, node
    session.stop()


def snapshot(kv: MemoryKV, prefix: str = "") -> dict[str, bytes]:
    return {item.key: item.value for item in kv.scan(prefix)}


def refused(kv: MemoryKV, fn: Any, code: int, text: str) -> None:
    before = snapshot(kv)
    with pytest.raises(MilvusError) as err:
        fn()
    assert err.value.code == code and text in err.value.message, err.value
    after = {k: v for k, v in snapshot(kv).items() if "/kv/gid/" not in k}  # id/ts allocators may move
    assert after == {k: v for k, v in before.items() if "/kv/gid/" not in k}


def test_add_field_assigns_next_id_bumps_version_and_pushes(env: tuple[Coordinator, MemoryKV, FakeNode]) -> None:
    c, kv, node = env
    cid = c.root.create_collection("default", schema_bytes())
    fid = c.alter.add_collection_field("default", "c1", field_bytes("score", DataType.INT64, nullable=True,
                                                                      default_value=3))
    schema = c.ctx.catalog.collections[cid].parsed_schema
    assert fid == 103 and schema.field("score").default_value == 3 and schema.version == 1
    assert node.pushed[-1][0] == cid and node.pushed[-1][1].field("score").nullable
    again = Catalog(kv, c.meta_root)
    again.load()
    assert again.collections[cid].parsed_schema.field("score").field_id == 103


def test_add_field_refusals_change_nothing(env: tuple[Coordinator, MemoryKV, FakeNode]) -> None:
    c, kv, node = env
    c.root.create_collection("default", schema_bytes())
    add = c.alter.add_collection_field
    refused(kv, lambda: add("default", "c1", field_bytes("x", DataType.INT64)), Code.PARAMETER_INVALID,
            "added field must be nullable, please check it, field name = x: invalid parameter")
    refused(kv, lambda: add("default", "c1", field_bytes("tag", DataType.INT64, nullable=True)),
            Code.PARAMETER_INVALID, "duplicate field name: tag: invalid parameter")
    refused(kv, lambda: add("default", "c1", field_bytes("w", DataType.FLOAT_VECTOR, nullable=True)),
            Code.PARAMETER_INVALID, "dimension is not defined in field type params")
    refused(kv, lambda: add("default", "c1", field_bytes("k", DataType.INT64, nullable=True, is_primary=True)),
            Code.PARAMETER_INVALID, "not support to add pk field")
    refused(kv, lambda: add("default", "c1", b"\xff\xff"), Code.PARAMETER_INVALID,
            "failed to unmarshal field schema")
    refused(kv, lambda: add("default", "nope", field_bytes("x", DataType.INT64, nullable=True)),
            Code.COLLECTION_NOT_FOUND, "nope")
    for i in range(61):
        add("default", "c1", field_bytes(f"f{i}", DataType.BOOL, nullable=True))
    refused(kv, lambda: add("default", "c1", field_bytes("last", DataType.BOOL, nullable=True)),
            Code.PARAMETER_INVALID, "The number of fields has reached the maximum value 64")


def test_alter_collection_properties(env: tuple[Coordinator, MemoryKV, FakeNode]) -> None:
    c, kv, node = env
    cid = c.root.create_collection("default", schema_bytes(), properties={"collection.ttl.seconds": "10"})
    alter = c.alter.alter_collection
    alter("default", "c1", {"collection.ttl.seconds": "20", "collection.description": "hello"}, [])
    coll = c.ctx.catalog.collections[cid]
    # every collection has a timezone property (Milvus 2.6; the database's, else UTC)
    assert coll.properties == {"collection.ttl.seconds": "20", "timezone": "UTC"} and coll.description == "hello"
    assert node.pushed[-1][1].props == {"collection.ttl.seconds": "20", "timezone": "UTC"}
    refused(kv, lambda: alter("default", "c1", {"a": "b"}, ["c"]), Code.PARAMETER_INVALID,
            "cannot provide both DeleteKeys and ExtraParams")
    refused(kv, lambda: alter("default", "c1", {}, []), Code.PARAMETER_INVALID,
            "no properties or delete keys provided")
    refused(kv, lambda: alter("default", "c1", {"collection.ttl.seconds": "x"}, []), Code.PARAMETER_INVALID,
            "collection TTL is not a valid positive integer")
    refused(kv, lambda: alter("default", "c1", {"mmap.enabled": "maybe"}, []), Code.PARAMETER_INVALID,
            "mmap.enabled")
    refused(kv, lambda: alter("default", "c1", {TRUNCATE_KEY: "1"}, []), Code.PARAMETER_INVALID, "reserved")
    refused(kv, lambda: alter("default", "c1", {}, ["dynamicfield.enabled"]), Code.PARAMETER_INVALID,
            "cannot delete key dynamicfield.enabled")
    c.ctx.catalog.load_infos[cid] = None  # type: ignore[assignment]  # loaded, for the mmap rule
    refused(kv, lambda: alter("default", "c1", {"mmap.enabled": "true"}, []), Code.COLLECTION_LOADED,
            "can not alter mmap properties if collection loaded: collection already loaded[collection=c1]")
    del c.ctx.catalog.load_infos[cid]
    alter("default", "c1", {}, ["collection.ttl.seconds"])
    assert c.ctx.catalog.collections[cid].properties == {"timezone": "UTC"}
    alter("default", "c1", {"dynamicfield.enabled": "true"}, [])
    schema = c.ctx.catalog.collections[cid].parsed_schema
    assert schema.enable_dynamic_field and schema.dynamic_field is not None and schema.version == 1


def test_alter_field_rename_database_index(env: tuple[Coordinator, MemoryKV, FakeNode]) -> None:
    c, kv, node = env
    cid = c.root.create_collection("default", schema_bytes())
    field = c.alter.alter_collection_field
    field("default", "c1", "tag", {"max_length": "32", "mmap.enabled": "true"}, [])
    tag = c.ctx.catalog.collections[cid].parsed_schema.field("tag")
    assert tag.max_length == 32 and dict(tag.extra_params) == {"mmap.enabled": "true"}
    refused(kv, lambda: field("default", "c1", "tag", {"max_length": "0"}, []), Code.PARAMETER_INVALID,
            "should be in (0, 65535], but got 0")
    refused(kv, lambda: field("default", "c1", "tag", {"max_length": "x"}, []), Code.PARAMETER_INVALID,
            "max_length should be an integer")
    refused(kv, lambda: field("default", "c1", "ghost", {"mmap.enabled": "true"}, []), Code.PARAMETER_INVALID,
            "field ghost does not exist in collection")
    refused(kv, lambda: field("default", "c1", "tag", {}, ["max_length"]), Code.PARAMETER_INVALID,
            "max_length is not allowed to drop in collection field param")

    c.root.create_database("db2")
    c.root.create_collection("default", schema_bytes("c2"))
    refused(kv, lambda: c.alter.rename_collection("default", "c1", "c2"), Code.UNEXPECTED,
            "duplicated new collection name default:c2")
    refused(kv, lambda: c.alter.rename_collection("default", "c1", "c1"), Code.PARAMETER_INVALID,
            "collection name or database name should be different")
    c.alter.rename_collection("default", "c1", "moved", "db2")
    assert c.root.get("db2", "moved").id == cid and c.root.find("default", "c1") is None
    again = Catalog(kv, c.meta_root)
    again.load()
    assert again.collections[cid].db_name == "db2" and again.collections[cid].parsed_schema.name == "moved"
    assert len([k for k in snapshot(kv, f"{c.meta_root}/root-coord/database/collection-info/") if
                k.endswith(f"/{cid}")]) == 1

    c.alter.alter_database("db2", {"k": "v"}, [])
    assert c.root.describe_database("db2")["properties"] == {"k": "v"}
    refused(kv, lambda: c.alter.alter_database("db2", {"a": "b"}, ["k"]), Code.PARAMETER_INVALID,
            "cannot modify properties and delete keys at the same time")
    refused(kv, lambda: c.alter.alter_database("nodb", {"a": "b"}, []), Code.DATABASE_NOT_FOUND,
            "failed to get database by name: database not found[database=nodb]")

    c.index.create_index(cid, "v", "vidx", {"index_type": "FLAT", "metric_type": "L2"})
    c.alter.alter_index(cid, "vidx", {"mmap.enabled": "true"}, [])
    assert c.index.indexes_of(cid)[0].user_params["mmap.enabled"] == "true"
    refused(kv, lambda: c.alter.alter_index(cid, "vidx", {"nlist": "4"}, []), Code.PARAMETER_INVALID,
            "nlist is not a configable index property")
    refused(kv, lambda: c.alter.alter_index(cid, "other", {"mmap.enabled": "true"}, []), Code.INDEX_NOT_FOUND,
            "index not found[indexName=other]")


def test_truncate_drops_sealed_segments_and_sets_the_cut(env: tuple[Coordinator, MemoryKV, FakeNode]) -> None:
    c, kv, node = env
    cid = c.root.create_collection("default", schema_bytes(), shards_num=1)
    coll = c.ctx.catalog.collections[cid]
    part = c.root.partitions_of(cid)[0].id
    ts = c.ctx.tso.alloc()
    [[seg_id, _]] = c.data.assign_segments(cid, part, coll.vchannels[0], 10, ts)
    c.alter.truncate_collection("default", "c1")
    seg = c.ctx.catalog.segments[seg_id]
    schema = c.ctx.catalog.collections[cid].parsed_schema
    cut = int(schema.props[TRUNCATE_KEY])
    assert seg.state == DROPPED and seg.seal_ts <= cut < truncated_before(schema)
    assert ts < truncated_before(schema) <= expire_ts(schema.props, 0)
    assert TRUNCATE_KEY not in c.root.describe_collection("default", "c1")["properties"]
    assert all(kv.key != TRUNCATE_KEY for kv in schema.to_proto().properties)  # clients never see it
    assert node.pushed[-1][1].props[TRUNCATE_KEY] == str(cut)
    [[new_seg, _]] = c.data.assign_segments(cid, part, coll.vchannels[0], 1, c.ctx.tso.alloc())
    assert new_seg != seg_id and c.ctx.catalog.segments[new_seg].state != FLUSHED


def test_ttl_makes_old_segments_compaction_candidates(env: tuple[Coordinator, MemoryKV, FakeNode]) -> None:
    c, kv, node = env
    cid = c.root.create_collection("default", schema_bytes(), shards_num=1)
    coll = c.ctx.catalog.collections[cid]
    part = c.root.partitions_of(cid)[0].id
    old = tso.compose(tso.now_ms() - 10_000)
    big = c.data.max_rows(coll)  # one full-size segment: never merged just for being small
    seg = SegmentInfo(id=c.ctx.ids.alloc(), collection_id=cid, partition_id=part, vchannel=coll.vchannels[0],
                      state=FLUSHED, num_rows=big, max_rows=big, created_ts=old, seal_ts=old)
    c.ctx.catalog.save_segments([seg])
    assert c.compaction.trigger(cid).plan_ids == []  # no TTL: nothing to do
    c.alter.alter_collection("default", "c1", {"collection.ttl.seconds": "5"}, [])
    trig = c.compaction.trigger(cid)
    assert [c.compaction.plans[p].sources for p in trig.plan_ids] == [[seg.id]]
    c.compaction.plans.clear()
    c.alter.alter_collection("default", "c1", {"collection.autocompaction.enabled": "false"}, [])
    assert c.compaction.trigger(cid).plan_ids == []  # automatic compaction is off for it
    assert len(c.compaction.trigger(cid, force=True).plan_ids) == 1  # a manual request still runs
