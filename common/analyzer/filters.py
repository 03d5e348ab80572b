"""Milvus's token filters, by name (``"lowercase"``) or by ``{"type": ..., params}``.

Each follows the tantivy filter Milvus uses, including its quirks:

- ``lowercase`` lowers character by character (no final-sigma rule, unlike ``str.lower``);
- ``length`` keeps tokens of at most ``max`` UTF-8 *bytes*;
- ``alphanumonly`` keeps tokens made only of ASCII letters and digits; ``cncharonly`` keeps tokens
  holding at least one Han character, ``cnalphanumonly`` at least one Han or ASCII alphanumeric;
  ``removepunct`` drops a token holding any punctuation or whitespace character;
- ``stop`` removes exact matches (case-sensitive), ``"_english_"``-style entries naming a list;
- ``decompounder`` splits a token only when the dictionary covers all of it, greedily taking the
  longest word at each point; the parts keep the token's offsets and position;
- ``stemmer`` is Snowball (PyPI ``snowballstemmer``; Milvus uses rust-stemmers built from
  Snowball 3.0) on the token as it is - lowercase it first;
- ``regex`` keeps tokens in which ``expr`` matches anywhere.

Errors carry Milvus's wording (its typos included: "lenth", "unsupport").
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from common.analyzer import charsets
from common.analyzer._ascii_folding import FOLDINGS
from common.analyzer._stop_words import LANGUAGE_LISTS
from common.analyzer.charsets import parse_ranges
from common.analyzer.errors import internal_error, invalid_argument
from common.analyzer.pipeline import Filter, Item, KeepFilter, MapFilter, SplitFilter

_U64_MAX = 2**64 - 1


def _lower(text: str) -> str:
    # tantivy lowercases char by char: a capital sigma always becomes "σ", never the final "ς".
    return text.lower() if "Σ" not in text else text.replace("Σ", "σ").lower()


def _fold_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for replacement, spec in FOLDINGS:
        for lo, hi in parse_ranges(spec):
            for cp in range(lo, hi + 1):
                table[cp] = replacement
    return table


_FOLD = _fold_table()


def _fold(text: str) -> str:
    return text if text.isascii() else text.translate(_FOLD)


def _ascii_alnum_only(text: str) -> bool:
    return text.isascii() and (text.isalnum() or not text)


def _no_punct(text: str) -> bool:
    return charsets.pick(text, charsets.HAS_PUNCT_OR_SPACE).search(text) is None


def _has_han(text: str) -> bool:
    return not text.isascii() and charsets.HAS_HAN.search(text) is not None


def _has_han_or_ascii_alnum(text: str) -> bool:
    if text.isascii():
        return charsets.ASCII_ALNUM.search(text) is not None
    return charsets.HAS_HAN_OR_ASCII_ALNUM.search(text) is not None


class StopFilter(Filter):
    """Removes the tokens that are stop words."""

    def __init__(self, words: frozenset[str]) -> None:
        self.words = words

    def apply(self, texts: list[str]) -> list[str]:
        words = self.words
        return [t for t in texts if t not in words]

    def apply_items(self, items: list[Item]) -> list[Item]:
        words = self.words
        return [t for t in items if t[0] not in words]


class _MaxBytes:
    """The ``length`` filter's test: at most ``limit`` UTF-8 bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __call__(self, text: str) -> bool:
        if len(text) * 4 <= self.limit:
            return True
        return (len(text) if text.isascii() else len(text.encode("utf-8"))) <= self.limit


class _Decompound:
    """tantivy ``SplitCompoundWords`` (Aho-Corasick, leftmost-longest): the parts, or None."""

    def __init__(self, words: Sequence[str]) -> None:
        self.words = frozenset(w for w in words if w)
        self.longest = max((len(w) for w in self.words), default=0)

    def __call__(self, text: str) -> list[str] | None:
        words, n = self.words, len(text)
        parts = []
        pos = 0
        while pos < n:
            for size in range(min(self.longest, n - pos), 0, -1):
                if text[pos:pos + size] in words:
                    parts.append(text[pos:pos + size])
                    pos += size
                    break
            else:
                return None
        return parts if parts else None


_STEMMER_LANGUAGES = {
    "arabic": "arabic", "arabig": "arabic", "danish": "danish", "dutch": "dutch", "english": "english",
    "finnish": "finnish", "french": "french", "german": "german", "greek": "greek", "hungarian": "hungarian",
    "italian": "italian", "norwegian": "norwegian", "portuguese": "portuguese", "romanian": "romanian",
    "russian": "russian", "spanish": "spanish", "swedish": "swedish", "tamil": "tamil", "turkish": "turkish",
}


class Stemmer:
    """One Snowball algorithm: a stemmer per thread (they keep state) and a shared memo of results."""

    _MEMO_LIMIT = 200_000

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self._local = threading.local()
        self.memo: dict[str, str] = {}

    def __call__(self, word: str) -> str:
        out = self.memo.get(word)
        return self.stem(word) if out is None else out

    def stem(self, word: str) -> str:
        stemmer = getattr(self._local, "stemmer", None)
        if stemmer is None:
            import snowballstemmer

            stemmer = self._local.stemmer = snowballstemmer.stemmer(self.algorithm)
        out: str = stemmer.stemWord(word)
        if len(self.memo) >= self._MEMO_LIMIT:
            self.memo.clear()
        self.memo[word] = out
        return out


