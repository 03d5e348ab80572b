"""An analyzer as Milvus runs one: a tokenizer, then each filter in turn over its tokens.

Two paths share every stage. ``tokens()`` moves plain strings through the pipeline (BM25 and
text_match call it per row, so it avoids building objects); ``analyze()`` moves tuples with the
offsets and positions ``RunAnalyzer`` reports and makes them :class:`Token` records at the end.
As in tantivy, a filter that drops a token leaves a gap in the positions, and one that rewrites or
splits a token keeps its offsets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Token:
    """One token as Milvus's ``RunAnalyzer`` details it: offsets are UTF-8 byte offsets into the
    text; ``position``/``position_length`` are the tokenizer's (token index for ``standard``,
    character index and width for ``jieba`` and ``icu``)."""

    text: str
    start_offset: int
    end_offset: int
    position: int
    position_length: int = 1


# A token on its way through the pipeline: (text, start_offset, end_offset, position, position_length).
Item = tuple[str, int, int, int, int]


class Tokenizer:
    """Splits a text into tokens; subclasses implement both paths. ``case_blind``: on ASCII text
    the split does not depend on letter case, so lowercasing may run before it."""

    case_blind = False

    def texts(self, text: str) -> list[str]:
        raise NotImplementedError

    def items(self, text: str) -> list[Item]:
        raise NotImplementedError


class Filter:
    """One filter stage; subclasses implement both paths."""

    def apply(self, texts: list[str]) -> list[str]:
        raise NotImplementedError

    def apply_items(self, items: list[Item]) -> list[Item]:
        raise NotImplementedError


class MapFilter(Filter):
    """Rewrites every token's text (lowercase, asciifolding, stemmer). ``lowercase``: the filter
    lowercases ASCII text as ``str.lower`` does."""

    def __init__(self, fn: Callable[[str], str], lowercase: bool = False) -> None:
        self.fn = fn
        self.lowercase = lowercase

    def apply(self, texts: list[str]) -> list[str]:
        return list(map(self.fn, texts))

    def apply_items(self, items: list[Item]) -> list[Item]:
        fn = self.fn
        return [(fn(t[0]), t[1], t[2], t[3], t[4]) for t in items]


class KeepFilter(Filter):
    """Keeps the tokens whose text passes a predicate (stop, length, regex, ...only filters)."""

    def __init__(self, keep: Callable[[str], object]) -> None:
        self.keep = keep

    def apply(self, texts: list[str]) -> list[str]:
        return list(filter(self.keep, texts))

    def apply_items(self, items: list[Item]) -> list[Item]:
        keep = self.keep
        return [t for t in items if keep(t[0])]


class SplitFilter(Filter):
    """Replaces a token by the parts a function returns (None: keep it whole) - decompounder."""

    def __init__(self, split: Callable[[str], Sequence[str] | None]) -> None:
        self.split = split

    def apply(self, texts: list[str]) -> list[str]:
        split = self.split
        out: list[str] = []
        for text in texts:
            parts = split(text)
            if parts is None:
                out.append(text)
            else:
                out.extend(parts)
        return out

    def apply_items(self, items: list[Item]) -> list[Item]:
        split = self.split
        out: list[Item] = []
        for item in items:
            parts = split(item[0])
            if parts is None:
                out.append(item)
            else:
                out.extend((p, item[1], item[2], item[3], item[4]) for p in parts)
        return out


class Analyzer:
    """A built analyzer: immutable, safe to share between threads, cheap to call."""

    __slots__ = ("_after_lower", "_filters", "_lower_first", "_tokenizer", "params")

    def __init__(self, tokenizer: Tokenizer, filters: Sequence[Filter] = (), params: str = "") -> None:
        self._tokenizer = tokenizer
        self._filters = tuple(filters)
        self.params = params  # the analyzer_params JSON text it was built from ("" for the default)
        # standard/whitespace then lowercase: an ASCII text is lowercased whole, before the split.
        first = self._filters[0] if self._filters else None
        self._lower_first = tokenizer.case_blind and isinstance(first, MapFilter) and first.lowercase
        self._after_lower = self._filters[1:]

    def tokens(self, text: str) -> list[str]:
        """The token texts, in order (what BM25 hashes and text_match looks up)."""
        if self._lower_first and text.isascii():
            out = self._tokenizer.texts(text.lower())
            stages = self._after_lower
        else:
            out = self._tokenizer.texts(text)
            stages = self._filters
        for f in stages:
            if not out:
                break
            out = f.apply(out)
        return out

    def analyze(self, text: str) -> list[Token]:
        """The tokens with offsets and positions (RunAnalyzer ``with_detail``, phrase_match)."""
        out = self._tokenizer.items(text)
        for f in self._filters:
            if not out:
                break
            out = f.apply_items(out)
        return [Token(*item) for item in out]

    def __repr__(self) -> str:
        return f"Analyzer({self.params or 'default'})"


def byte_offsets(text: str, char_offsets: Sequence[int]) -> list[int]:
    """The UTF-8 byte offsets of increasing character offsets into ``text``."""
    if text.isascii():
        return list(char_offsets)
    out = []
    last_char = last_byte = 0
    for off in char_offsets:
        if off < last_char:  # not increasing: count from the start
            last_char = last_byte = 0
        last_byte += len(text[last_char:off].encode("utf-8"))
        last_char = off
        out.append(last_byte)
    return out
