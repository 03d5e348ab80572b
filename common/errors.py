"""Milvus error codes and the one exception type every role raises for a user-facing failure.

Milvus 2.3+ reports errors with a numeric ``code`` (pkg/util/merr) plus the legacy
``error_code`` enum; pymilvus reads both. Raising :class:`MilvusError` anywhere in a role and
converting it once at the API edge keeps error handling in one place.
"""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    """Numeric codes of Milvus's merr package (the ``code`` field of common.Status)."""

    SUCCESS = 0
    SERVICE_NOT_READY = 1
    SERVICE_UNAVAILABLE = 2
    MEMORY_LIMIT_EXCEEDED = 3
    REQUEST_LIMIT_EXCEEDED = 4
    SERVICE_INTERNAL = 5
    RATE_LIMIT = 8
    QUOTA_EXCEEDED = 9
    UNIMPLEMENTED = 10
    TIMETICK_LONG_DELAY = 11
    RESOURCE_INSUFFICIENT = 12
    COLLECTION_NOT_FOUND = 100
    COLLECTION_NOT_LOADED = 101
    COLLECTION_NUM_LIMIT = 102
    COLLECTION_NOT_FULLY_LOADED = 103
    COLLECTION_LOADED = 104
    COLLECTION_ILLEGAL_SCHEMA = 105
    PARTITION_NOT_FOUND = 200
    PARTITION_NOT_LOADED = 201
    REPLICA_NOT_AVAILABLE = 401
    CHANNEL_NOT_FOUND = 500
    CHANNEL_NOT_AVAILABLE = 503
    SEGMENT_NOT_FOUND = 600
    SEGMENT_LOAD_FAILED = 604
    INDEX_NOT_FOUND = 700
    INDEX_NOT_SUPPORTED = 701
    INDEX_DUPLICATE = 702
    DATABASE_NOT_FOUND = 800
    DATABASE_NUM_LIMIT = 801
    DATABASE_INVALID_NAME = 802
    NODE_NOT_FOUND = 901
    NODE_OFFLINE = 902
    NODE_NOT_AVAILABLE = 905
    IO_KEY_NOT_FOUND = 1000
    IO_FAILED = 1001
    PARAMETER_INVALID = 1100
    PARAMETER_MISSING = 1101
    PARAMETER_TOO_LARGE = 1102
    NOT_AUTHENTICATED = 1400
    PRIVILEGE_NOT_PERMITTED = 1401
    ALIAS_NOT_FOUND = 1600
    ALIAS_COLLECTION_NAME_CONFLICT = 1601
    ALIAS_ALREADY_EXIST = 1602
    FIELD_NOT_FOUND = 1700
    FIELD_INVALID_NAME = 1701
    OPERATION_NOT_SUPPORTED = 3000
    TIMEOUT = 10001
    UNEXPECTED = 65535


# The legacy common.ErrorCode enum value pymilvus 2.x still inspects for a few codes.
_LEGACY: dict[int, int] = {
    Code.SUCCESS: 0,
    Code.COLLECTION_NOT_FOUND: 4,  # CollectionNotExists
    Code.PARAMETER_INVALID: 5,  # IllegalArgument
    Code.PARAMETER_MISSING: 5,
    Code.INDEX_NOT_FOUND: 25,  # IndexNotExist
    Code.NOT_AUTHENTICATED: 3,  # PermissionDenied
    Code.PRIVILEGE_NOT_PERMITTED: 3,
    Code.RATE_LIMIT: 49,
    Code.MEMORY_LIMIT_EXCEEDED: 53,
    Code.SERVICE_NOT_READY: 56,
    Code.COLLECTION_ILLEGAL_SCHEMA: 62,  # SchemaMismatch
}

_RETRIABLE = {Code.SERVICE_NOT_READY, Code.SERVICE_UNAVAILABLE, Code.RATE_LIMIT, Code.COLLECTION_NOT_FULLY_LOADED}


def legacy_error_code(code: int) -> int:
    """The common.ErrorCode value sent beside ``code`` (UnexpectedError when none fits)."""
    return _LEGACY.get(code, 0 if code == 0 else 1)


class MilvusError(Exception):
    """A failure to report to the client as a Milvus status: a merr code and a message.

    The message follows Milvus's shape, ``"<detail>: <title>[...]"``, naming the field or
    value at fault, e.g. ``MilvusError(Code.PARAMETER_INVALID, "the dim (16) of field data
    (vector) is not equal to schema dim (8)")``.
    """

    def __init__(self, code: int, message: str) -> None:
        self.code = int(code)
        self.message = message
        super().__init__(self.message)

    @property
    def retriable(self) -> bool:
        return self.code in _RETRIABLE

    def __repr__(self) -> str:
        return f"MilvusError(code={self.code}, message={self.message!r})"


def invalid(message: str) -> MilvusError:
    """Shorthand for the most common user error: an invalid parameter (code 1100)."""
    return MilvusError(Code.PARAMETER_INVALID, message)


def collection_not_found(name: str, db: str = "default") -> MilvusError:
    """merr.WrapErrCollectionNotFoundWithDB: what every API but DescribeCollection reports."""
    return MilvusError(Code.COLLECTION_NOT_FOUND, f"collection not found[database={db}][collection={name}]")


def describe_not_found(name: str, db: str = "default") -> MilvusError:
    """DescribeCollection rewords a missing collection (Milvus's describeCollectionTask)."""
    return MilvusError(Code.COLLECTION_NOT_FOUND, f"can't find collection[database={db}][collection={name}]")


def unsupported(what: str) -> MilvusError:
    return MilvusError(Code.UNIMPLEMENTED, f"{what} is not supported by Quiver yet")
