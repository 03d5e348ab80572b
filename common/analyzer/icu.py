"""Milvus's ``icu`` tokenizer, approximated: Unicode word segmentation (UAX #29) in pure Python.

Milvus runs ICU4X's ``WordSegmenter`` (auto mode) and emits *every* segment between two word
boundaries as a token - words, but also each space run, punctuation mark and emoji - with the
segment's character offset as its position and its character count as its width. ICU4X follows
UAX #29 and, for scripts written without spaces, uses its own models: a dictionary for Chinese and
Japanese, an LSTM for Thai, Lao, Khmer and Myanmar. Quiver implements the UAX #29 rules (WB1-WB999)
with Word_Break classes derived from Python's ``unicodedata``, segments runs of Han characters with
jieba's dictionary (exact mode, no HMM) instead of ICU's, keeps each run of a Southeast Asian script
as one word and leaves Hiragana to the UAX #29 default (one character each). Text in space-separated
scripts tokenizes as ICU does; CJK and Southeast Asian text tokenizes consistently but not
identically to Milvus.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from common.analyzer import charsets
from common.analyzer.pipeline import Item, Tokenizer, byte_offsets

(OTHER, CR, LF, NEWLINE, EXTEND, ZWJ, REGIONAL, FORMAT, KATAKANA, HEBREW, ALETTER, SINGLE_QUOTE,
 DOUBLE_QUOTE, MID_NUM_LET, MID_LETTER, MID_NUM, NUMERIC, EXTEND_NUM_LET, WSEG_SPACE, IDEOGRAPH,
 COMPLEX) = range(21)

_IGNORED = frozenset((EXTEND, FORMAT, ZWJ))
_AHLETTER = frozenset((ALETTER, HEBREW))
_MID_LETTER_Q = frozenset((MID_LETTER, MID_NUM_LET, SINGLE_QUOTE))
_MID_NUM_Q = frozenset((MID_NUM, MID_NUM_LET, SINGLE_QUOTE))
_NUMLET_LEFT = frozenset((ALETTER, HEBREW, NUMERIC, KATAKANA, EXTEND_NUM_LET))
_NUMLET_RIGHT = frozenset((ALETTER, HEBREW, NUMERIC, KATAKANA))

_FIXED = {
    "\r": CR, "\n": LF, "\x0b": NEWLINE, "\x0c": NEWLINE, "\x85": NEWLINE, "\u2028": NEWLINE, "\u2029": NEWLINE,
    "\u200d": ZWJ, "'": SINGLE_QUOTE, '"': DOUBLE_QUOTE, "\u200c": EXTEND,
    **dict.fromkeys(":\u00b7\u0387\u055f\u05f4\u2027\ufe13\ufe55\uff1a", MID_LETTER),
    **dict.fromkeys(",;\u037e\u0589\u060c\u060d\u066c\u07f8\u2044\ufe10\ufe14\ufe50\ufe54\uff0c\uff1b", MID_NUM),
    **dict.fromkeys(".\u2018\u2019\u2024\ufe52\uff07\uff0e", MID_NUM_LET),
    **dict.fromkeys("_\u202f\u203f\u2040\u2054\ufe33\ufe34\ufe4d\ufe4e\ufe4f\uff3f", EXTEND_NUM_LET),
}
# Scripts ICU segments with a model instead of UAX #29: Thai, Lao, Myanmar, Khmer, Tai Tham/Viet.
_COMPLEX = ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x19E0, 0x19FF), (0x1A20, 0x1AAF),
            (0xAA60, 0xAADF), (0xA9E0, 0xA9FF))
_KATAKANA = ((0x30A0, 0x30FF), (0x31F0, 0x31FF), (0x32D0, 0x32FE), (0x3300, 0x3357), (0xFF66, 0xFF9D),
             (0x3031, 0x3035), (0x309B, 0x309C), (0x1B000, 0x1B000), (0x1AFF0, 0x1B122))


def _in(cp: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= cp <= hi for lo, hi in ranges)


@lru_cache(maxsize=65536)
def word_break(ch: str) -> int:
    """The Word_Break class of a character (approximated from its general category and block)."""
    fixed = _FIXED.get(ch)
    if fixed is not None:
        return fixed
    cp = ord(ch)
    cat = unicodedata.category(ch)
    if 0x1F1E6 <= cp <= 0x1F1FF:
        return REGIONAL
    if cat in ("Mn", "Me", "Mc") or 0x1F3FB <= cp <= 0x1F3FF:
        return EXTEND
    if cat == "Cf":
        return FORMAT
    if cat == "Zs" and ch not in "\u00a0\u2007\u202f":
        return WSEG_SPACE
    if charsets.HAS_HAN.match(ch):
        return IDEOGRAPH
    if _in(cp, _COMPLEX):
        return COMPLEX if cat[0] in "LM" else OTHER
    if _in(cp, _KATAKANA):
        return KATAKANA
    if 0x3040 <= cp <= 0x309F:  # Hiragana
        return OTHER
    if 0x05D0 <= cp <= 0x05F2 or 0xFB1D <= cp <= 0xFB4F:
        return HEBREW if cat[0] == "L" else OTHER
    if cat == "Nd" and not 0xFF10 <= cp <= 0xFF19:
        return NUMERIC
    if cat[0] == "L" or cat == "Nl" or charsets.ALPHA_CHAR.match(ch):
        return ALETTER
    return OTHER


def _extended_pictographic(ch: str) -> bool:
    cp = ord(ch)
    return (0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF or 0x2300 <= cp <= 0x23FF
            or ch in "\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194\u2195\u2196\u2197\u2198\u2199\u21a9\u21aa")


def _boundaries(text: str, cls: list[int]) -> list[int]:
    """Character indices of the UAX #29 word boundaries of ``text`` (0 and len included)."""
    n = len(cls)
    out = [0]

    def prev_index(i: int) -> int:  # last non-ignored class index before i (WB4)
        j = i - 1
        while j > 0 and cls[j] in _IGNORED:
            j -= 1
        return j

    def next_index(i: int) -> int:  # first non-ignored class index after i
        j = i + 1
        while j < n and cls[j] in _IGNORED:
            j += 1
        return j

    for i in range(1, n):
        a, b = cls[i - 1], cls[i]
        if a == CR and b == LF:
            continue
        if a in (CR, LF, NEWLINE) or b in (CR, LF, NEWLINE):
            out.append(i)
            continue
        if a == ZWJ and _extended_pictographic(text[i]):
            continue
        if a == WSEG_SPACE and b == WSEG_SPACE:
            continue
        if b in _IGNORED:
            continue
        p = prev_index(i)
        a = cls[p]
        if a in (CR, LF, NEWLINE):
            out.append(i)
            continue
        q = next_index(i)
        c = cls[q] if q < n else -1
        pp = prev_index(p) if p > 0 else -1
        z = cls[pp] if pp >= 0 and pp != p else -1
        if a in _AHLETTER and b in _AHLETTER:
            continue
        if a in _AHLETTER and b in _MID_LETTER_Q and c in _AHLETTER:
            continue
        if z in _AHLETTER and a in _MID_LETTER_Q and b in _AHLETTER:
            continue
        if a == HEBREW and b == SINGLE_QUOTE:
            continue
        if a == HEBREW and b == DOUBLE_QUOTE and c == HEBREW:
            continue
        if z == HEBREW and a == DOUBLE_QUOTE and b == HEBREW:
            continue
        if (a == NUMERIC and b == NUMERIC) or (a in _AHLETTER and b == NUMERIC) or (a == NUMERIC and b in _AHLETTER):
            continue
        if z == NUMERIC and a in _MID_NUM_Q and b == NUMERIC:
            continue
        if a == NUMERIC and b in _MID_NUM_Q and c == NUMERIC:
            continue
        if a == KATAKANA and b == KATAKANA:
            continue
        if (a in _NUMLET_LEFT and b == EXTEND_NUM_LET) or (a == EXTEND_NUM_LET and b in _NUMLET_RIGHT):
            continue
        if a == COMPLEX and b == COMPLEX:
            continue
        if a == REGIONAL and b == REGIONAL:
            run = 0
            j = p
            while j >= 0 and cls[j] in (REGIONAL, *_IGNORED):
                run += cls[j] == REGIONAL
                j -= 1
            if run % 2:
                continue
        out.append(i)
    if n:
        out.append(n)
    return out


