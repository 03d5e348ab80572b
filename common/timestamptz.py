"""Timestamptz values (Milvus 2.6): ISO 8601 text on the wire, UTC microseconds everywhere else.

Clients send a Timestamptz field as strings and read it back as strings; Milvus's proxy parses
them into int64 microseconds since the Unix epoch (UTC) on the way in and formats them again on
the way out, in a time zone: the request's ``timezone`` parameter, else the collection's
``timezone`` property (every collection gets one at creation: its database's, else UTC).

Parsing follows Milvus's pkg/util/timestamptz: RFC 3339 with an offset (``Z``, ``+08:00``, also
``+08``; a space may replace the ``T``), where offsets beyond -12:00..+14:00 are refused, or a
naive date-time (``2024-12-31 22:00:00``, optional fraction) taken in the default time zone.
Formatting is RFC 3339 with at most six fraction digits and no trailing zeros, ``Z`` for UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from common.errors import invalid

TIMEZONE_KEY = "timezone"
DEFAULT_TIMEZONE = "UTC"
# A request's time zone travels to the filter compiler with the expression's template values, under
# a key no template name can take (names are identifiers): ISO literals in the filter are read in it.
FILTER_TIMEZONE_KEY = "$timezone"
MIN_OFFSET_S, MAX_OFFSET_S = -12 * 3600, 14 * 3600

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TEXT = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}(?::?\d{2})?)?$"
)
# Milvus's wording for any unparsable value (checkTimestamptzFieldData), odd as it reads
_BAD_VALUE = (
    "invalid timezone name; must be a valid IANA Time Zone ID (e.g., 'Asia/Shanghai' or 'UTC'): invalid parameter"
)


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone ID, else Milvus's parameter error."""
    if not name or _zone(name) is None:
        raise invalid(f"unknown or invalid IANA Time Zone ID: {name}: invalid parameter")
    return name


def with_request_zone(values: dict[str, Any] | None, timezone: str) -> dict[str, Any] | None:
    """Template values for a filter, carrying the request's ``timezone`` (checked) when it names one."""
    if not timezone:
        return values
    return {**(values or {}), FILTER_TIMEZONE_KEY: check_timezone(timezone)}


def parse_one(text: str, timezone: str) -> int:
    """Microseconds since the epoch for one string; a naive one is read in ``timezone``."""
    m = _TEXT.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise invalid(f"got invalid timestamptz string '{text}': {_BAD_VALUE}")
    y, mo, d, hh, mi, ss = (int(g) for g in m.groups()[:6])
    micros = int((m.group(7) or "").ljust(6, "0")[:6] or 0)
    offset = m.group(8)
    try:
        local = datetime(y, mo, d, hh, mi, ss, micros)
    except ValueError:
        raise invalid(f"got invalid timestamptz string '{text}': {_BAD_VALUE}") from None
    if offset is None:
        zone = _zone(timezone)
        if zone is None:
            raise invalid(f"unknown or invalid IANA Time Zone ID: {timezone}: invalid parameter")
        moment = local.replace(tzinfo=zone)
    else:
        seconds = 0
        if offset != "Z":
            digits = offset[1:].replace(":", "")
            seconds = int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60
            seconds = -seconds if offset[0] == "-" else seconds
        if not MIN_OFFSET_S <= seconds <= MAX_OFFSET_S:
            raise invalid(
                f"got invalid timestamptz string '{text}': UTC offset hour {int(seconds / 3600)} is out of the "
                f"valid range [{MIN_OFFSET_S // 3600}, {MAX_OFFSET_S // 3600}]: invalid parameter"
            )
        moment = local.replace(tzinfo=UTC) - timedelta(seconds=seconds)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def shift(micros: np.ndarray, years: int, months: int, seconds: int) -> np.ndarray:
    """``micros`` moved by a calendar interval, as Milvus's segcore does it (absl civil time in UTC):
    whole seconds (the fraction is dropped), then years and months added to the civil date with the
    day carried over (Jan 31 + 1 month = Mar 2 or 3), then the fixed part in seconds."""
    secs = np.floor_divide(np.asarray(micros, dtype=np.int64), 1_000_000)
    days, sod = np.divmod(secs, 86_400)
    date = days.astype("datetime64[D]")
    month = date.astype("datetime64[M]")
    day_of_month = (date - month.astype("datetime64[D]")).astype(np.int64)
    moved = (month + np.timedelta64(years * 12 + months, "M")).astype("datetime64[D]") + day_of_month
    return (moved.astype(np.int64) * 86_400 + sod + seconds) * 1_000_000


def parse(texts: Iterable[str], timezone: str) -> np.ndarray:
    """int64 microseconds for each string (Milvus's checkTimestamptzFieldData)."""
    return np.array([parse_one(t, timezone) for t in texts], dtype=np.int64)


def format_one(micros: int, timezone: str) -> str:
    """RFC 3339 in ``timezone``: up to six fraction digits, trailing zeros dropped, Z for UTC."""
    zone = _zone(timezone) or UTC
    moment = (_EPOCH + timedelta(microseconds=int(micros))).astimezone(zone)
    body = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        body += "." + f"{moment.microsecond:06d}".rstrip("0")
    off = moment.utcoffset() or timedelta(0)
    if not off:
        return body + "Z"
    total = int(off.total_seconds())
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total) // 60, 60)
    return f"{body}{sign}{hours:02d}:{minutes:02d}"
