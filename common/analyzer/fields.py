"""The analyzers of one VARCHAR field, and the CreateCollection checks of its analyzer settings.

A field analyzes with its ``analyzer_params`` (Milvus's default when absent), or - BM25 input
fields only - with ``multi_analyzer_params``: several named analyzers, the row's ``by_field`` value
choosing one through ``alias`` and falling back to ``"default"`` (``MultiAnalyzerBM25FunctionRunner
.getAnalyzer``). :func:`check_field_analyzer` repeats rootcoord's ``validateAnalyzer`` and
``validateMultiAnalyzerParams`` and then the querynode's ``ValidateAnalyzer`` of each analyzer, with
their messages (plain Go errors, code 1100).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from common.analyzer.builder import DEFAULT_ANALYZER, build_analyzer, go_json_kind
from common.analyzer.errors import AnalyzerError, plain
from common.analyzer.pipeline import Analyzer
from common.errors import MilvusError

_TRUE = frozenset(("1", "t", "T", "TRUE", "true", "True"))
_VARCHAR = 21  # schemapb.DataType.VarChar


def go_bool(value: str | None) -> bool:
    """Go ``strconv.ParseBool`` true (anything unparsable is false, as Milvus reads it)."""
    return value in _TRUE


def _raw(value: Any) -> str:
    """A JSON value printed back as Go prints a ``json.RawMessage`` of pymilvus's compact JSON."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class FieldAnalyzers:
    """What one VARCHAR field analyzes with: one analyzer, or named ones picked per row."""

    __slots__ = ("alias", "analyzers", "by_field", "_single")

    def __init__(self, single: Analyzer | None = None, analyzers: Mapping[str, Analyzer] | None = None,
                 alias: Mapping[str, str] | None = None, by_field: str | None = None) -> None:
        self.by_field = by_field
        self.analyzers = dict(analyzers or {})
        self.alias = dict(alias or {})
        self._single = single if single is not None else DEFAULT_ANALYZER

    def get(self, name: str | None = None) -> Analyzer:
        """The analyzer for a row's ``by_field`` value or a search's ``analyzer_name``: through
        ``alias``, else ``"default"`` (itself aliasable). A single-analyzer field ignores ``name``."""
        if self.by_field is None:
            return self._single
        key = name or ""
        key = self.alias.get(key, key)
        found = self.analyzers.get(key)
        if found is not None:
            return found
        key = self.alias.get("default", "default")
        found = self.analyzers.get(key)
        return found if found is not None else self.analyzers["default"]


def _json_object(params: str) -> dict[str, Any]:
    """``multi_analyzer_params`` decoded as Go decodes it into a map[string]json.RawMessage."""
    try:
        m = json.loads(params)
    except ValueError as err:
        raise plain(str(err)) from None
    if not isinstance(m, dict):
        raise plain(f"json: cannot unmarshal {go_json_kind(m)} into Go value of type map[string]json.RawMessage")
    return m


def _runtime_multi(params: str) -> FieldAnalyzers:
    """``multi_analyzer_params`` as the BM25 function runner reads them (already validated)."""
    m = _json_object(params)
    if "by_field" not in m:
        raise plain("bm25 function with multi analyzer must have by_field param in multi_analyzer_params")
    by_field = m["by_field"]
    if by_field is not None and not isinstance(by_field, str):
        raise plain(f"bm25 function with multi analyzer by_field must be string but now: {_raw(by_field)}")
    alias = m.get("alias")
    if alias is None:
        alias = {}
    elif not isinstance(alias, dict) or not all(isinstance(v, str) for v in alias.values()):
        raise plain(f"bm25 function with multi analyzer mapping must be string map but now: {_raw(alias)}")
    if "analyzers" not in m:
        raise plain("bm25 function with multi analyzer must have analyzers param in multi_analyzer_params")
    specs = m["analyzers"] if m["analyzers"] is not None else {}
    if not isinstance(specs, dict):
        raise plain("bm25 function unmarshal multi_analyzer_params analyzers failed : json: cannot unmarshal "
                    f"{go_json_kind(specs)} into Go value of type map[string]json.RawMessage")
    analyzers = {}
    for name, spec in specs.items():
        try:
            analyzers[name] = build_analyzer(_raw(spec))
        except MilvusError as err:
            raise plain(f"bm25 function create analyzer {name} failed with error: {err.message}") from None
    if "default" not in analyzers:
        raise plain("multi analyzer must set default analyzer for all unknown value")
    return FieldAnalyzers(analyzers=analyzers, alias=alias, by_field=by_field or "")


