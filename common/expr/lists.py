"""A fast path for long literal lists, such as ``pk in [1, 2, ..., 100000]``.

Deletes and queries by primary key often send tens of thousands of literals. Feeding each
one through the LALR parser costs ~20 µs per element, so before parsing we cut every flat
list of plain numbers and strings longer than :data:`MIN_ITEMS` out of the text, parse its
items with one regular expression, and leave a ``{name}`` template placeholder in its place.
String literals are matched first so that brackets inside them are never touched.
"""

from __future__ import annotations

import re
from typing import Any

from common.expr.literals import parse_int, unquote

MIN_ITEMS = 16
_MIN_TEXT = 2 * MIN_ITEMS + 1  # shorter text cannot hold a long list; skip the scan
PREFIX = "__quiver_list_"

_STRING = r"""[rR]?(?:"[^"\\\r\n]*(?:\\[^\r\n][^"\\\r\n]*)*"|'[^'\\\r\n]*(?:\\[^\r\n][^'\\\r\n]*)*')"""
_NUMBER = (
    r"[+-]?(?:0[xX][0-9a-fA-F]+|0[bB][01]+|(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?"
    r"|\d+[eE][+-]?\d+|0[oO]?[0-7]+|[1-9]\d*|0)(?![\w.])"
)
_ITEM = f"(?:{_STRING}|{_NUMBER})"
_LIST = re.compile(rf"\[\s*{_ITEM}(?:\s*,\s*{_ITEM}){{{MIN_ITEMS - 1},}}\s*,?\s*\]")
_SCAN = re.compile(rf"(?P<string>{_STRING})|(?P<list>\[(?:[^\[\]\"']+|{_STRING})*\])")
_ITEMS = re.compile(f"(?P<string>{_STRING})|(?P<number>{_NUMBER})")
_DECIMALS = re.compile(r"\[[\s\d,+-]*\]")
_LEADING_ZERO = re.compile(r"(?<!\d)0\d")
_PLAIN_STR = r"""(?:"[^"\\\r\n]*"|'[^'\\\r\n]*')"""
_PLAIN_STRINGS = re.compile(rf"\[\s*(?:{_PLAIN_STR}\s*,\s*)*{_PLAIN_STR}\s*,?\s*\]")
_PLAIN_ITEM = re.compile(r""""([^"]*)"|'([^']*)'""")


def cut_lists(text: str) -> tuple[str, dict[str, tuple[Any, ...]]]:
    """``text`` with long literal lists replaced by ``{__quiver_list_N}`` placeholders, and
    the placeholder values. Returns ``text`` unchanged when there is nothing to cut."""
    if len(text) < _MIN_TEXT or "[" not in text:
        return text, {}
    pieces: list[str] = []
    values: dict[str, tuple[Any, ...]] = {}
    last = 0
    for match in _SCAN.finditer(text):
        if match.lastgroup != "list" or match.group().count(",") < MIN_ITEMS - 1:
            continue
        items = _items(match.group())
        if items is None:
            continue
        name = f"{PREFIX}{len(values)}"
        values[name] = items
        pieces.append(text[last : match.start()])
        pieces.append("{" + name + "}")
        last = match.end()
    if not values:
        return text, {}
    pieces.append(text[last:])
    return "".join(pieces), values


def _items(body: str) -> tuple[Any, ...] | None:
    """The values of a bracketed list of literals, or None if it holds anything else."""
    if _DECIMALS.fullmatch(body) and not _LEADING_ZERO.search(body):
        try:  # plain decimal integers, the common case
            return tuple(int(p) for p in body[1:-1].split(",") if p.strip())
        except ValueError:
            return None
    if _PLAIN_STRINGS.fullmatch(body):  # quoted strings without escapes
        return tuple(d or s for d, s in _PLAIN_ITEM.findall(body))
    if not _LIST.fullmatch(body):
        return None
    out: list[Any] = []
    for match in _ITEMS.finditer(body):
        token = match.group()
        if match.lastgroup == "string":
            out.append(unquote(token))
            continue
        sign = -1 if token[0] == "-" else 1
        digits = token.lstrip("+-")
        if digits[:2] in ("0x", "0X") or not any(c in digits for c in ".eE"):
            out.append(sign * parse_int(digits))
        else:
            out.append(sign * float(digits))
    return tuple(out)
