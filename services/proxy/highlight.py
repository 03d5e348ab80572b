"""Milvus 2.6's lexical search highlighter: the matched terms of each hit's text, tagged, in fragments.

A Search may carry a ``highlighter`` (``common.Highlighter``, type Lexical, string params):
``pre_tags``/``post_tags`` (JSON string lists, cycled over the matches of a fragment),
``fragment_offset`` (characters kept before a match), ``fragment_size`` (a fragment's minimum length
in characters), ``num_of_fragments``, ``highlight_search_text`` (highlight a BM25 search's own texts
in the searched function's input field) and ``highlight_query`` (``[{"type": "TextMatch", "field":
..., "text": ...}]``: more terms for any analyzed field). Milvus parses these in the proxy
(``NewLexicalHighlighter``, with its error messages, kept here word for word), makes the proxy fetch
every highlighted field with the hits, and has the shard leader analyze the texts
(``GetHighlight``): a hit's tokens equal to a search or query token are matches, overlapping or
touching matches merge, and fragments are cut around them in characters. The proxy tags them and
returns one ``HighlightResult`` per field, whether or not the field is an output field.

Quiver does it all in the proxy once the final hits are known: :func:`prepare` validates the
request (before the search runs, as Milvus does), :meth:`Highlighter.fetch_fields` names the extra
columns, :meth:`Highlighter.results` builds the reply. The text work is pure functions
(:func:`match_spans`, :func:`cut_fragments`, :func:`render`) over the field's own analyzer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import numpy as np
from pymilvus.grpc_gen import common_pb2

from common.analyzer import Analyzer, FieldAnalyzers, field_analyzers, go_json_kind
from common.errors import Code, MilvusError, invalid
from common.fielddata import decode_text_placeholder
from common.schema import Field, Schema

DEFAULT_FRAGMENT_SIZE = 100
DEFAULT_NUM_OF_FRAGMENTS = 5
DEFAULT_PRE_TAG = "<em>"
DEFAULT_POST_TAG = "</em>"
QUERY_TYPES = ("TextMatch",)  # querypb.HighlightQueryType
_INT = re.compile(r"[+-]?[0-9]+")  # what Go's strconv.ParseInt(s, 10, 64) accepts
_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")

Span = tuple[int, int]  # [start, end) in characters


def _invalid(detail: str) -> MilvusError:
    """merr.WrapErrParameterInvalidMsg: ``"<detail>: invalid parameter"`` (code 1100)."""
    return invalid(f"{detail}: invalid parameter")


@dataclass(frozen=True)
class HighlightQuery:
    """One ``highlight_query`` item: more terms to highlight in ``field``."""

    type: str
    field: str
    text: str


@dataclass(frozen=True)
class HighlightOptions:
    """A lexical highlighter's params, validated (Milvus's defaults where absent)."""

    pre_tags: tuple[str, ...] = (DEFAULT_PRE_TAG,)
    post_tags: tuple[str, ...] = (DEFAULT_POST_TAG,)
    fragment_offset: int = 0
    fragment_size: int = DEFAULT_FRAGMENT_SIZE
    num_of_fragments: int = DEFAULT_NUM_OF_FRAGMENTS
    highlight_search_text: bool = False
    queries: tuple[HighlightQuery, ...] = ()


def _go_json(raw: str) -> Any:
    """``raw`` parsed as JSON; a syntax error worded as Go's ``encoding/json`` words it."""
    try:
        return json.loads(raw)
    except ValueError as exc:
        pos = getattr(exc, "pos", len(raw))
        rest = raw[pos:].strip() if isinstance(pos, int) else ""
        if not rest:
            raise ValueError("unexpected end of JSON input") from None
        raise ValueError(f"invalid character {rest[0]!r} looking for beginning of value") from None


def _tags(params: Mapping[str, str], key: str, what: str, default: str) -> tuple[str, ...]:
    raw = params.get(key)
    if raw is None:
        return (default,)
    try:
        value = _go_json(raw)
        if value is not None and not isinstance(value, list):
            raise ValueError(f"json: cannot unmarshal {go_json_kind(value)} into Go value of type []string")
        for tag in value or ():
            if not isinstance(tag, str) and tag is not None:
                raise ValueError(f"json: cannot unmarshal {go_json_kind(tag)} into Go value of type string")
    except ValueError as exc:
        raise _invalid(f"unmarshal {key} as {what} failed: {exc}") from None
    tags = tuple("" if t is None else t for t in value or ())
    if not tags:
        raise _invalid(f"{key} cannot be empty list")
    return tags


