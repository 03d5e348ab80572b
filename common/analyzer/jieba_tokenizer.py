"""Milvus's ``jieba`` tokenizer: jieba-rs 0.6.8's segmentation, rebuilt on PyPI jieba's data.

Milvus segments Chinese with the Rust crate jieba-rs (``Jieba::new()``: the same ``dict.txt`` that
PyPI jieba ships, and the same HMM model rounded to six decimals) and emits its ``tokenize`` output
(mode ``search`` with HMM by default). PyPI jieba's own ``cut`` differs in small ways (the CJK
ranges it treats as Chinese, what ``\\s`` is, an unescaped ``.`` in jieba-rs's HMM pattern, the
unrounded HMM), so this module re-implements jieba-rs's algorithm on jieba's dictionary file and
HMM tables: a DAG of dictionary words, the max-probability route (ties to the longer word), HMM
Viterbi for runs of single characters that are not words (ties to the later state in B<E<M<S).

The default dictionary is read once, on first use, behind a lock; a tokenizer with its own word
list builds its own dictionary the way jieba-rs's ``add_word`` does (frequencies from
``suggest_freq``). Token positions and widths are in characters, offsets in bytes, as Milvus's
``JiebaTokenizer`` reports them.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

from common.analyzer import charsets
from common.analyzer.errors import invalid_argument, unsupported
from common.analyzer.pipeline import Item, Tokenizer, byte_offsets

# jieba-rs RE_HAN_DEFAULT / RE_SKIP_DEFAULT (regex crate \s is White_Space).
_HAN_BLOCK = re.compile(
    "([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002b73f\U0002b740-\U0002b81f"
    "\U0002b820-\U0002ceaf\U0002ceb0-\U0002ebef\U0002f800-\U0002fa1f" "a-zA-Z0-9+#&._%\\-]+)")
_SKIP = re.compile(f"(\r\n|[{charsets.WHITE_SPACE}])")
# jieba-rs hmm.rs RE_HAN / RE_SKIP (its "." is unescaped: any character but a newline).
_HMM_HAN = re.compile("([\u4e00-\u9fd5]+)")
_HMM_SKIP = re.compile(r"([a-zA-Z0-9]+(?:.\d+)?%?)")
_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

_MISSING: Any = object()
_MIN_FLOAT = -3.14e100
_B, _E, _M, _S = 0, 1, 2, 3
_PREV = ((_E, _S), (_B, _M), (_M, _B), (_S, _E))  # states that may precede B, E, M, S


def _ln(x: float) -> float:
    return math.log(x) if x > 0 else -math.inf


def _as_usize(x: float) -> int:
    """Rust's ``f64 as usize``: saturating, NaN to 0."""
    if math.isnan(x) or x <= 0:
        return 0
    return 2**64 - 1 if x >= 2**64 else int(x)


class _Hmm:
    """jieba's HMM tables, emission log-probabilities rounded as jieba-rs's hmm.model stores them."""

    def __init__(self) -> None:
        from jieba.finalseg.prob_emit import P as emit_p  # noqa: N811 - jieba's names
        from jieba.finalseg.prob_start import P as start_p  # noqa: N811
        from jieba.finalseg.prob_trans import P as trans_p  # noqa: N811

        order = "BEMS"
        self.start = [float(start_p[s]) for s in order]
        self.trans = [[float(trans_p[a].get(b, _MIN_FLOAT)) for b in order] for a in order]
        self.emit: list[dict[str, float]] = [
            {ch: float(f"{p:.6f}") for ch, p in emit_p[s].items()} for s in order]

    def cut(self, s: str, out: list[str]) -> None:
        """Viterbi segmentation of a run of at least two Chinese characters (jieba-rs hmm::cut_internal)."""
        n = len(s)
        emit, trans = self.emit, self.trans
        v = [self.start[y] + emit[y].get(s[0], _MIN_FLOAT) for y in range(4)]
        backs = []
        for t in range(1, n):
            c = s[t]
            nv = [0.0] * 4
            back = [0] * 4
            for y in range(4):
                em = emit[y].get(c, _MIN_FLOAT)
                a, b = _PREV[y]
                pa = v[a] + trans[a][y] + em
                pb = v[b] + trans[b][y] + em
                if pa > pb or (pa == pb and a > b):
                    nv[y], back[y] = pa, a
                else:
                    nv[y], back[y] = pb, b
            backs.append(back)
            v = nv
        state = _S if v[_S] >= v[_E] else _E
        path = [0] * n
        path[n - 1] = state
        for t in range(n - 1, 0, -1):
            state = backs[t - 1][state]
            path[t - 1] = state
        begin = nxt = 0
        for i, st in enumerate(path):
            if st == _B:
                begin = i
            elif st == _E:
                out.append(s[begin:i + 1])
                nxt = i + 1
            elif st == _S:
                out.append(s[i])
                nxt = i + 1
        if nxt < n:
            out.append(s[nxt:])

    def cut_block(self, block: str, out: list[str]) -> None:
        """jieba-rs hmm::cut: Chinese runs through Viterbi, the rest in alphanumeric pieces."""
        for i, part in enumerate(_HMM_HAN.split(block)):
            if not part:
                continue
            if i % 2:
                if len(part) > 1:
                    self.cut(part, out)
                else:
                    out.append(part)
            else:
                out.extend(piece for piece in _HMM_SKIP.split(part) if piece)


