"""The character classes Milvus's Rust analyzers split and filter on, as compiled ``re`` patterns.

Python's ``re`` has no ``\\p{...}`` classes and its ``str.isalnum``/``\\s`` differ from Rust's
``char::is_alphanumeric``/``White_Space`` on marks and control characters, so each class is built
once, at import, from the Unicode 16.0 ranges of :mod:`common.analyzer._unicode_data`.
"""

from __future__ import annotations

import re

from common.analyzer import _unicode_data as data


def parse_ranges(spec: str) -> list[tuple[int, int]]:
    """``"41-5A 61"`` -> ``[(0x41, 0x5A), (0x61, 0x61)]``."""
    out: list[tuple[int, int]] = []
    for part in spec.split():
        first, _, last = part.partition("-")
        lo = int(first, 16)
        out.append((lo, int(last, 16) if last else lo))
    return out


def class_body(spec: str, lo_limit: int = 0, hi_limit: int = 0x10FFFF) -> str:
    """The inside of a ``[...]`` character class matching the ranges of ``spec`` within the limits."""
    items = []
    for lo, hi in parse_ranges(spec):
        lo, hi = max(lo, lo_limit), min(hi, hi_limit)
        if lo <= hi:
            items.append(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}")
    return "".join(items)


class CharClass:
    """A large character class, compiled three ways because ``re`` tests a class holding astral
    ranges by scanning those ranges one by one: ASCII texts and BMP-only texts use classes without
    them, and only texts with astral characters pay for the full test."""

    ASTRAL = "\\U00010000-\\U0010ffff"

    def __init__(self, spec: str, ascii_body: str) -> None:
        self.body = class_body(spec)
        self.bmp = class_body(spec, hi_limit=0xFFFF)
        self.astral = class_body(spec, lo_limit=0x10000)
        self.ascii = ascii_body

    def runs(self) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
        """Patterns of maximal runs of class characters, for ASCII, BMP and any texts."""
        return (re.compile(f"[{self.ascii}]+"), re.compile(f"[{self.bmp}]+"),
                re.compile(f"(?:[{self.bmp}]|(?=[{self.ASTRAL}])[{self.astral}])+"))


def pick(text: str, patterns: tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]) -> re.Pattern[str]:
    """The cheapest of a (ASCII, BMP, any) pattern triple that is exact for ``text``."""
    if text.isascii():
        return patterns[0]
    return patterns[1] if max(text) <= "\uffff" else patterns[2]


_ALNUM = CharClass(data.ALNUM, "A-Za-z0-9")
ALNUM = _ALNUM.body
ALPHA = class_body(data.ALPHA)
WHITE_SPACE = class_body(data.WHITE_SPACE)
PUNCT = class_body(data.PUNCT)
SYMBOL = class_body(data.SYMBOL)
HAN = class_body(data.HAN)

# tantivy's SimpleTokenizer: maximal runs of char::is_alphanumeric.
ALNUM_RUNS = _ALNUM.runs()
# tantivy's WhitespaceTokenizer: maximal runs of anything but char::is_ascii_whitespace.
NON_ASCII_SPACE_RUN = re.compile("[^ \t\n\x0c\r]+")
# The regex crate's \p{Han} (cncharonly) and [\p{Han}a-zA-Z0-9] (cnalphanumonly), found anywhere.
HAS_HAN = re.compile(f"[{HAN}]")
HAS_HAN_OR_ASCII_ALNUM = re.compile(f"[{HAN}a-zA-Z0-9]")
ASCII_ALNUM = re.compile("[a-zA-Z0-9]")
# removepunct drops a token holding any [\p{Punct}\s]: ASCII, BMP and full classes.
_PUNCT_OR_SPACE = CharClass(data.PUNCT + " " + data.WHITE_SPACE, "!-#%-*,-/:;?@\\[-\\]_{}\\t-\\r ")
HAS_PUNCT_OR_SPACE = (re.compile(f"[{_PUNCT_OR_SPACE.ascii}]"), re.compile(f"[{_PUNCT_OR_SPACE.bmp}]"),
                      re.compile(f"[{_PUNCT_OR_SPACE.body}]"))
# One character of the Alphabetic property (icu's word-break classes).
ALPHA_CHAR = re.compile(f"[{ALPHA}]")
