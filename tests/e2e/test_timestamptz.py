"""Timestamptz fields (Milvus 2.6) through pymilvus and REST, on standalone and on a cluster.

Values go in as ISO 8601 text (with an offset, or naive and read in the collection's time zone)
and come back as text in the time zone of the request, else of the collection (its `timezone`
property: its database's, else UTC, set when it is created); filters compare with ISO literals.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pymilvus import DataType, MilvusClient, MilvusException

from tests.e2e.rest_call import post_v2

pytestmark = pytest.mark.e2e

TEXTS = [
    "2024-12-31 22:00:00", "2024-12-31T22:00:00+08:00", None, "2025-06-30T23:30:00.25Z", "2025-01-01T03:00:00-05:00"
]


def _utc(text: str, zone: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone))).astimezone(UTC)


def _shown(moment: datetime, zone: str) -> str:
    """Milvus's output text: RFC 3339 in ``zone``, fraction without trailing zeros, Z for UTC."""
    text = moment.astimezone(ZoneInfo(zone)).isoformat(timespec="microseconds")
    body, offset = text[:26].rstrip("0").rstrip("."), text[26:]
    return body + ("Z" if offset == "+00:00" else offset)


def _make(c: MilvusClient, name: str, **kwargs: Any) -> None:
    schema = c.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("ts", DataType.TIMESTAMPTZ, nullable=True)
    index = c.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    index.add_index("ts", index_type="AUTOINDEX")
    c.create_collection(name, schema=schema, index_params=index, consistency_level="Strong", **kwargs)


def _ts(c: MilvusClient, name: str, **kwargs: Any) -> dict[int, Any]:
    return {r["id"]: r["ts"] for r in c.query(name, "id >= 0", output_fields=["ts"], **kwargs)}


def test_values_round_trip_in_the_collection_time_zone(server: Any) -> None:
    c = MilvusClient(uri=server.uri)
    _make(c, "tstz")
    assert c.describe_collection("tstz")["properties"]["timezone"] == "UTC"
    c.insert("tstz", [{"id": i, "v": [float(i), 0.0], "ts": t} for i, t in enumerate(TEXTS)])
    moments = {i: _utc(t, "UTC") for i, t in enumerate(TEXTS) if t is not None}

    def expected(zone: str) -> dict[int, Any]:
        return {i: _shown(moments[i], zone) if i in moments else None for i in range(len(TEXTS))}

    assert _ts(c, "tstz") == expected("UTC")
    # the request's time zone, then the collection's after an alter (stored instants unchanged)
    assert _ts(c, "tstz", timezone="Asia/Kolkata") == expected("Asia/Kolkata")
    c.alter_collection_properties("tstz", properties={"timezone": "America/New_York"})
    assert _ts(c, "tstz") == expected("America/New_York")
    hits = c.search("tstz", [[0.0, 0.0]], limit=2, output_fields=["ts"])
    assert [h["entity"]["ts"] for h in hits[0]] == [expected("America/New_York")[i] for i in (0, 1)]
    # a naive value inserted now is read in New York time; filters compare instants, on sealed
    # segments (Parquet binlogs, a sorted index) and growing ones alike
    c.flush("tstz")
    c.insert("tstz", [{"id": 9, "v": [9.0, 0.0], "ts": "2025-01-01 00:00:00"}])
    later = c.query("tstz", "ts >= ISO '2025-01-01T05:00:00Z'", output_fields=["id"])
    assert sorted(r["id"] for r in later) == [3, 4, 9]
    shifted = c.query("tstz", "ts + INTERVAL 'PT1H' > ISO '2025-01-01T06:30:00Z'", output_fields=["id"])
    assert sorted(r["id"] for r in shifted) == [3, 4]
    # an ISO literal without an offset is read in the request's zone, else the collection's
    naive = "ts >= ISO '2025-01-01 03:00:00'"
    assert sorted(r["id"] for r in c.query("tstz", naive, output_fields=["id"])) == [3, 4]  # New York: 08:00Z
    assert sorted(r["id"] for r in c.query("tstz", naive, output_fields=["id"], timezone="UTC")) == [3, 4, 9]
    assert sorted(r["id"] for r in c.query("tstz", naive, output_fields=["id"], timezone="Asia/Tokyo")) == [
        0, 3, 4, 9
    ]
    c.release_collection("tstz")
    c.load_collection("tstz")  # the sealed segment reloaded from its binlogs
    assert _ts(c, "tstz") == expected("America/New_York") | {9: "2025-01-01T00:00:00-05:00"}
    c.drop_collection("tstz")