class StemFilter(MapFilter):
    """The ``stemmer`` filter; the hot path reads the memo without a call per token."""

    def __init__(self, stemmer: Stemmer) -> None:
        super().__init__(stemmer)
        self.stemmer = stemmer

    def apply(self, texts: list[str]) -> list[str]:
        get = self.stemmer.memo.get
        out = [get(t) for t in texts]
        if None in out:
            stem = self.stemmer.stem
            return [stem(t) if s is None else s for t, s in zip(texts, out, strict=True)]
        return out  # type: ignore[return-value]


_STEMMERS: dict[str, Stemmer] = {}
_STEMMERS_LOCK = threading.Lock()


def stemmer(algorithm: str) -> Stemmer:
    with _STEMMERS_LOCK:
        if algorithm not in _STEMMERS:
            _STEMMERS[algorithm] = Stemmer(algorithm)
        return _STEMMERS[algorithm]


LOWERCASE = MapFilter(_lower, lowercase=True)
ENGLISH_STEMMER = StemFilter(stemmer("english"))

_NAMED: dict[str, Filter] = {
    "lowercase": LOWERCASE,
    "asciifolding": MapFilter(_fold),
    "alphanumonly": KeepFilter(_ascii_alnum_only),
    "cncharonly": KeepFilter(_has_han),
    "cnalphanumonly": KeepFilter(_has_han_or_ascii_alnum),
    "removepunct": KeepFilter(_no_punct),
}
CN_ALPHANUM_ONLY = _NAMED["cnalphanumonly"]


def string_list(value: Any, label: str) -> list[str]:
    """Milvus ``get_string_list``: an array of strings."""
    if not isinstance(value, list):
        raise internal_error(f"{label} should be array")
    if not all(isinstance(v, str) for v in value):
        raise internal_error(f"{label} list item should be string")
    return value


def stop_words(words: Sequence[str]) -> frozenset[str]:
    """Milvus ``get_stop_words_list``: ``"_english_"`` etc. stand for their list, other words for themselves."""
    out: set[str] = set()
    for word in words:
        listed = LANGUAGE_LISTS.get(word) if word.startswith("_") else None
        if listed is not None:
            out.update(listed.split(" "))
        else:
            out.add(word)
    return frozenset(out)


def named_filter(name: str) -> Filter:
    """A filter given by name in the ``filter`` list."""
    found = _NAMED.get(name)
    if found is None:
        raise internal_error(f"build analyzer failed, filter not found :{name}")
    return found


def _length(params: Mapping[str, Any]) -> Filter:
    limit = params.get("max")
    if type(limit) is not int or not 0 <= limit <= _U64_MAX:
        raise internal_error("lenth max param was none or not uint")
    return KeepFilter(_MaxBytes(limit))


def _stop(params: Mapping[str, Any]) -> Filter:
    if "stop_words" not in params:
        raise internal_error("stop filter stop_words can't be empty")
    return StopFilter(stop_words(string_list(params["stop_words"], "stop_words filter")))


def _decompounder(params: Mapping[str, Any]) -> Filter:
    words = params.get("word_list")
    if not isinstance(words, list):
        raise internal_error("decompounder word list should be array")
    if not all(isinstance(w, str) for w in words):
        raise internal_error("decompounder word list item should be string")
    return SplitFilter(_Decompound(words))


def _stemmer(params: Mapping[str, Any]) -> Filter:
    language = params.get("language")
    if not isinstance(language, str):
        raise internal_error("stemmer language field should be string")
    algorithm = _STEMMER_LANGUAGES.get(language.lower())
    if algorithm is None:
        raise internal_error(f"create stemmer failed : InternalError: unsupport language: {language.lower()}")
    return StemFilter(stemmer(algorithm))


def compile_expr(expr: str) -> re.Pattern[str]:
    """A regex filter's ``expr``; the ``regex`` package, when installed, covers ``\\p{..}`` classes."""
    try:
        return re.compile(expr)
    except re.error as err:
        try:
            import regex  # type: ignore[import-untyped]

            return regex.compile(expr)  # type: ignore[no-any-return]
        except ImportError:
            pass
        except Exception:  # noqa: BLE001 - regex's own error type
            pass
        raise invalid_argument(f"regex expression invalid, expr:{expr}, err: {err}") from None


def _regex(params: Mapping[str, Any]) -> Filter:
    if "expr" not in params:
        raise internal_error("must set expr for regex filter")
    expr = params["expr"]
    if not isinstance(expr, str):
        raise internal_error("expr must be string")
    return KeepFilter(compile_expr(expr).search)


_TYPED = {"length": _length, "stop": _stop, "decompounder": _decompounder, "stemmer": _stemmer, "regex": _regex}


def typed_filter(params: Mapping[str, Any]) -> Filter:
    """A filter given as ``{"type": ..., params}`` in the ``filter`` list."""
    if "type" not in params:
        raise internal_error("no type field in filter params")
    kind = params["type"]
    if not isinstance(kind, str):
        raise internal_error("filter type should be string")
    build = _TYPED.get(kind)
    if build is None:
        raise internal_error(f"unsupport filter type: {kind}")
    return build(params)


def filter_list(value: Any) -> list[Filter]:
    """The analyzer's ``filter`` option: names and typed dicts; other items are ignored, as in Milvus."""
    if not isinstance(value, list):
        raise internal_error("filter params should be array")
    out = []
    for item in value:
        if isinstance(item, str):
            out.append(named_filter(item))
        elif isinstance(item, dict):
            out.append(typed_filter(item))
    return out

