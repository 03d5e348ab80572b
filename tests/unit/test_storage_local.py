"""What only LocalStorage promises: atomic replace, no temp files or empty folders left, safe keys."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest

from common.storage.local import LocalStorage


def test_layout_and_pruning(tmp_path: Path) -> None:
    storage = LocalStorage(str(tmp_path))
    storage.put("insert_log/1/2/3/100/7", b"data")
    assert (tmp_path / "insert_log/1/2/3/100/7").read_bytes() == b"data"
    storage.delete("insert_log/1/2/3/100/7")
    assert os.listdir(tmp_path) == [], "empty folders are pruned up to the root"


def test_failed_put_keeps_old_object_and_leaves_no_temp_file(tmp_path: Path) -> None:
    storage = LocalStorage(str(tmp_path))
    storage.put("a/b", b"old")
    failing = mock.patch("common.storage.local.os.replace", side_effect=OSError("disk full"))
    with failing, pytest.raises(OSError):
        storage.put("a/b", b"new")
    assert storage.get("a/b") == b"old"
    assert sorted(os.listdir(tmp_path / "a")) == ["b"]
    assert storage.list("") == ["a/b"]


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "./a", "a/", ".tmp-x"])
def test_rejects_unsafe_keys(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(str(tmp_path / "root"))
    with pytest.raises(ValueError):
        storage.put(key, b"x")
    assert not (tmp_path / "b").exists()


def test_fsync_option(tmp_path: Path) -> None:
    storage = LocalStorage(str(tmp_path), fsync=True)
    storage.put("k", b"v")
    assert storage.get("k") == b"v"
