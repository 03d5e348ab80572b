"""One binary encoding for everything Quiver sends between roles: msgpack with numpy arrays.

Messages on the stream and RPC payloads are plain dicts, lists, scalars, bytes and numpy
arrays. Numeric arrays travel as raw buffers (dtype + shape + bytes) and decode with
``np.frombuffer`` — no Python lists on the hot path. Object arrays (VarChar, JSON, Array
columns) travel element by element.
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack
import numpy as np

_EXT_NDARRAY = 1
_EXT_OBJARRAY = 2


# Packing inside ``default`` with a fresh ``msgpack.packb`` costs ~15 us per array (each nested
# Packer allocates its own buffer while the outer one holds its own): numeric array headers are
# memoised, and nested packs reuse per-thread Packers (one per nesting depth).
_HEADERS: dict[tuple[str, tuple[int, ...]], bytes] = {}
_MAX_HEADERS = 4096
_local = threading.local()


def _header(dtype: str, shape: tuple[int, ...]) -> bytes:
    key = (dtype, shape)
    head = _HEADERS.get(key)
    if head is None:
        head = _nested_pack([dtype, list(shape)])
        if len(_HEADERS) >= _MAX_HEADERS:
            _HEADERS.clear()
        _HEADERS[key] = head
    return head


def _nested_pack(obj: Any) -> bytes:
    free: list[msgpack.Packer] = _local.__dict__.setdefault("packers", [])
    packer = free.pop() if free else msgpack.Packer(default=_default, use_bin_type=True, strict_types=False)
    try:
        return packer.pack(obj)  # type: ignore[no-any-return]  # autoreset: returns the bytes, also after errors
    finally:
        free.append(packer)


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            return msgpack.ExtType(_EXT_OBJARRAY, _nested_pack([list(obj.shape), list(obj.reshape(-1))]))
        header = _header(obj.dtype.str, obj.shape)
        return msgpack.ExtType(_EXT_NDARRAY, header + np.ascontiguousarray(obj).tobytes())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


_DTYPES: dict[bytes, np.dtype] = {}
_UINT_WIDTHS = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}  # msgpack uint 8/16/32/64


def _fast_ndarray(data: bytes) -> np.ndarray | None:
    """Decode the usual header (fixarray of fixstr dtype and a fixarray of unsigned ints) by hand,
    without an Unpacker; None for anything else (then the general path decodes it)."""
    n = data[1] - 0xA0
    if data[0] != 0x92 or not 0 <= n < 32:
        return None
    pos = 2 + n
    ndim = data[pos] - 0x90
    if not 0 <= ndim < 16:
        return None
    pos += 1
    shape = []
    for _ in range(ndim):
        b = data[pos]
        if b < 0x80:
            shape.append(b)
            pos += 1
            continue
        width = _UINT_WIDTHS.get(b)
        if width is None:
            return None
        shape.append(int.from_bytes(data[pos + 1 : pos + 1 + width], "big"))
        pos += 1 + width
    name = data[2 : 2 + n]
    dtype = _DTYPES.get(name)
    if dtype is None:
        dtype = _DTYPES[name] = np.dtype(name.decode())
    return np.frombuffer(data, dtype=dtype, offset=pos).reshape(shape)


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_NDARRAY:
        fast = _fast_ndarray(data) if len(data) > 3 else None
        if fast is not None:
            return fast
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(data)
        dtype, shape = unpacker.unpack()
        offset = unpacker.tell()
        arr = np.frombuffer(data, dtype=np.dtype(dtype), offset=offset)
        return arr.reshape(shape)
    if code == _EXT_OBJARRAY:
        shape, items = unpack(data)
        out = np.empty(len(items), dtype=object)
        if items and isinstance(items[0], (list, np.ndarray)):
            for i, item in enumerate(items):  # nested sequences: numpy must not broadcast them
                out[i] = item
        else:
            out[:] = items
        return out.reshape(shape)
    return msgpack.ExtType(code, data)


def pack(obj: Any) -> bytes:
    """Encode ``obj`` (dicts, lists, scalars, bytes, numpy arrays) to bytes."""
    return msgpack.packb(obj, default=_default, use_bin_type=True, strict_types=False)


def unpack(data: bytes) -> Any:
    """Decode bytes made by :func:`pack`. Numeric arrays come back read-only views."""
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
