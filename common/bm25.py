"""The BM25 function: a text field's rows become sparse ``{term hash: count}`` rows, and the
corpus statistics that turn a query's terms into IDF weights.

Milvus computes a BM25 function's output where the data lands (datanode and querynode), and a
search's query terms on the shard leader. Quiver computes the output once, in the proxy's insert
(and in imports), so every later role stores and loads it as an ordinary SparseFloatVector
column; a search's text is analyzed by the proxy with the same analyzer into the same kind of
row, and the shard leader weights it (:func:`idf_weighted`) with statistics it gathers from the
shard's segments (:class:`CorpusStats`): rows, tokens and, per query term, the rows holding it —
Milvus's BM25Stats, IDF ``log(1 + (N - df + 0.5) / (df + 0.5))`` times the query's count of the
term. Null text gives an empty row, which counts as a row of no tokens, as in Milvus.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.analyzer import FieldAnalyzers, field_analyzers, token_hash
from common.schema import Field, Schema


def analyzers_of(f: Field) -> FieldAnalyzers:
    return field_analyzers(f.type_params)


def term_counts(tokens: Sequence[str]) -> dict[int, float]:
    """One row: each token's hash (the sparse dimension) with how often it occurs."""
    return {h: float(c) for h, c in Counter(map(token_hash, tokens)).items()}


def term_frequencies(
    f: Field, texts: Sequence[Any] | np.ndarray, valid: np.ndarray | None = None,
    analyzer_names: Sequence[Any] | np.ndarray | None = None,
) -> np.ndarray:
    """The BM25 output rows (object array of dicts) of ``texts``; null or invalid rows are empty.
    ``analyzer_names``: a multi-analyzer field's per-row choice (the by_field column)."""
    fa = analyzers_of(f)
    out = np.empty(len(texts), dtype=object)
    default = fa.get(None)
    for i, text in enumerate(texts):
        if text is None or (valid is not None and not valid[i]):
            out[i] = {}
            continue
        analyzer = default if analyzer_names is None else fa.get(_name(analyzer_names[i]))
        out[i] = term_counts(analyzer.tokens(str(text)))
    return out


def _name(value: Any) -> str | None:
    return None if value is None else str(value)


def fill_function_outputs(schema: Schema, columns: dict[str, np.ndarray]) -> None:
    """Compute every BM25 output column of ``columns`` from its input column (in place)."""
    for fn in schema.functions:
        if not fn.is_bm25:
            continue
        src = schema.field(fn.input_names[0])
        texts = columns.get(src.name)
        if texts is None:
            continue
        fa = analyzers_of(src)
        names = columns.get(fa.by_field) if fa.by_field else None
        columns[fn.output_names[0]] = term_frequencies(src, texts, columns.get(f"{src.name}.valid"), names)


def query_terms(f: Field, texts: Sequence[str], analyzer_name: str | None = None) -> np.ndarray:
    """A search's texts as term-count rows (object array of dicts, as decoded sparse queries are),
    analyzed as the field's rows are, or with the multi-analyzer's ``analyzer_name``."""
    analyzer = analyzers_of(f).get(analyzer_name)
    out = np.empty(len(texts), dtype=object)
    for i, text in enumerate(texts):
        out[i] = term_counts(analyzer.tokens(text))
    return out


@dataclass
class CorpusStats:
    """Rows, tokens and document frequency of some terms over a set of segments (summable)."""

    rows: int = 0
    tokens: float = 0.0
    df: dict[int, int] = field(default_factory=dict)

    def add(self, other: CorpusStats) -> None:
        self.rows += other.rows
        self.tokens += other.tokens
        for term, count in other.df.items():
            self.df[term] = self.df.get(term, 0) + count

    @property
    def avgdl(self) -> float:
        return self.tokens / self.rows if self.rows and self.tokens else 0.0

    def to_wire(self) -> dict[str, Any]:
        return {"rows": self.rows, "tokens": self.tokens, "terms": list(self.df), "df": list(self.df.values())}

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> CorpusStats:
        return cls(int(wire["rows"]), float(wire["tokens"]),
                   {int(t): int(c) for t, c in zip(wire["terms"], wire["df"], strict=True)})


def idf_weighted(queries: Sequence[Mapping[int, float]], stats: CorpusStats) -> np.ndarray:
    """Each query term's count times its IDF over ``stats`` (Milvus's BM25Stats.BuildIDF)."""
    n = float(stats.rows)
    out = np.empty(len(queries), dtype=object)
    for i, row in enumerate(queries):
        out[i] = {t: float(v) * math.log(1.0 + (n - stats.df.get(int(t), 0) + 0.5) / (stats.df.get(int(t), 0) + 0.5))
                  for t, v in row.items()}
    return out


def query_term_ids(queries: Sequence[Mapping[int, float]]) -> list[int]:
    """Every term of the queries, once."""
    return sorted({int(t) for row in queries for t in row})


__all__ = ["CorpusStats", "fill_function_outputs", "idf_weighted", "query_term_ids", "query_terms", "term_frequencies"]