def _int(params: Mapping[str, str], key: str, default: int, minimum: int) -> int:
    raw = params.get(key)
    if raw is None:
        return default
    value = int(raw) if _INT.fullmatch(raw) else None
    if value is None or not -(2**63) <= value < 2**63 or value < minimum:
        raise _invalid(f"invalid {key}: {raw}")
    return value


def _queries(raw: str) -> tuple[HighlightQuery, ...]:
    prefix = "unmarshal highlight queries failed: "
    try:
        items = _go_json(raw)
        if items is not None and not isinstance(items, list):
            raise ValueError(f"json: cannot unmarshal {go_json_kind(items)} into Go value of type []interface {{}}")
    except ValueError as exc:
        raise _invalid(f"unmarshal highlight queries as json array failed: {exc}") from None
    out = []
    for item in items or ():
        if not isinstance(item, dict):
            raise _invalid(prefix + "item in array is not json object")
        if "text" not in item:
            raise _invalid(prefix + "must set `text` in query")
        if not isinstance(item["text"], str):
            raise _invalid(prefix + "`text` must be string")
        if "type" not in item:
            raise _invalid(prefix + "must set `type` in query")
        if not isinstance(item["type"], str):
            raise _invalid(prefix + "`type` must be string")
        if item["type"] not in QUERY_TYPES:
            raise _invalid(prefix + f"invalid highlight query type: {item['type']}")
        if "field" not in item:
            raise _invalid(prefix + "must set `field` in query")
        if not isinstance(item["field"], str):
            raise _invalid(prefix + "`field` must be string")
        out.append(HighlightQuery(item["type"], item["field"], item["text"]))
    return tuple(out)


def parse_options(params: Mapping[str, str]) -> HighlightOptions:
    """A lexical highlighter's params as Milvus's ``NewLexicalHighlighter`` checks them, in its order."""
    pre = _tags(params, "pre_tags", "string array", DEFAULT_PRE_TAG)
    post = _tags(params, "post_tags", "string list", DEFAULT_POST_TAG)
    size = _int(params, "fragment_size", DEFAULT_FRAGMENT_SIZE, 1)
    num = _int(params, "num_of_fragments", DEFAULT_NUM_OF_FRAGMENTS, 0)
    offset = _int(params, "fragment_offset", 0, 0)
    search_text = False
    raw = params.get("highlight_search_text")
    if raw is not None:
        if raw not in _GO_TRUE + _GO_FALSE:
            raise _invalid(
                f"unmarshal highlight_search_text as bool failed: strconv.ParseBool: parsing {json.dumps(raw)}: "
                "invalid syntax"
            )
        search_text = raw in _GO_TRUE
    queries = _queries(params["highlight_query"]) if "highlight_query" in params else ()
    return HighlightOptions(pre, post, offset, size, num, search_text, queries)


# --- the text work --------------------------------------------------------------------------------


def char_offsets(text: str, byte_offsets: Iterable[int]) -> dict[int, int]:
    """Character offsets of UTF-8 byte offsets into ``text`` (each at a character boundary)."""
    wanted = set(byte_offsets)
    if text.isascii():
        return {b: b for b in wanted}
    out: dict[int, int] = {}
    pos = 0
    for i, ch in enumerate(text):
        if pos in wanted:
            out[pos] = i
        pos += len(ch.encode("utf-8"))
    if pos in wanted:
        out[pos] = len(text)
    missing = wanted - out.keys()
    if missing:
        raise MilvusError(Code.SERVICE_INTERNAL, f"start offset: {min(missing)} not found (text: {pos} bytes)")
    return out


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Sorted spans with overlapping or touching ones merged into one."""
    out: list[list[int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(s, e) for s, e in out]


def match_spans(analyzer: Analyzer, text: str, terms: set[str]) -> list[Span]:
    """The merged character spans of ``text``'s tokens that are among ``terms``."""
    if not terms or not text:
        return []
    hits = [(t.start_offset, t.end_offset) for t in analyzer.analyze(text) if t.text in terms]
    if not hits:
        return []
    chars = char_offsets(text, [b for span in hits for b in span])
    return merge_spans((chars[s], chars[e]) for s, e in hits)


