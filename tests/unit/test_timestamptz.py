"""Timestamptz text <-> UTC microseconds, as Milvus's pkg/util/timestamptz parses and formats it."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
import pytest
from pymilvus.grpc_gen import common_pb2, schema_pb2
from pymilvus.grpc_gen.schema_pb2 import DataType

from common import timestamptz as tz
from common.errors import Code, MilvusError
from common.fielddata import decode_insert, encode_column
from common.imports.coerce import to_column
from common.imports.errors import ImportFileError
from common.schema import Field, Schema


def _micros(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * 1_000_000


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("2024-12-31T22:00:00Z", "UTC", _micros(2024, 12, 31, 22)),
        ("2024-12-31 22:00:00Z", "Asia/Shanghai", _micros(2024, 12, 31, 22)),  # an offset wins over the zone
        ("2024-12-31T22:00:00+08:00", "UTC", _micros(2024, 12, 31, 14)),
        ("2024-12-31 22:00:00-08:00", "UTC", _micros(2025, 1, 1, 6)),
        ("2024-12-31T22:00:00+08", "UTC", _micros(2024, 12, 31, 14)),
        ("2024-12-31 22:00:00", "UTC", _micros(2024, 12, 31, 22)),  # naive: read in the zone
        ("2024-12-31T22:00:00", "Asia/Shanghai", _micros(2024, 12, 31, 14)),
        ("2024-01-15 12:00:00", "America/New_York", _micros(2024, 1, 15, 17)),  # EST, -05:00
        ("2024-07-15 12:00:00", "America/New_York", _micros(2024, 7, 15, 16)),  # EDT, -04:00
        ("2024-12-31T22:00:00.5Z", "UTC", _micros(2024, 12, 31, 22) + 500_000),
        ("2024-12-31T22:00:00.123456789Z", "UTC", _micros(2024, 12, 31, 22) + 123_456),  # to microseconds
    ],
)
def test_parse(text: str, zone: str, expected: int) -> None:
    assert tz.parse_one(text, zone) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", "got invalid timestamptz string 'yesterday': invalid timezone name"),
        ("2024-13-01 00:00:00", "got invalid timestamptz string '2024-13-01 00:00:00'"),
        ("2024-12-31", "got invalid timestamptz string '2024-12-31'"),
        ("2024-01-01T00:00:00+15:00", "UTC offset hour 15 is out of the valid range [-12, 14]"),
        ("2024-01-01T00:00:00-13:00", "UTC offset hour -13 is out of the valid range [-12, 14]"),
    ],
)
def test_bad_text_is_refused_with_the_value(text: str, message: str) -> None:
    with pytest.raises(MilvusError) as err:
        tz.parse_one(text, "UTC")
    assert err.value.code == Code.PARAMETER_INVALID and message in err.value.message


@pytest.mark.parametrize(
    ("micros", "zone", "text"),
    [
        (_micros(2024, 12, 31, 22), "UTC", "2024-12-31T22:00:00Z"),
        (_micros(2024, 12, 31, 22), "Asia/Shanghai", "2025-01-01T06:00:00+08:00"),
        (_micros(2024, 7, 15, 16), "America/New_York", "2024-07-15T12:00:00-04:00"),
        (_micros(2024, 12, 31, 22) + 120_000, "UTC", "2024-12-31T22:00:00.12Z"),  # no trailing zeros
        (_micros(2024, 12, 31, 22) + 1, "Asia/Kolkata", "2025-01-01T03:30:00.000001+05:30"),
        (-1_000_000, "UTC", "1969-12-31T23:59:59Z"),
    ],
)
def test_format(micros: int, zone: str, text: str) -> None:
    assert tz.format_one(micros, zone) == text
    assert tz.parse_one(text, "UTC") == micros


def test_time_zone_names() -> None:
    assert tz.check_timezone("America/New_York") == "America/New_York"
    for bad in ("Mars/Base", "", "../etc/passwd"):
        with pytest.raises(MilvusError, match="unknown or invalid IANA Time Zone ID"):
            tz.check_timezone(bad)


def _schema(zone: str) -> Schema:
    proto = schema_pb2.CollectionSchema(
        name="c",
        fields=[
            schema_pb2.FieldSchema(fieldID=100, name="id", data_type=DataType.Int64, is_primary_key=True),
            schema_pb2.FieldSchema(fieldID=101, name="ts", data_type=DataType.Timestamptz, nullable=True),
            schema_pb2.FieldSchema(
                fieldID=102, name="v", data_type=DataType.FloatVector,
                type_params=[common_pb2.KeyValuePair(key="dim", value="2")],
            ),
        ],
    )
    return Schema.from_proto(proto).with_properties({"timezone": zone})


def _vectors(n: int) -> schema_pb2.FieldData:
    fd = schema_pb2.FieldData(field_name="v", type=DataType.FloatVector)
    fd.vectors.dim = 2
    fd.vectors.float_vector.data.extend([0.5] * 2 * n)
    return fd


def test_insert_decodes_text_in_the_collection_zone_and_results_encode_back() -> None:
    schema = _schema("Asia/Shanghai")
    ts = schema_pb2.FieldData(field_name="ts", type=DataType.Timestamptz, valid_data=[True, False, True])
    ts.scalars.string_data.data.extend(["2024-12-31 22:00:00", "2024-12-31T22:00:00Z"])
    pk = schema_pb2.FieldData(field_name="id", type=DataType.Int64)
    pk.scalars.long_data.data.extend([1, 2, 3])
    cols = decode_insert(schema, [pk, ts, _vectors(3)], 3)
    assert cols["ts"].dtype == np.int64 and cols["ts.valid"].tolist() == [True, False, True]
    assert cols["ts"][[0, 2]].tolist() == [_micros(2024, 12, 31, 14), _micros(2024, 12, 31, 22)]
    out = encode_column(schema.field("ts"), cols["ts"], cols["ts.valid"], "America/New_York")
    assert list(out.scalars.string_data.data) == ["2024-12-31T09:00:00-05:00", "", "2024-12-31T17:00:00-05:00"]
    assert list(out.valid_data) == [True, False, True]


def test_insert_refuses_a_wrong_payload_and_bad_text() -> None:
    schema = _schema("UTC")
    pk = schema_pb2.FieldData(field_name="id", type=DataType.Int64)
    pk.scalars.long_data.data.append(1)
    ts = schema_pb2.FieldData(field_name="ts", type=DataType.Timestamptz)
    ts.scalars.long_data.data.append(5)
    with pytest.raises(MilvusError, match="timestamptz field data must be a string array"):
        decode_insert(schema, [pk, ts, _vectors(1)], 1)
    ts = schema_pb2.FieldData(field_name="ts", type=DataType.Timestamptz)
    ts.scalars.string_data.data.append("noon")
    with pytest.raises(MilvusError, match="got invalid timestamptz string 'noon'"):
        decode_insert(schema, [pk, ts, _vectors(1)], 1)


def test_default_value_text_is_stored_as_microseconds() -> None:
    fs = schema_pb2.FieldSchema(fieldID=101, name="ts", data_type=DataType.Timestamptz)
    fs.default_value.string_data = "2024-12-31T22:00:00+08:00"
    field = Field.from_proto(fs)
    assert field.default_value == _micros(2024, 12, 31, 14)
    assert Field.from_proto(field.to_proto()).default_value == field.default_value


def test_import_cells() -> None:
    field = Field(field_id=101, name="ts", dtype=DataType.Timestamptz, nullable=True)
    column, valid = to_column(field, ["2024-12-31 22:00:00", None, _micros(2024, 1, 1)], "Asia/Shanghai")
    assert valid.tolist() == [True, False, True]
    assert column[[0, 2]].tolist() == [_micros(2024, 12, 31, 14), _micros(2024, 1, 1)]
    with pytest.raises(ImportFileError, match="field 'ts': got invalid timestamptz string 'soon'"):
        to_column(field, ["soon"], "UTC")
    with pytest.raises(ImportFileError, match="expected type"):
        to_column(field, [1.5], "UTC")


def test_filters_compare_with_iso_literals_and_intervals() -> None:
    from common.expr import compile_filter

    schema = _schema("Asia/Shanghai")
    stamps = [_micros(2024, 12, 31, 14), _micros(2025, 1, 1, 0), _micros(2025, 1, 2, 0), 0]
    cols = {
        "id": np.arange(4, dtype=np.int64),
        "ts": np.array(stamps, dtype=np.int64),
        "ts.valid": np.array([True, True, True, False]),
    }

    def rows(expr: str) -> list[int]:
        return np.flatnonzero(compile_filter(expr, schema).evaluate(cols, 4)).tolist()

    assert rows("ts == ISO '2024-12-31T22:00:00'") == [0]  # naive: the collection's zone (UTC+8)
    assert rows("ts > ISO '2024-12-31T14:00:00Z'") == [1, 2]  # a null is never a match
    assert rows("ISO '2025-01-01T08:00:00+08:00' <= ts") == [1, 2]
    assert rows("ts + INTERVAL 'P1D' >= ISO '2025-01-02T00:00:00Z'") == [1, 2]
    assert rows("ts - INTERVAL 'PT10H' < iso '2024-12-31 12:00:00Z'") == [0]
    assert rows("ts is null") == [3]
    # a request's zone travels with the template values and wins over the collection's
    in_utc = compile_filter("ts == ISO '2024-12-31T14:00:00'", schema, tz.with_request_zone(None, "UTC"))
    assert np.flatnonzero(in_utc.evaluate(cols, 4)).tolist() == [0]
    with pytest.raises(MilvusError, match="unknown or invalid IANA Time Zone ID: Atlantis"):
        tz.with_request_zone({"x": 1}, "Atlantis")
    for bad, message in [
        ("id > ISO '2025-01-01T00:00:00Z'", "field 'id' is not a timestamptz datatype"),
        ("ts > ISO 'tomorrow'", "got invalid timestamptz string 'tomorrow'"),
        ("ts + INTERVAL 'P1X' > ISO '2025-01-01T00:00:00Z'", "invalid ISO 8601 duration: P1X"),
        ("ts > INTERVAL 'P1D'", "an interval can only be added to or subtracted from a Timestamptz field"),
        ("id + INTERVAL 'P1D' > 3", "an interval can only be added to or subtracted from a Timestamptz field"),
    ]:
        with pytest.raises(MilvusError, match=re.escape(message)):
            compile_filter(bad, schema)


def test_calendar_intervals_follow_milvus_civil_time() -> None:
    """Milvus adds intervals to the UTC civil time in whole seconds (absl): months carry days over."""
    jan31 = _micros(2024, 1, 31, 12) + 750_000  # the fraction is dropped
    shifted = tz.shift(np.array([jan31, _micros(2023, 3, 31)], dtype=np.int64), 0, 1, 0)
    assert shifted.tolist() == [_micros(2024, 3, 2, 12), _micros(2023, 5, 1)]  # "Feb 31", "Apr 31"
    assert tz.shift(np.array([_micros(2024, 2, 29)]), 1, 0, 3600).tolist() == [_micros(2025, 3, 1, 1)]
    assert tz.shift(np.array([_micros(2024, 3, 1)]), 0, -1, -86_400).tolist() == [_micros(2024, 1, 31)]
    assert tz.shift(np.array([-1]), 0, 0, 0).tolist() == [-1_000_000]  # floor, as civil seconds do
    from common.expr import compile_filter

    schema = _schema("UTC")
    stamps = np.array([jan31, _micros(2024, 2, 1)])
    cols = {"id": np.arange(2, dtype=np.int64), "ts": stamps, "ts.valid": np.ones(2, bool)}
    flt = compile_filter("ts + INTERVAL 'P1M' >= ISO '2024-03-01T00:00:00Z'", schema)
    assert np.flatnonzero(flt.evaluate(cols, 2)).tolist() == [0, 1]
    # 2022-11-28T07:54:54 and 2022-11-27T19:54:54
    flt = compile_filter("ts - INTERVAL 'P1Y2M3DT4H5M6S' < ISO '2022-11-28T00:00:00Z'", schema)
    assert np.flatnonzero(flt.evaluate(cols, 2)).tolist() == [1]
