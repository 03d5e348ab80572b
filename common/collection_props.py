"""Collection, field, index and database properties: Milvus's keys, their checks, and what they mean.

Properties arrive as free-form key/value pairs (CreateCollection, AlterCollection,
AlterCollectionField, AlterIndex, AlterDatabase). A few change how data is served: the
collection TTL hides rows older than ``collection.ttl.seconds`` from every read and lets
compaction drop them; ``collection.autocompaction.enabled=false`` keeps automatic compaction
away from a collection; Quiver's own ``quiver.truncate.ts`` hides everything a TruncateCollection
cut off until its segments are gone. Every node reads them from the schema it holds (the
properties travel inside the schema), so the rules live here, next to the checks that keep
bad values out of the catalog. Added fields need a column for rows written before them:
:func:`missing_column` builds it (the default when there is one, else nulls).
"""

from __future__ import annotations

import numpy as np

from common import timestamptz, tso
from common.errors import Code, MilvusError
from common.fielddata.columns import empty_column
from common.schema import INTERNAL_PREFIX, Field, Schema

TTL_KEY = "collection.ttl.seconds"
AUTOCOMPACTION_KEY = "collection.autocompaction.enabled"
MMAP_KEY = "mmap.enabled"
LAZYLOAD_KEY = "lazyload.enabled"
WARMUP_KEY = "warmup"
DESCRIPTION_KEY = "collection.description"
FIELD_DESCRIPTION_KEY = "field.description"
DYNAMIC_KEY = "dynamicfield.enabled"
TRUNCATE_KEY = INTERNAL_PREFIX + "truncate.ts"
MAX_TTL_SECONDS = 3155760000  # 100 years (Milvus common.MaxTTLSeconds)
# AlterCollectionField: what may be set / dropped (Milvus 2.6 allowedAlterProps / allowedDropProps)
FIELD_ALTERABLE = ("max_length", MMAP_KEY, "max_capacity", FIELD_DESCRIPTION_KEY, WARMUP_KEY)
FIELD_DROPPABLE = (MMAP_KEY, WARMUP_KEY)
# AlterIndex: Milvus's configurable index params (indexparams.IsConfigableIndexParam)
INDEX_CONFIGURABLE = (MMAP_KEY, "indexoffsetcache.enabled", WARMUP_KEY)
_BOOL_KEYS = (MMAP_KEY, AUTOCOMPACTION_KEY, LAZYLOAD_KEY, "indexoffsetcache.enabled")


def invalid(msg: str) -> MilvusError:
    """merr.WrapErrParameterInvalidMsg."""
    return MilvusError(Code.PARAMETER_INVALID, f"{msg}: invalid parameter")


def collection_loaded(collection: str, msg: str) -> MilvusError:
    """merr.WrapErrCollectionLoaded."""
    return MilvusError(Code.COLLECTION_LOADED, f"{msg}: collection already loaded[collection={collection}]")


def check_bool(key: str, value: str) -> None:
    """Properties that are switches must say true or false (Go's strconv.ParseBool spellings)."""
    if key in _BOOL_KEYS and value.strip().lower() not in ("true", "false", "1", "0", "t", "f"):
        raise invalid(f"invalid value for {key}: {value!r}, expected true or false")


def check_ttl(props: dict[str, str]) -> None:
    """validateCollectionTTL: an integer in [-1, 100 years]."""
    if TTL_KEY not in props:
        return
    raw = props[TTL_KEY]
    try:
        val = int(raw.strip())
    except ValueError:
        raise invalid("collection TTL is not a valid positive integer") from None
    if val < -1 or val > MAX_TTL_SECONDS:
        raise invalid(f"collection TTL is out of range, expect [-1, {MAX_TTL_SECONDS}], got {val}")


def check_collection_props(props: dict[str, str]) -> None:
    """What CreateCollection and AlterCollection refuse in properties."""
    for key, value in props.items():
        if key.startswith(INTERNAL_PREFIX):
            raise invalid(f"{key} is a reserved property key")
        check_bool(key, value)
    check_ttl(props)
    check_timezone_prop(props)


def check_timezone_prop(props: dict[str, str]) -> None:
    """The ``timezone`` property (collections and databases) must name an IANA time zone."""
    if timestamptz.TIMEZONE_KEY in props:
        timestamptz.check_timezone(props[timestamptz.TIMEZONE_KEY])


def ttl_seconds(props: dict[str, str]) -> int:
    """The collection TTL in seconds (0: none; -1 and unparsable values mean none too)."""
    try:
        val = int(props.get(TTL_KEY, "0").strip())
    except ValueError:
        return 0
    return max(0, val)


def autocompaction_enabled(props: dict[str, str]) -> bool:
    return props.get(AUTOCOMPACTION_KEY, "true").strip().lower() not in ("false", "0", "f")


def expire_ts(props: dict[str, str], now_ts: int) -> int:
    """Rows with a timestamp below this are gone for a read at ``now_ts`` (0: none are).

    As Milvus's proxy computes CollectionTtlTimestamps: ``now`` less the TTL, as a hybrid
    timestamp; a TruncateCollection's cut-off counts the same way.
    """
    cut = 0
    ttl = ttl_seconds(props)
    if ttl and now_ts:
        cut = tso.compose(max(0, tso.physical_ms(now_ts) - ttl * 1000), 0)
    trunc = props.get(TRUNCATE_KEY)
    if trunc:
        cut = max(cut, int(trunc) + 1)
    return cut


def truncated_before(schema: Schema) -> int:
    """Rows with a timestamp below this were cut off by a TruncateCollection (0: none were)."""
    if not schema.properties:
        return 0
    raw = schema.props.get(TRUNCATE_KEY)
    return int(raw) + 1 if raw else 0


def missing_column(field: Field, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The column of ``n`` rows written before ``field`` existed: its default, else nulls.

    Returns (values, validity); validity is None for a field that is not nullable.
    """
    column = empty_column(field, n)
    if field.default_value is not None:
        column[:] = field.default_value
        return column, (np.ones(n, dtype=np.bool_) if field.nullable else None)
    return column, (np.zeros(n, dtype=np.bool_) if field.nullable else None)