def test_bad_values_and_time_zones_are_refused_and_store_nothing(server: Any) -> None:
    c = MilvusClient(uri=server.uri)
    _make(c, "tstz_bad")
    c.insert("tstz_bad", [{"id": 1, "v": [1.0, 0.0], "ts": "2024-01-01T00:00:00Z"}])
    for text, message in [
        ("soon", "got invalid timestamptz string 'soon'"),
        ("2024-02-30 00:00:00", "got invalid timestamptz string '2024-02-30 00:00:00'"),
        ("2024-01-01T00:00:00+14:30", "UTC offset hour 14 is out of the valid range [-12, 14]"),
    ]:
        with pytest.raises(MilvusException) as err:
            c.insert("tstz_bad", [{"id": 2, "v": [2.0, 0.0], "ts": text}])
        assert err.value.code == 1100 and message in err.value.message
    with pytest.raises(MilvusException, match="unknown or invalid IANA Time Zone ID: Mars/Base"):
        c.alter_collection_properties("tstz_bad", properties={"timezone": "Mars/Base"})
    with pytest.raises(MilvusException, match="unknown or invalid IANA Time Zone ID: Moon"):
        c.query("tstz_bad", "id >= 0", output_fields=["ts"], timezone="Moon")
    with pytest.raises(MilvusException, match="field 'id' is not a timestamptz datatype"):
        c.query("tstz_bad", "id > ISO '2024-01-01T00:00:00Z'")
    assert c.query("tstz_bad", "", output_fields=["count(*)"])[0]["count(*)"] == 1
    assert c.describe_collection("tstz_bad")["properties"]["timezone"] == "UTC"
    c.drop_collection("tstz_bad")


def test_database_time_zone_and_rest(server: Any) -> None:
    c = MilvusClient(uri=server.uri)
    with pytest.raises(MilvusException, match="unknown or invalid IANA Time Zone ID: Nowhere"):
        c.create_database("tz_db_bad", properties={"timezone": "Nowhere"})
    c.create_database("tz_db", properties={"timezone": "Asia/Shanghai"})
    c.use_database("tz_db")
    _make(c, "tstz_rest")
    assert c.describe_collection("tstz_rest")["properties"]["timezone"] == "Asia/Shanghai"
    body = {"dbName": "tz_db", "collectionName": "tstz_rest"}
    row = {"id": 1, "v": [1.0, 0.0], "ts": "2025-03-01 08:00:00"}  # naive: Shanghai time
    reply = post_v2(server, "entities/insert", body | {"data": [row]})
    assert reply["code"] == 0, reply
    got = post_v2(server, "entities/query", body | {"filter": "id == 1", "outputFields": ["ts"]})
    assert got["code"] == 0 and got["data"][0]["ts"] == "2025-03-01T08:00:00+08:00", got
    assert _ts(c, "tstz_rest", timezone="UTC") == {1: "2025-03-01T00:00:00Z"}
    bad = post_v2(server, "entities/insert", body | {"data": [{"id": 2, "v": [1.0, 0.0], "ts": "March"}]})
    assert bad["code"] == 1100 and "got invalid timestamptz string 'March'" in bad["message"], bad
    c.drop_collection("tstz_rest")
    c.use_database("default")
    c.drop_database("tz_db")