class IcuTokenizer(Tokenizer):
    """Every UAX #29 segment is a token; Han runs are split into jieba dictionary words."""

    def _segments(self, text: str) -> list[tuple[int, int]]:
        if not text:
            return []
        cls = [word_break(ch) for ch in text]
        cuts = _boundaries(text, cls)
        spans = []
        run_start = -1
        for s, e in zip(cuts, cuts[1:], strict=False):
            if e - s == 1 and cls[s] == IDEOGRAPH:
                if run_start < 0:
                    run_start = s
                continue
            if run_start >= 0:
                spans.extend(_han_words(text, run_start, s))
                run_start = -1
            spans.append((s, e))
        if run_start >= 0:
            spans.extend(_han_words(text, run_start, len(text)))
        return spans

    def texts(self, text: str) -> list[str]:
        return [text[s:e] for s, e in self._segments(text)]

    def items(self, text: str) -> list[Item]:
        spans = self._segments(text)
        offsets = byte_offsets(text, [off for span in spans for off in span])
        return [(text[s:e], offsets[2 * i], offsets[2 * i + 1], s, e - s) for i, (s, e) in enumerate(spans)]


def _han_words(text: str, start: int, end: int) -> list[tuple[int, int]]:
    from common.analyzer.jieba_tokenizer import EXACT_NO_HMM

    out = []
    pos = start
    for word in EXACT_NO_HMM.texts(text[start:end]):
        out.append((pos, pos + len(word)))
        pos += len(word)
    return out


ICU = IcuTokenizer()