def _read_default_dict() -> tuple[dict[str, int], int]:
    """jieba's dict.txt as word -> frequency, every proper prefix of a word -> 0, and the total."""
    freq: dict[str, int] = {}
    total = 0
    with resources.files("jieba").joinpath("dict.txt").open("r", encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            word = parts[0]
            f = int(parts[1]) if len(parts) > 1 else 0
            freq[word] = f
            for i in range(1, len(word)):
                freq.setdefault(word[:i], 0)
    for f in freq.values():
        total += f
    return freq, total


class Lexicon:
    """A jieba-rs dictionary, as log-probabilities: word -> ln(freq) - ln(total), prefix -> None."""

    def __init__(self, freq: dict[str, int], total: int) -> None:
        self.total = total
        self.logtotal = _ln(total)
        lt = self.logtotal
        self.logp: dict[str, float | None] = {w: (_ln(f) - lt if f else None) for w, f in freq.items()}

    def is_word(self, word: str) -> bool:
        return self.logp.get(word) is not None


class _Builder:
    """A dictionary being extended word by word, as jieba-rs's ``add_word(word, None, None)`` does."""

    def __init__(self, freq: dict[str, int], total: int) -> None:
        self.freq = freq
        self.total = total

    def _lookup(self, frag: str, default: Any) -> Any:
        f = self.freq.get(frag)
        if f is None:
            return default
        return _ln(f) - _ln(self.total) if f else None

    def add_word(self, word: str, hmm: _Hmm) -> None:
        logtotal = _ln(self.total)
        logfreq = 0.0
        for w in cut(word, False, self._lookup, logtotal, hmm):
            logfreq = logfreq + _ln(self.freq.get(w) or 1) - logtotal
        suggested = max(_as_usize(math.exp(logfreq + logtotal)) + 1, self.freq.get(word) or 1)
        old = self.freq.get(word, 0)
        self.total += suggested - old
        self.freq[word] = suggested
        for i in range(1, len(word)):
            self.freq.setdefault(word[:i], 0)


def _route(s: str, get: Callable[[str, Any], Any], logtotal: float) -> list[int]:
    """The end of the word starting at each character on the most probable segmentation."""
    n = len(s)
    probs = [0.0] * (n + 1)
    nxt = [0] * (n + 1)
    single = 0.0 - logtotal
    for k in range(n - 1, -1, -1):
        best: float | None = None
        best_end = k + 1
        end = k + 1
        frag = s[k]
        while True:
            lp = get(frag, _MISSING)
            if lp is _MISSING:
                break
            if lp is not None:
                p = lp + probs[end]
                if best is None or p >= best:  # equal: the longer word, as (prob, end) compares
                    best, best_end = p, end
            if end >= n:
                break
            end += 1
            frag = s[k:end]
        probs[k] = single + probs[k + 1] if best is None else best
        nxt[k] = best_end
    return nxt


def cut(sentence: str, hmm: bool, get: Callable[[str, Any], Any], logtotal: float, model: _Hmm) -> list[str]:
    """jieba-rs ``Jieba::cut``: the words of ``sentence``, which concatenate back to it."""
    out: list[str] = []
    for i, part in enumerate(_HAN_BLOCK.split(sentence)):
        if not part:
            continue
        if not i % 2:
            for j, piece in enumerate(_SKIP.split(part)):
                if piece:
                    if j % 2:
                        out.append(piece)
                    else:
                        out.extend(piece)
            continue
        nxt = _route(part, get, logtotal)
        n = len(part)
        x = 0
        start = -1
        while x < n:
            y = nxt[x]
            if y - x == 1 and (hmm or part[x] in _ASCII_ALNUM):
                if start < 0:
                    start = x
            else:
                if start >= 0:
                    _flush(part[start:x], hmm, get, model, out)
                    start = -1
                out.append(part[x:y])
            x = y
        if start >= 0:
            _flush(part[start:], hmm, get, model, out)
    return out


def _flush(buf: str, hmm: bool, get: Callable[[str, Any], Any], model: _Hmm, out: list[str]) -> None:
    """The single characters jieba-rs holds back: ASCII runs kept whole, or HMM over unknown runs."""
    if not hmm or len(buf) == 1:
        out.append(buf)
    elif get(buf, None) is None:
        model.cut_block(buf, out)
    else:
        out.extend(buf)


class _Shared:
    """The default dictionary and the HMM model, loaded once on first use."""

    lock = threading.Lock()
    hmm: _Hmm | None = None
    default: Lexicon | None = None

    @classmethod
    def model(cls) -> _Hmm:
        if cls.hmm is None:
            with cls.lock:
                if cls.hmm is None:
                    cls.hmm = _Hmm()
        return cls.hmm

    @classmethod
    def default_lexicon(cls) -> Lexicon:
        if cls.default is None:
            with cls.lock:
                if cls.default is None:
                    cls.default = Lexicon(*_read_default_dict())
        return cls.default


class JiebaTokenizer(Tokenizer):
    """Milvus's ``JiebaTokenizer`` over a dictionary: ``search`` or ``exact`` mode, HMM on or off."""

    def __init__(self, words: tuple[str, ...] = (), system_dict: str | None = "_default_",
                 search: bool = True, hmm: bool = True) -> None:
        self.words = words
        self.system_dict = system_dict
        self.search = search
        self.hmm = hmm
        self._lexicon: Lexicon | None = None
        self._lock = threading.Lock()

    def lexicon(self) -> Lexicon:
        if self._lexicon is None:
            with self._lock:
                if self._lexicon is None:
                    self._lexicon = self._build()
        return self._lexicon

    def _build(self) -> Lexicon:
        if not self.words and self.system_dict == "_default_":
            return _Shared.default_lexicon()
        model = _Shared.model()
        freq, total = _read_default_dict() if self.system_dict == "_default_" else ({}, 0)
        builder = _Builder(freq, total)
        for word in self.words:
            builder.add_word(word, model)
        return Lexicon(builder.freq, builder.total)

    def _words(self, text: str) -> list[str]:
        lex = self.lexicon()
        return cut(text, self.hmm, lex.logp.get, lex.logtotal, _Shared.model())

    def _spans(self, text: str) -> list[tuple[str, int, int]]:
        """jieba-rs ``tokenize``: (word, start char, end char), with the dictionary 2- and 3-grams of
        longer words before each word in search mode."""
        lex = self.lexicon()
        out = []
        start = 0
        for w in self._words(text):
            width = len(w)
            if self.search and width > 2:
                for size in (2, 3) if width > 3 else (2,):
                    for i in range(width - size + 1):
                        gram = w[i:i + size]
                        if lex.is_word(gram):
                            out.append((gram, start + i, start + i + size))
            out.append((w, start, start + width))
            start += width
        return out

    def texts(self, text: str) -> list[str]:
        if not self.search:
            return self._words(text)
        return [w for w, _, _ in self._spans(text)]

    def items(self, text: str) -> list[Item]:
        spans = self._spans(text)
        cuts = sorted({off for _, s, e in spans for off in (s, e)})
        to_byte = dict(zip(cuts, byte_offsets(text, cuts), strict=True))
        return [(w, to_byte[s], to_byte[e], s, e - s) for w, s, e in spans]


DEFAULT_JIEBA = JiebaTokenizer()
EXACT_NO_HMM = JiebaTokenizer(search=False, hmm=False)  # the icu tokenizer's stand-in for ICU's CJ dictionary


def jieba_from_params(params: Mapping[str, Any]) -> JiebaTokenizer:
    """``{"type": "jieba", "dict": [...], "mode": "search"|"exact", "hmm": bool}``, checked in Milvus's order."""
    words: list[str] = []
    system_dict: str | None = "_default_"
    if "dict" in params:
        value = params["dict"]
        if not isinstance(value, list):
            raise invalid_argument("jieba tokenizer dict must be array")
        system_dict = None
        for item in value:
            if not isinstance(item, str):
                raise invalid_argument("jieba tokenizer dict item must be string")
            if not item:
                continue
            if item in ("_default_", "_extend_default_"):
                if system_dict is not None:
                    raise invalid_argument("jieba tokenizer dict can only set one default dict")
                system_dict = item
            else:
                words.append(item)
    if system_dict == "_extend_default_":
        raise unsupported("jieba dict \"_extend_default_\" (dict.txt.big)")
    search = True
    if "mode" in params:
        mode = params["mode"]
        if not isinstance(mode, str):
            raise invalid_argument("jieba tokenizer mode must be string")
        if mode not in ("exact", "search"):
            raise invalid_argument('jieba tokenizer mode must be "exact" or "search"')
        search = mode == "search"
    hmm = True
    if "hmm" in params:
        hmm = params["hmm"]
        if not isinstance(hmm, bool):
            raise invalid_argument("jieba tokenizer mode must be boolean")
    if not words and system_dict == "_default_" and search and hmm:
        return DEFAULT_JIEBA
    return JiebaTokenizer(tuple(words), system_dict, search, hmm)