@dataclass
class Fragment:
    """A piece of a text, ``[start, end)`` in characters, and the matches it tags."""

    start: int
    end: int
    spans: list[Span] = dc_field(default_factory=list)


def cut_fragments(length: int, spans: Sequence[Span], offset: int, size: int, limit: int) -> list[Fragment]:
    """Fragments around merged, sorted ``spans`` of a ``length``-character text.

    A fragment opens ``offset`` characters before a match and runs ``size`` characters from there
    (at least to the match's end, at most to the text's end); a later match that starts inside it
    joins it (and may lengthen it); the others open new fragments, up to ``limit`` of them."""
    out: list[Fragment] = []
    frag: Fragment | None = None
    for start, end in spans:
        if frag is not None and start <= frag.end:
            frag.spans.append((start, end))
            frag.end = max(frag.end, end)
            continue
        if frag is not None:
            out.append(frag)
        if len(out) >= limit:
            return out
        begin = max(0, start - offset)
        frag = Fragment(begin, min(max(end, begin + size), length), [(start, end)])
    if frag is not None:
        out.append(frag)
    return out


def render(text: str, frag: Fragment, pre_tags: Sequence[str], post_tags: Sequence[str]) -> str:
    """A fragment's text with its i-th match between ``pre_tags[i % n]`` and ``post_tags[i % m]``."""
    parts = []
    cursor = frag.start
    for i, (start, end) in enumerate(frag.spans):
        if cursor < start:
            parts.append(text[cursor:start])
        parts += (pre_tags[i % len(pre_tags)], text[start:end], post_tags[i % len(post_tags)])
        cursor = end
    if cursor < frag.end:
        parts.append(text[cursor:frag.end])
    return "".join(parts)


def highlight(analyzer: Analyzer, text: str, terms: set[str], options: HighlightOptions) -> list[str]:
    """The tagged fragments of one text for the analyzed ``terms``."""
    spans = match_spans(analyzer, text, terms)
    frags = cut_fragments(len(text), spans, options.fragment_offset, options.fragment_size,
                          options.num_of_fragments)
    return [render(text, f, options.pre_tags, options.post_tags) for f in frags]


# --- one request ----------------------------------------------------------------------------------


@dataclass
class FieldTask:
    """Highlighting of one field: per query its search text (highlight_search_text), plus the
    ``highlight_query`` texts every hit is matched against."""

    field: Field
    search_texts: list[str] = dc_field(default_factory=list)
    query_texts: list[str] = dc_field(default_factory=list)
    analyzer_name: str = ""  # a multi-analyzer field's analyzer for the search and query texts

    @property
    def analyzers(self) -> FieldAnalyzers:
        return field_analyzers(self.field.type_params)

    def _terms(self, texts: Iterable[str]) -> set[str]:
        analyzer = self.analyzers.get(self.analyzer_name or "default")
        return {t.text for text in texts for t in analyzer.analyze(text)}

    def data(self, texts: Sequence[Any], names: Sequence[Any] | None, topks: Sequence[int],
             options: HighlightOptions) -> list[common_pb2.HighlightData]:
        """One HighlightData per hit (hits flat in query order, ``topks[q]`` of them for query q)."""
        fa = self.analyzers
        shared = self._terms(self.query_texts)
        search_terms = [self._terms([t]) for t in self.search_texts]
        out = []
        row = 0
        for q, k in enumerate(topks):
            terms = shared | search_terms[q] if q < len(search_terms) else shared
            for _ in range(k):
                text = texts[row] if isinstance(texts[row], str) else ""
                name = names[row] if names is not None and isinstance(names[row], str) else None
                analyzer = fa.get(name) if fa.by_field is not None else fa.get()
                out.append(common_pb2.HighlightData(fragments=highlight(analyzer, text, terms, options)))
                row += 1
        return out


