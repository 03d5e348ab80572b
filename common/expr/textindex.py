"""Inverted indexes over text columns, which answer ``text_match`` and ``phrase_match``.

Both analyze every row with the field's analyzer (common.analyzer). Doing that per query costs
one analyzer call per row, so Quiver keeps, like Milvus's per-segment text index, a
:class:`TextIndex` per (segment, field, analyzer settings):

* per analyzer (a multi-analyzer field analyzes each row with the analyzer its ``by_field``
  value names, so each analyzer has a vocabulary of its own): term -> id, and per term id the
  ascending offsets of the rows holding it (``array('i')``);
* per row, its tokens' term ids and positions in token order, flat in numpy buffers, with each
  row's start (a phrase query gathers its candidate rows' tokens from them, vectorised). Only
  phrase_match needs these, and positions cost the analyzer's ``analyze()``, several times
  slower than its ``tokens()``: they are recorded from the first phrase_match on (``placed``
  rows), the postings alone before.

That is 4 bytes per (term, row) pair, and 8 more per token once positions are kept (a 5,000-row
segment of 200-character texts: about 1 MB, 2.5 MB with positions). A segment owns a
:class:`TextIndexes` (the querynode's ``Segment.text_indexes``) and hands ``lookup(columns, n)``
to ``Filter.evaluate``. An index
covers rows ``[0, covered)``; columns only grow by append and a row never changes, so a read of
``n`` rows first extends it by rows ``[covered, n)``: a growing segment analyzes each row once,
a sealed one builds its index at its first text query. A reader with an older snapshot (``n <
covered``) sees only rows below ``n``. Without a segment (``Filter.evaluate`` with no lookup) a
throwaway index over the batch gives the same answers at O(rows) analyzer calls.

Semantics, as Milvus 2.6 (segcore ``ExecTextMatch``, tantivy-binding ``index_reader_text.rs``
and the phrase scorer of its tantivy fork):

* text_match: the query's tokens (repeats kept: each is a clause of tantivy's boolean query)
  select the rows holding at least ``min_should_match`` of them (1: any);
* phrase_match: a query of fewer than two tokens is a text_match on them; otherwise each query
  token's row positions are shifted back by its position in the query (so stop-word gaps
  count), and a row matches when one shifted position per token can be picked within a window
  of ``slop``: max - min <= slop. Slop 0 is the exact phrase; reordering costs too, so
  "learning machine" matches the query "machine learning" from slop 2 on;
* a null row is unknown: never selected, also under ``not`` (segcore returns the index's
  not-null bitmap as the valid mask).
"""

from __future__ import annotations

import threading
from array import array
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from common.errors import Code, MilvusError
from common.expr.nodes import PhraseMatch, TextMatch, TextPredicate

if TYPE_CHECKING:
    from common.analyzer import Analyzer

Truth = tuple[np.ndarray, np.ndarray | None]  # (rows true, rows known — None: all)
TextLookup = Callable[[TextPredicate], Truth]
_EMPTY = np.empty(0, dtype=np.int32)


class _Vocabulary:
    """The terms one analyzer produced: term -> id, and per id the ascending rows holding it."""

    __slots__ = ("analyzer", "ids", "rows")

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.ids: dict[str, int] = {}
        self.rows: list[array[int]] = []

    def intern(self, terms: list[str]) -> list[int]:
        ids, rows, out = self.ids, self.rows, []
        for term in terms:
            tid = ids.get(term)
            if tid is None:
                tid = ids[term] = len(rows)
                rows.append(array("i"))
            out.append(tid)
        return out

    def postings(self, tid: int, n: int) -> np.ndarray:
        """Rows below ``n`` holding term ``tid`` (a copy: the array keeps growing)."""
        rows = np.frombuffer(self.rows[tid], dtype=np.int32).copy() if len(self.rows[tid]) else _EMPTY
        return rows if not len(rows) or rows[-1] < n else rows[: int(np.searchsorted(rows, n))]

    def nbytes(self) -> int:
        return 100 * len(self.ids) + sum(4 * len(r) + 64 for r in self.rows)


