"""The querynode's compiled-filter cache is keyed by the schema version: a filter compiled before
AddCollectionField (a name resolving to the dynamic "$meta" field, or unknown) is never served
once the schema has the field, even when no update_schema call evicted it (a read racing the DDL)."""

from __future__ import annotations

from pymilvus import DataType

from common.msgstream.memory import MemoryStream
from common.schema import Field, Schema
from common.storage.memory import MemoryStorage
from services.querynode.server import QueryNode


def test_filter_compiled_before_a_field_was_added_is_not_reused() -> None:
    old = Schema("c", "", (
        Field(field_id=100, name="id", dtype=DataType.INT64, is_primary=True),
        Field(field_id=101, name="v", dtype=DataType.FLOAT_VECTOR, dim=2),
        Field(field_id=102, name="$meta", dtype=DataType.JSON, is_dynamic=True),
    ), enable_dynamic_field=True)
    new = old.with_field(Field(field_id=0, name="x", dtype=DataType.INT64, nullable=True))
    assert new.version == old.version + 1
    qn = QueryNode(MemoryStream(), MemoryStorage(), 64)
    try:
        stale = qn._filter(7, old, "x > 1", None)
        assert stale is not None and "$meta" in stale.fields  # before the field: a dynamic key
        fresh = qn._filter(7, new, "x > 1", None)
        assert fresh is not None and "x" in fresh.fields and "$meta" not in fresh.fields
        assert qn._filter(7, new, "x > 1", None) is fresh  # still cached per version
    finally:
        qn.stop()
