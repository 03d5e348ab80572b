"""LocalStorage: object storage of standalone mode, one file per object under a root folder.

A key ``a/b/c`` is the file ``<root>/a/b/c``. A put writes a temporary file beside the
target and renames it over (``os.replace``), so a reader sees the old or the new object,
never half of one. Deletes prune directories left empty, so listings stay cheap.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

from common.storage.base import ObjectNotFound, ObjectStorage

_TMP_PREFIX = ".tmp-"


class LocalStorage(ObjectStorage):
    """Objects as files under ``root``; ``fsync=True`` also syncs each put to disk."""

    def __init__(self, root: str, fsync: bool = False) -> None:
        self.root = os.path.abspath(root)
        self._fsync = fsync
        os.makedirs(self.root, exist_ok=True)

    def _path(self, key: str) -> str:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") or p.startswith(_TMP_PREFIX) for p in parts):
            raise ValueError(f"invalid object key {key!r}")
        return os.path.join(self.root, *parts)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        parent = os.path.dirname(path)
        for _ in range(10):  # a concurrent delete may prune the parent between the two calls
            os.makedirs(parent, exist_ok=True)
            try:
                fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=parent)
                break
            except FileNotFoundError:
                continue
        else:
            raise OSError(f"cannot create a file in {parent}")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                if self._fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
            raise

    def get(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError(f"bad range offset={offset} length={length}")
        try:
            with open(self._path(key), "rb") as f:
                return os.pread(f.fileno(), length, offset) if length else b""
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))

    def size(self, key: str) -> int:
        path = self._path(key)
        if not os.path.isfile(path):
            raise ObjectNotFound(key)
        return os.path.getsize(path)

    def list(self, prefix: str) -> list[str]:
        # Walk from the deepest folder the prefix names; then filter by the string prefix.
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = os.path.join(self.root, *folder.split("/")) if folder else self.root
        keys: list[str] = []
        for dirpath, _dirs, files in os.walk(base):
            rel = os.path.relpath(dirpath, self.root)
            rel = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            for name in files:
                key = rel + name
                if not name.startswith(_TMP_PREFIX) and key.startswith(prefix):
                    keys.append(key)
        keys.sort()
        return keys

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.remove(path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return
        parent = os.path.dirname(path)
        while parent != self.root:
            try:
                os.rmdir(parent)
            except OSError:
                break
            parent = os.path.dirname(parent)