@lru_cache(maxsize=1024)
def _field_analyzers(analyzer_params: str | None, multi_params: str | None) -> FieldAnalyzers:
    if multi_params is not None:
        return _runtime_multi(multi_params)
    return FieldAnalyzers(single=build_analyzer(analyzer_params))


def field_analyzers(type_params: Mapping[str, str]) -> FieldAnalyzers:
    """The analyzers of a field from its type params (``analyzer_params``/``multi_analyzer_params``
    JSON text, as pymilvus sends them); cached by content."""
    return _field_analyzers(type_params.get("analyzer_params"), type_params.get("multi_analyzer_params"))


def _multi_analyzer_specs(params: str, fields: Mapping[str, int], collection: str) -> list[tuple[str, str]]:
    """rootcoord ``validateMultiAnalyzerParams``: the (name, params JSON) of each analyzer."""
    m = _json_object(params)
    if "by_field" not in m:
        raise plain("multi analyzer params now must set by_field to specify with field decide analyzer")
    by_field = m["by_field"]
    if by_field is not None and not isinstance(by_field, str):
        raise plain(f"multi analyzer params by_field must be string but now: {_raw(by_field)}")
    name = by_field or ""
    if name not in fields:
        raise plain(f"multi analyzer dependent field {_raw(by_field)} not exist in collection {collection}")
    if fields[name] != _VARCHAR:
        raise plain(f"multi analyzer params now only support by string field, but field {name} is not string")
    if "alias" in m:
        alias = m["alias"]
        if alias is not None and (not isinstance(alias, dict) or not all(isinstance(v, str) for v in alias.values())):
            raise plain(f"multi analyzer alias must be string map but now: {_raw(alias)}")
    if "analyzers" not in m:
        raise plain("multi analyzer params must set analyzers ")
    specs = m["analyzers"] if m["analyzers"] is not None else {}
    if not isinstance(specs, dict):
        raise plain("unmarshal analyzers failed: json: cannot unmarshal "
                    f"{go_json_kind(specs)} into Go value of type map[string]json.RawMessage")
    if "default" not in specs:
        raise plain("multi analyzer must set default analyzer for all unknown value")
    return [(key, _raw(value)) for key, value in specs.items()]


def _validate(field: str, name: str, params: str) -> None:
    """The querynode's ``ValidateAnalyzer`` of one analyzer."""
    try:
        build_analyzer(params)
    except AnalyzerError as err:
        named = f", name: {name}" if name else ""
        raise plain(f"validate analyzer failed for field: {field}{named}, error: "
                    f"{err.segcore_text('tokenizer')}: invalid parameter") from None


def check_field_analyzer(type_params: Mapping[str, str], field_names_and_types: Mapping[str, int],
                         nullable: Mapping[str, bool], *, field_name: str = "", collection_name: str = "",
                         bm25_input: bool | None = None) -> None:
    """Milvus's CreateCollection checks of a VARCHAR field's analyzer settings.

    ``field_names_and_types``: every field of the collection -> its DataType. ``nullable`` is
    accepted for the callers' convenience: Milvus lets ``by_field`` be nullable (a null row uses the
    default analyzer). ``bm25_input``: whether the field feeds a BM25 function; Milvus checks the
    analyzer only of fields with ``enable_match`` or BM25 input - when the caller does not say
    (None), every field with ``enable_analyzer`` is checked."""
    del nullable
    enable_match = go_bool(type_params.get("enable_match"))
    enable_analyzer = go_bool(type_params.get("enable_analyzer"))
    wanted = enable_analyzer if bm25_input is None else bm25_input
    if not enable_match and not wanted:
        return
    if not enable_analyzer:
        raise plain(f"field {field_name} which has enable_match or is input of BM25 function must also "
                    "enable_analyzer")
    multi = type_params.get("multi_analyzer_params")
    if multi is not None:
        if enable_match:
            raise plain(f"multi analyzer now only support for bm25, but now field {field_name} enable match")
        if "analyzer_params" in type_params:
            raise plain(f"field {field_name} analyzer params should be none if has multi analyzer params")
        for name, params in _multi_analyzer_specs(multi, field_names_and_types, collection_name):
            _validate(field_name, name, params)
        return
    if "analyzer_params" in type_params:
        _validate(field_name, "", type_params["analyzer_params"])