class _Buffer:
    """An append-only numpy array with spare capacity, so appends cost amortised O(1)."""

    def __init__(self, dtype: type[np.generic]) -> None:
        self._data = np.empty(1024, dtype=dtype)
        self.size = 0

    def extend(self, values: list[int]) -> None:
        need = self.size + len(values)
        if need > len(self._data):
            grown = np.empty(max(need, 2 * len(self._data)), dtype=self._data.dtype)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : need] = values
        self.size = need

    def view(self) -> np.ndarray:
        return self._data[: self.size]

    def nbytes(self) -> int:
        return int(self._data.nbytes)


class TextIndex:
    """The inverted index of one text field over the first ``covered`` rows of one segment."""

    def __init__(self, node: TextPredicate) -> None:
        from common.analyzer import field_analyzers  # the analyzer package loads on first use

        self.field = node.column.name
        self.by = node.by.name if node.by is not None else None
        self._analyzers = field_analyzers(dict(node.params))
        self._vocabularies: dict[int, _Vocabulary] = {}  # by id() of their analyzer
        self._by_name: dict[str | None, _Vocabulary] = {}
        self.covered = 0  # rows in the postings
        # positions, from the first phrase_match on (tokens() is several times cheaper than analyze())
        self.placed = 0  # rows in the flat arrays
        self._positional = False
        self._terms = _Buffer(np.int32)  # every token's term id, row after row
        self._positions = _Buffer(np.int32)  # and its position in its row
        self._starts = _Buffer(np.int64)  # row r's tokens: [starts[r], starts[r + 1])
        self._starts.extend([0])
        self._lock = threading.Lock()

    def truth(self, node: TextPredicate, columns: Mapping[str, np.ndarray], n: int) -> Truth:
        """The node's rows among the first ``n`` of ``columns`` (this index's segment's)."""
        valid = columns.get(self.field + ".valid") if node.column.nullable else None
        with self._lock:
            if isinstance(node, PhraseMatch):
                self._positional = True
                self._place(columns, min(n, self.covered))
            self._extend(columns, n)
            mask = self._phrase(node, n) if isinstance(node, PhraseMatch) else self._any(node, n)
        if valid is None:
            return mask, None
        known = np.asarray(valid[:n], dtype=bool)
        return mask & known, known

    def nbytes(self) -> int:
        with self._lock:
            flat = self._terms.nbytes() + self._positions.nbytes() + self._starts.nbytes()
            return flat + sum(v.nbytes() for v in self._vocabularies.values())

    # --- building ---------------------------------------------------------------------------
    def _vocabulary(self, name: str | None) -> _Vocabulary:
        vocab = self._by_name.get(name)
        if vocab is None:
            analyzer = self._analyzers.get(name)
            vocab = self._vocabularies.get(id(analyzer))
            if vocab is None:
                vocab = self._vocabularies[id(analyzer)] = _Vocabulary(analyzer)
            self._by_name[name] = vocab
        return vocab

    def _rows(self, columns: Mapping[str, np.ndarray], start: int, stop: int) -> list[tuple[_Vocabulary, str] | None]:
        """Rows ``[start, stop)``: each one's vocabulary and text, None for a null or empty row."""
        try:
            texts = columns[self.field][start:stop].tolist()
        except KeyError:
            raise MilvusError(Code.SERVICE_INTERNAL, f"filter input lacks column {self.field}") from None
        present = _present(columns, self.field, start, stop)
        if self.by is None or self.by not in columns:
            default = self._vocabulary(None)
            return [(default, str(t)) if ok and t else None for t, ok in zip(texts, present, strict=True)]
        names = columns[self.by][start:stop].tolist()
        named = _present(columns, self.by, start, stop)
        return [
            (self._vocabulary(str(name) if has and name is not None else None), str(t)) if ok and t else None
            for t, ok, name, has in zip(texts, present, names, named, strict=True)
        ]

    def _extend(self, columns: Mapping[str, np.ndarray], n: int) -> None:
        """Index rows ``[covered, n)`` (with their positions too once a phrase asked for them)."""
        start = self.covered
        if n <= start:
            return
        positional = self._positional and self.placed == start
        terms: list[int] = []
        positions: list[int] = []
        ends: list[int] = []
        base = self._terms.size
        for row, found in enumerate(self._rows(columns, start, n), start):
            if found is not None:
                vocab, text = found
                if positional:
                    tokens = vocab.analyzer.analyze(text)
                    ids = vocab.intern([t.text for t in tokens])
                    terms += ids
                    positions += [t.position for t in tokens]
                else:
                    ids = vocab.intern(vocab.analyzer.tokens(text))
                for tid in dict.fromkeys(ids):
                    vocab.rows[tid].append(row)
            ends.append(base + len(terms))
        if positional:
            self._append_positions(terms, positions, ends, n)
        self.covered = n

    def _place(self, columns: Mapping[str, np.ndarray], n: int) -> None:
        """Record the positions of rows ``[placed, n)``, which the postings already hold."""
        if n <= self.placed:
            return
        terms: list[int] = []
        positions: list[int] = []
        ends: list[int] = []
        base = self._terms.size
        for found in self._rows(columns, self.placed, n):
            if found is not None:
                vocab, text = found
                tokens = vocab.analyzer.analyze(text)
                terms += vocab.intern([t.text for t in tokens])
                positions += [t.position for t in tokens]
            ends.append(base + len(terms))
        self._append_positions(terms, positions, ends, n)

    def _append_positions(self, terms: list[int], positions: list[int], ends: list[int], n: int) -> None:
        self._terms.extend(terms)
        self._positions.extend(positions)
        self._starts.extend(ends)
        self.placed = n

    # --- matching ---------------------------------------------------------------------------
    def _any(self, node: TextPredicate, n: int) -> np.ndarray:
        least = node.min_should_match if isinstance(node, TextMatch) else 1
        mask = np.zeros(n, dtype=bool)
        for vocab in self._vocabularies.values():
            wanted = Counter(vocab.analyzer.tokens(node.query))
            if sum(wanted.values()) < least:
                continue
            found = [(vocab.postings(vocab.ids[t], n), times) for t, times in wanted.items() if t in vocab.ids]
            if least == 1:
                for rows, _ in found:
                    mask[rows] = True
                continue
            counts = np.zeros(n, dtype=np.int32)
            for rows, times in found:
                counts[rows] += times  # a repeated query token is a clause per repeat, as in tantivy
            mask |= counts >= least
        return mask

    def _phrase(self, node: PhraseMatch, n: int) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        for vocab in self._vocabularies.values():
            tokens = vocab.analyzer.analyze(node.query)
            if len(tokens) < 2:  # Milvus: a one-token phrase is a term query
                if tokens and tokens[0].text in vocab.ids:
                    mask[vocab.postings(vocab.ids[tokens[0].text], n)] = True
                continue
            if any(t.text not in vocab.ids for t in tokens):
                continue  # a term no row holds
            wanted = [vocab.ids[t.text] for t in tokens]
            rows = _rows_with_all(vocab, wanted, n)
            if len(rows):
                mask[self._phrase_rows(rows, wanted, [t.position for t in tokens], node.slop)] = True
        return mask

    def _phrase_rows(self, rows: np.ndarray, ids: list[int], offsets: list[int], slop: int) -> np.ndarray:
        """Those of ``rows`` (each holding every term of ``ids``) where the phrase occurs."""
        starts = self._starts.view()
        lo, lens = starts[rows], starts[rows + 1] - starts[rows]
        total = int(lens.sum())
        tokens = np.repeat(lo - (np.cumsum(lens) - lens), lens) + np.arange(total)  # their tokens, row by row
        terms, positions = self._terms.view()[tokens], self._positions.view()[tokens].astype(np.int64)
        owner = np.repeat(rows.astype(np.int64), lens)
        lists = []
        for tid, offset in zip(ids, offsets, strict=True):
            picked = terms == tid
            lists.append((owner[picked], positions[picked] - offset))
        return rows_within(lists, slop)


