"""SQL ``LIKE`` patterns as vectorised string matchers.

Milvus: ``%`` matches any run of characters, ``_`` exactly one, a backslash escapes the next
``%``, ``_`` or backslash; the whole string must match. Patterns that reduce to equality,
prefix, suffix or infix run as numpy string ufuncs; anything else compiles to a regular
expression applied per row.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.dtypes import StringDType


@dataclass(frozen=True)
class Pattern:
    """A parsed pattern: literal pieces separated by wildcards ("%" or "_")."""

    tokens: tuple[str, ...]  # each is "%", "_" or a literal run

    @property
    def literal_only(self) -> bool:
        return all(t not in ("%", "_") for t in self.tokens)


def parse(pattern: str) -> Pattern:
    tokens: list[str] = []
    literal: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_\\":
            literal.append(pattern[i + 1])
            i += 2
            continue
        if ch in "%_":
            if literal:
                tokens.append("".join(literal))
                literal = []
            if not (ch == "%" and tokens and tokens[-1] == "%"):
                tokens.append(ch)
        else:
            literal.append(ch)
        i += 1
    if literal:
        tokens.append("".join(literal))
    return Pattern(tuple(tokens))


def matcher(pattern: str) -> Callable[[np.ndarray], np.ndarray]:
    """A function from an array of strings to the bool mask of strings matching ``pattern``."""
    toks = parse(pattern).tokens
    body = [t for t in toks if t != "%"]
    wild = [t for t in toks if t == "_"]
    if not wild and len(body) <= 1:
        text = body[0] if body else ""
        lead, trail = bool(toks) and toks[0] == "%", bool(toks) and toks[-1] == "%"
        if not toks:
            return lambda s: _strings(s) == ""
        if toks == ("%",):
            return lambda s: np.ones(len(s), dtype=bool)
        if lead and trail:
            return lambda s: np.strings.find(_strings(s), text) >= 0
        if trail:
            return lambda s: np.strings.startswith(_strings(s), text)
        if lead:
            return lambda s: np.strings.endswith(_strings(s), text)
        return lambda s: _strings(s) == text
    source = "".join(".*" if t == "%" else "." if t == "_" else re.escape(t) for t in toks)
    regex = re.compile(source, re.DOTALL)
    full = regex.fullmatch
    return lambda s: np.fromiter((full(v) is not None for v in s), dtype=bool, count=len(s))


def _strings(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "UT":
        return values
    return values.astype(StringDType())
