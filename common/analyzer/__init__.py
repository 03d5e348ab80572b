"""Milvus 2.5/2.6 text analyzers: what full text search (BM25), text_match and phrase_match see.

A field's ``analyzer_params`` (or ``multi_analyzer_params``) are built into an :class:`Analyzer`
that turns a text into tokens exactly as Milvus's tantivy-based analyzers do (tokenizers
``standard``, ``whitespace``, ``jieba``, ``char_group`` and an approximated ``icu``; built-in
analyzers ``standard``, ``english``, ``chinese``; Milvus's filters), and :func:`token_hash` gives a
token the sparse dimension Milvus's BM25 function gives it. Bad params raise ``MilvusError`` (code
1100) with Milvus's messages.

Modules: :mod:`.builder` (params -> analyzer), :mod:`.pipeline` (the analyzer and its stages),
:mod:`.tokenizers`, :mod:`.jieba_tokenizer`, :mod:`.icu`, :mod:`.filters`, :mod:`.fields` (a field's
analyzers and the CreateCollection checks), :mod:`.hashing`; ``_*`` modules hold Unicode, stop-word
and ASCII-folding data.
"""

from __future__ import annotations

from common.analyzer.builder import build_analyzer, go_json_kind
from common.analyzer.errors import AnalyzerError
from common.analyzer.fields import FieldAnalyzers, check_field_analyzer, field_analyzers
from common.analyzer.hashing import token_hash
from common.analyzer.pipeline import Analyzer, Token

__all__ = [
    "Analyzer",
    "AnalyzerError",
    "FieldAnalyzers",
    "Token",
    "build_analyzer",
    "go_json_kind",
    "check_field_analyzer",
    "field_analyzers",
    "token_hash",
]
