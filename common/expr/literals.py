"""Literal values of the filter language: numbers, quoted strings and template parameters.

Milvus parses integers like Go's ``strconv.ParseInt(s, 0, 64)`` (decimal, ``0x`` hex, ``0b``
binary, leading-``0`` or ``0o`` octal) and unquotes strings like ``strconv.Unquote`` after
allowing single quotes. We follow that, with one leniency: an unknown escape such as ``\\%``
keeps its backslash, so ``like "50\\%"`` reaches the LIKE matcher as an escaped ``%``.
Template values (``a > {x}``) arrive as Python or numpy values and are normalised here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from common.expr.nodes import Const, Kind

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_SIMPLE_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{1,3}|[\s\S])")


def parse_int(text: str) -> int:
    """An integer literal's value (Go ``ParseInt`` base-0 syntax)."""
    if len(text) > 1 and text[0] == "0" and text[1].isdigit():
        return int(text, 8)
    return int(text, 0)


def unquote(token: str) -> str:
    """The value of a quoted string token: ``"..."``, ``'...'`` or raw ``r"..."``."""
    if token[0] in "rR":
        return token[2:-1]
    return _ESCAPE.sub(_unescape, token[1:-1])


def _unescape(match: re.Match[str]) -> str:
    body = match.group(1)
    head = body[0]
    if head in "xuU" and len(body) > 1:
        return chr(int(body[1:], 16))
    if head.isdigit() and head in "01234567":
        return chr(int(body, 8))
    return _SIMPLE_ESCAPES.get(body, "\\" + body)


def const_of(value: Any) -> Const:
    """A constant node for a Python value (a template parameter or a folded result)."""
    value = plain(value)
    if isinstance(value, bool):
        return Const(Kind.BOOL, "Bool", value)
    if isinstance(value, int):
        return Const(Kind.INT, "Int64", value)
    if isinstance(value, float):
        return Const(Kind.FLOAT, "Double", value)
    if isinstance(value, str):
        return Const(Kind.STRING, "VarChar", value)
    if isinstance(value, tuple):
        return Const(Kind.LIST, "Array", value)
    raise ValueError(f"unsupported template value type {type(value).__name__}")


def plain(value: Any) -> Any:
    """Numpy scalars and arrays to Python values; lists to (nested) tuples."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        return tuple(plain(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        raise ValueError("a JSON object cannot be used as a value")
    raise ValueError(f"unsupported template value type {type(value).__name__}")
