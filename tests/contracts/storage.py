"""Contract checks for :class:`common.storage.ObjectStorage` backends (memory, local, S3).

Each ``check_*`` works under its own unique prefix so the checks can share one bucket.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import pytest

from common.storage.base import ObjectNotFound, ObjectStorage
from tests.contracts._util import unique


def _root() -> str:
    return unique("stc") + "/"


def check_put_get_exists_size_delete(storage: ObjectStorage) -> None:
    p = _root()
    data = bytes(range(256)) * 4
    assert storage.exists(p + "x") is False
    storage.put(p + "x", data)
    assert storage.exists(p + "x") is True
    assert storage.get(p + "x") == data
    assert storage.size(p + "x") == len(data)
    storage.put(p + "x", b"replaced")
    assert storage.get(p + "x") == b"replaced"
    storage.put(p + "empty", b"")
    assert storage.get(p + "empty") == b""
    assert storage.size(p + "empty") == 0
    storage.delete(p + "x")
    storage.delete(p + "x")  # absent: no error
    assert storage.exists(p + "x") is False
    storage.delete(p + "empty")


def check_missing_objects(storage: ObjectStorage) -> None:
    p = _root()
    with pytest.raises(ObjectNotFound):
        storage.get(p + "missing")
    with pytest.raises(ObjectNotFound):
        storage.size(p + "missing")
    with pytest.raises(ObjectNotFound):
        storage.get_range(p + "missing", 0, 10)
    with pytest.raises(KeyError):  # ObjectNotFound is a KeyError
        storage.get(p + "missing")


def check_get_range(storage: ObjectStorage) -> None:
    p = _root()
    data = os.urandom(10_000)
    storage.put(p + "r", data)
    assert storage.get_range(p + "r", 0, 10) == data[:10]
    assert storage.get_range(p + "r", 1234, 4000) == data[1234:5234]
    assert storage.get_range(p + "r", 9990, 100) == data[9990:], "fewer bytes at the end"
    assert storage.get_range(p + "r", 10_000, 5) == b""
    assert storage.get_range(p + "r", 20_000, 5) == b""
    assert storage.get_range(p + "r", 5, 0) == b""
    storage.delete(p + "r")


def check_list_recursive_sorted(storage: ObjectStorage) -> None:
    p = _root()
    keys = [
        "insert_log/1/2/30/100/5",
        "insert_log/1/2/3/100/1",
        "insert_log/1/2/3/101/2",
        "insert_log/1/20/3/100/1",
        "delta_log/1/2/3/9",
        "top",
    ]
    for key in keys:
        storage.put(p + key, key.encode())
    assert storage.list(p) == sorted(p + k for k in keys)
    assert storage.list(p + "insert_log/1/2/") == [
        p + "insert_log/1/2/3/100/1",
        p + "insert_log/1/2/3/101/2",
        p + "insert_log/1/2/30/100/5",
    ]
    # A prefix is a string prefix, as in S3, not a folder.
    assert storage.list(p + "insert_log/1/2") == sorted(p + k for k in keys if k.startswith("insert_log/"))
    assert storage.list(p + "insert_log/1/2/3/") == [
        p + "insert_log/1/2/3/100/1",
        p + "insert_log/1/2/3/101/2",
    ]
    assert storage.list(p + "nothing/") == []
    assert storage.delete_prefix(p + "insert_log/") == 4
    assert storage.list(p) == [p + "delta_log/1/2/3/9", p + "top"]
    assert storage.list(p + "insert_log/") == [], "emptied prefixes list nothing"
    assert storage.delete_prefix(p) == 2
    assert storage.list(p) == []


def check_large_object(storage: ObjectStorage) -> None:
    p = _root()
    data = os.urandom(12 * 1024 * 1024)
    storage.put(p + "big", data)
    assert storage.size(p + "big") == len(data)
    assert storage.get(p + "big") == data
    assert storage.get_range(p + "big", 8 * 1024 * 1024, 10) == data[8 * 1024 * 1024 : 8 * 1024 * 1024 + 10]
    storage.delete(p + "big")


def check_concurrent_writers(storage: ObjectStorage) -> None:
    p = _root()
    errors: list[BaseException] = []

    def write(t: int) -> None:
        try:
            for i in range(20):
                storage.put(f"{p}t{t}/{i:03d}", f"{t}-{i}".encode())
                storage.put(p + "shared", f"{t}-{i}".encode())
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(storage.list(p)) == 4 * 20 + 1
    assert storage.get(p + "shared") in {f"{t}-19".encode() for t in range(4)}
    assert storage.get(f"{p}t2/007") == b"2-7"
    storage.delete_prefix(p)


CHECKS: list[Callable[[ObjectStorage], None]] = [
    check_put_get_exists_size_delete,
    check_missing_objects,
    check_get_range,
    check_list_recursive_sorted,
    check_large_object,
    check_concurrent_writers,
]


def check_durable_across_reopen(open_storage: Callable[[], ObjectStorage]) -> None:
    p = _root()
    storage = open_storage()
    try:
        storage.put(p + "a/b", b"kept")
    finally:
        storage.close()
    storage = open_storage()
    try:
        assert storage.get(p + "a/b") == b"kept"
        assert storage.list(p) == [p + "a/b"]
        storage.delete_prefix(p)
    finally:
        storage.close()