@dataclass
class Highlighter:
    """A request's lexical highlighter: its options and one task per highlighted field."""

    options: HighlightOptions
    tasks: list[FieldTask]

    def fetch_fields(self) -> list[str]:
        """Columns the search must fetch for the highlighter (text fields and multi-analyzer
        ``by_field`` columns): fetched, not returned unless asked for (see :func:`extend_fetch`)."""
        out: list[str] = []
        for task in self.tasks:
            out.append(task.field.name)
            by_field = task.analyzers.by_field
            if by_field:
                out.append(by_field)
        return out

    def results(self, cols: Mapping[str, np.ndarray], topks: Sequence[int]) -> list[common_pb2.HighlightResult]:
        """One HighlightResult per field for the hits (none when there are no hits)."""
        if not sum(topks):
            return []
        out = []
        for task in self.tasks:
            texts = _column(cols, task.field.name)
            by_field = task.analyzers.by_field
            names = _column(cols, by_field) if by_field and by_field in cols else None
            out.append(common_pb2.HighlightResult(
                field_name=task.field.name, datas=task.data(texts, names, topks, self.options)))
        return out


def _column(cols: Mapping[str, np.ndarray], name: str) -> list[Any]:
    """A fetched text column as a list, null rows as None."""
    values = list(cols[name])
    valid = cols.get(f"{name}.valid")
    if valid is not None:
        values = [v if ok else None for v, ok in zip(values, valid, strict=True)]
    return values


def _anns_field(schema: Schema, params: Mapping[str, str]) -> Field | None:
    """The searched field as Milvus's plan resolves it (None: the plan's own check will fail)."""
    name = params.get("anns_field", "")
    if not name:
        vectors = schema.vector_fields
        return vectors[0] if len(vectors) == 1 else None
    return schema.get(name)


def prepare(schema: Schema, request: Any) -> Highlighter | None:
    """The highlighter of a SearchRequest (None without one), checked as Milvus's
    ``createLexicalHighlighter`` checks it: the params, then - with ``highlight_search_text`` -
    metric ``BM25``, a BM25 function computing the searched field and text queries, then the
    ``highlight_query`` fields."""
    if "highlighter" not in request.DESCRIPTOR.fields_by_name or not request.HasField("highlighter"):
        return None
    proto = request.highlighter
    if proto.type == common_pb2.HighlightType.Semantic:
        raise MilvusError(Code.UNIMPLEMENTED, "semantic highlight is not supported by Quiver")
    if proto.type != common_pb2.HighlightType.Lexical:
        raise _invalid(f"unsupported highlight type: {proto.type}")
    options = parse_options({kv.key: kv.value for kv in proto.params})
    params = {kv.key: kv.value for kv in request.search_params}
    tasks: dict[str, FieldTask] = {}
    if options.highlight_search_text:
        if params.get("metric_type", "") != "BM25":
            # Milvus prints the task's metric type, which is not set yet at this point: always empty
            raise _invalid('Search highlight only support with metric type "BM25" but was: ')
        anns = _anns_field(schema, params)
        if anns is not None:  # else the search plan reports the field
            fn = schema.function_of_output(anns.name)
            if fn is None or not fn.is_bm25:
                raise MilvusError(
                    Code.SERVICE_INTERNAL,
                    "service internal error: Search with highlight failed, input field of BM25 annsField not found",
                )
            src = schema.field(fn.input_names[0])
            texts = decode_text_placeholder(request.placeholder_group)
            tasks[src.name] = FieldTask(src, search_texts=texts, analyzer_name=params.get("analyzer_name", ""))
    for query in options.queries:
        f = schema.get(query.field)
        if f is None or f.is_dynamic:
            raise _invalid(f"highlight field not found in schema: {query.field}")
        if f.type_params.get("enable_analyzer", "").strip() not in _GO_TRUE:
            # the shard leader has no analyzer for it
            raise _invalid(f"get highlight failed, the highlight field not found, {f.name}:{f.field_id}")
        tasks.setdefault(f.name, FieldTask(f)).query_texts.append(query.text)
    return Highlighter(options, list(tasks.values()))


def extend_fetch(schema: Schema, fetch: list[str], names: Iterable[str]) -> None:
    """Add ``names`` (and the validity of nullable ones) to a search's fetched columns, in place."""
    for name in names:
        f = schema.get(name)
        if f is None or name in fetch:
            continue
        fetch.append(name)
        if f.nullable and f"{name}.valid" not in fetch:
            fetch.append(f"{name}.valid")
