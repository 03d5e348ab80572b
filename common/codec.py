"""One binary encoding for everything Quiver sends between roles: msgpack with numpy arrays.

Messages on the stream and RPC payloads are plain dicts, lists, scalars, bytes and numpy
arrays. Numeric arrays travel as raw buffers (dtype + shape + bytes) and decode with
``np.frombuffer`` — no Python lists on the hot path. Object arrays (VarChar, JSON, Array
columns) travel element by element.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

_EXT_NDARRAY = 1
_EXT_OBJARRAY = 2


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            return msgpack.ExtType(_EXT_OBJARRAY, pack([list(obj.shape), list(obj.reshape(-1))]))
        header = msgpack.packb([obj.dtype.str, list(obj.shape)])
        return msgpack.ExtType(_EXT_NDARRAY, header + np.ascontiguousarray(obj).tobytes())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_NDARRAY:
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
