"""The regular-expression tokenizers of Milvus: ``standard``, ``whitespace`` and ``char_group``.

- ``standard`` is tantivy's ``SimpleTokenizer``: a token is a maximal run of characters for which
  Rust's ``char::is_alphanumeric`` holds (Alphabetic, or a Nd/Nl/No number), so every other
  character (spaces, punctuation, symbols, emoji, marks that are not Alphabetic) splits, and a CJK
  run stays one token.
- ``whitespace`` is tantivy's ``WhitespaceTokenizer``: splits on the five ASCII whitespace
  characters only (space, tab, LF, FF, CR).
- ``char_group`` (Milvus 2.6) splits on the listed characters and named character groups.

All three number tokens 0, 1, 2, ... and report UTF-8 byte offsets, as tantivy does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from common.analyzer import charsets
from common.analyzer.errors import invalid_argument
from common.analyzer.pipeline import Item, Tokenizer, byte_offsets


class RegexTokenizer(Tokenizer):
    """Tokens are the non-overlapping matches of one pattern (or of the cheapest exact one of an
    (ASCII, BMP, any) triple, see :class:`common.analyzer.charsets.CharClass`)."""

    def __init__(self, pattern: re.Pattern[str] | tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]) -> None:
        self.patterns = pattern if isinstance(pattern, tuple) else (pattern, pattern, pattern)
        self.single = not isinstance(pattern, tuple)

    def _pattern(self, text: str) -> re.Pattern[str]:
        return self.patterns[0] if self.single else charsets.pick(text, self.patterns)

    def texts(self, text: str) -> list[str]:
        return self._pattern(text).findall(text)

    def items(self, text: str) -> list[Item]:
        spans = [m.span() for m in self._pattern(text).finditer(text)]
        offsets = byte_offsets(text, [off for span in spans for off in span])
        return [(text[s:e], offsets[2 * i], offsets[2 * i + 1], i, 1) for i, (s, e) in enumerate(spans)]


STANDARD = RegexTokenizer(charsets.ALNUM_RUNS)
WHITESPACE = RegexTokenizer(charsets.NON_ASCII_SPACE_RUN)
STANDARD.case_blind = WHITESPACE.case_blind = True

# Milvus's named char groups: the class of characters each one stands for.
_CHAR_GROUPS = {
    "whitespace": charsets.WHITE_SPACE,  # char::is_whitespace
    "letter": charsets.ALPHA,  # char::is_alphabetic
    "digit": "0-9",  # char::is_digit(10)
    "punctuation": charsets.PUNCT,
    "symbol": charsets.SYMBOL,
    "ascii_whitespace": " \\t\\n\\x0c\\r",
    "ascii_letter": "A-Za-z",
    "ascii_digit": "0-9",
    "ascii_punctuation": "\\x21-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7e",
}


def char_group(params: Mapping[str, Any]) -> RegexTokenizer:
    """``{"type": "char_group", "delimiters": [...]}``: each item one character or a group name."""
    if "delimiters" not in params:
        raise invalid_argument("char group tokenizer delimiters can't be empty")
    items = params["delimiters"]
    if not isinstance(items, list):
        raise invalid_argument("char group tokenizer delimiters must be a vector")
    body = []
    for item in items:
        if not isinstance(item, str):
            raise invalid_argument("char group tokenizer delimiter in delimiters must be string")
        if len(item) == 1:
            body.append(f"\\U{ord(item):08x}")
        elif item in _CHAR_GROUPS:
            body.append(_CHAR_GROUPS[item])
        else:
            raise invalid_argument(f"{item} not a char or name of build-in char group")
    if not body:
        return RegexTokenizer(re.compile(".+", re.DOTALL))
    return RegexTokenizer(re.compile(f"[^{''.join(body)}]+"))