def rows_within(lists: list[tuple[np.ndarray, np.ndarray]], slop: int) -> np.ndarray:
    """The rows where one value of each list can be picked with max - min <= ``slop``.

    Each list is (row, value) pairs, every row present in every list. A window of width
    ``slop`` that holds a value of each list can start at one of those values, so it is enough
    to try each value as a start: keyed as ``row * width + value`` (``width`` keeps rows apart),
    a binary search per list finds its first value at or after the start.
    """
    low = min(int(values.min()) for _, values in lists)
    high = max(int(values.max()) for _, values in lists)
    slop = min(slop, high - low)  # a wider window holds no more
    width = high - low + slop + 1
    keys = [np.sort(owner * width + (values - low)) for owner, values in lists]
    begins = np.concatenate(keys)
    fits = np.ones(len(begins), dtype=bool)
    for key in keys:
        at = np.minimum(np.searchsorted(key, begins), len(key) - 1)
        fits &= (key[at] >= begins) & (key[at] <= begins + slop)
    return np.unique(begins[fits] // width)


def _rows_with_all(vocab: _Vocabulary, ids: list[int], n: int) -> np.ndarray:
    """Rows below ``n`` holding every term of ``ids`` (rarest term first)."""
    distinct = sorted(set(ids), key=lambda tid: len(vocab.rows[tid]))
    rows = vocab.postings(distinct[0], n)
    for tid in distinct[1:]:
        if not len(rows):
            break
        rows = np.intersect1d(rows, vocab.postings(tid, n), assume_unique=True)
    return rows


def _present(columns: Mapping[str, np.ndarray], name: str, start: int, n: int) -> list[bool]:
    valid = columns.get(name + ".valid")
    return [True] * (n - start) if valid is None else np.asarray(valid[start:n], dtype=bool).tolist()


class TextIndexes:
    """The text indexes of one segment, one per (field, its type params, by-field), built on use."""

    def __init__(self) -> None:
        self._indexes: dict[tuple[str, tuple[tuple[str, str], ...], str | None], TextIndex] = {}
        self._lock = threading.Lock()

    def index(self, node: TextPredicate) -> TextIndex:
        key = (node.column.name, node.params, node.by.name if node.by is not None else None)
        with self._lock:
            found = self._indexes.get(key)
            if found is None:
                found = self._indexes[key] = TextIndex(node)
            return found

    def lookup(self, columns: Mapping[str, np.ndarray], n: int) -> TextLookup:
        """Answers for the segment's first ``n`` rows, whose columns (full or cut at n) these are."""

        def truth(node: TextPredicate) -> Truth:
            return self.index(node).truth(node, columns, n)

        return truth

    def nbytes(self) -> int:
        with self._lock:
            indexes = list(self._indexes.values())
        return sum(i.nbytes() for i in indexes)


def restrict(lookup: TextLookup, rows: np.ndarray) -> TextLookup:
    """A lookup answering for the segment rows ``rows`` only (a gathered batch of them)."""

    def truth(node: TextPredicate) -> Truth:
        mask, valid = lookup(node)
        return mask[rows], None if valid is None else valid[rows]

    return truth


def scan(node: TextPredicate, columns: Mapping[str, np.ndarray], n: int) -> Truth:
    """The node's rows in a batch with no segment cache: a throwaway index over the batch."""
    return TextIndex(node).truth(node, columns, n)
