"""``build_analyzer``: a field's ``analyzer_params`` to an :class:`Analyzer`, checked as Milvus does.

Milvus checks the params in Go first (valid JSON object; a ``tokenizer`` that is a name or a dict
with a string ``type``; lindera's system keys), then builds them in Rust (``create_analyzer``):

- ``""``/``{}``: the default analyzer (standard tokenizer + lowercase);
- ``{"type": "standard"|"english"|"chinese", "stop_words": [...]}``: a built-in analyzer (other keys
  are ignored);
- ``{"tokenizer": name-or-dict, "filter": [...]}``: a custom analyzer; its other keys are errors,
  found in sorted key order as Rust's JSON map iterates them.

Built analyzers are cached by their JSON text, so every field and request with the same params
shares one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from common.analyzer import filters, icu, tokenizers
from common.analyzer._stop_words import ENGLISH
from common.analyzer.errors import ParamError, analyzer_error, go_error, internal_error, invalid_argument, unsupported
from common.analyzer.jieba_tokenizer import DEFAULT_JIEBA, jieba_from_params
from common.analyzer.pipeline import Analyzer, Filter, Tokenizer
from common.errors import Code, MilvusError

_ENGLISH_STOP = filters.StopFilter(frozenset(ENGLISH.split(" ")))


def _with_stop_words(base: list[Filter], words: frozenset[str]) -> list[Filter]:
    return base + [filters.StopFilter(words)] if words else base


def standard_analyzer(stop: frozenset[str] = frozenset(), params: str = "") -> Analyzer:
    """Milvus's default: standard tokenizer, lowercase (and stop words)."""
    return Analyzer(tokenizers.STANDARD, _with_stop_words([filters.LOWERCASE], stop), params)


def english_analyzer(stop: frozenset[str] = frozenset(), params: str = "") -> Analyzer:
    """standard tokenizer, lowercase, English stemmer, then English stop words (stemmed words are tested)."""
    base = [filters.LOWERCASE, filters.ENGLISH_STEMMER, _ENGLISH_STOP]
    return Analyzer(tokenizers.STANDARD, _with_stop_words(base, stop), params)


def chinese_analyzer(stop: frozenset[str] = frozenset(), params: str = "") -> Analyzer:
    """jieba (search mode, HMM) and cnalphanumonly."""
    return Analyzer(DEFAULT_JIEBA, _with_stop_words([filters.CN_ALPHANUM_ONLY], stop), params)


DEFAULT_ANALYZER = standard_analyzer()
_BUILT_IN = {"standard": standard_analyzer, "english": english_analyzer, "chinese": chinese_analyzer}
_MUST_CUSTOMIZE = {
    "lindera": "lindera tokenizer must be customized",
    "char_group": "char group tokenizer must be customized",
    "grpc": "grpc tokenizer must be customized",
    "language_identifier": "lang ident tokenizer must be customized",
}
_NOT_SUPPORTED = {
    "lindera": "lindera tokenizer (it needs downloaded dictionaries)",
    "grpc": "grpc tokenizer (an external tokenizer service)",
    "language_identifier": "language_identifier tokenizer",
}


def go_json_kind(value: Any) -> str:
    """The JSON kind Go's ``json.Unmarshal`` names in its type errors."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def parse_params(text: str) -> Any:
    """``analyzer_params`` text as Go's ``CheckAndFillParams`` reads it (JSON object or null)."""
    try:
        value = json.loads(text)
    except ValueError as err:
        raise go_error(f"unmarshal analyzer params failed with json error: {err}") from None
    if value is not None and not isinstance(value, dict):
        raise go_error("unmarshal analyzer params failed with json error: json: cannot unmarshal "
                       f"{go_json_kind(value)} into Go value of type map[string]interface {{}}")
    return value


def _check_tokenizer_shape(params: Mapping[str, Any]) -> None:
    """Go's checks of the ``tokenizer`` value, made before Rust sees the params."""
    if "tokenizer" not in params:
        return
    tok = params["tokenizer"]
    if isinstance(tok, str):
        return
    if not isinstance(tok, dict):
        raise go_error("analyzer params set tokenizer with unknown type")
    if "type" not in tok:
        raise go_error("costom tokenizer must set type")
    if not isinstance(tok["type"], str):
        raise go_error("costom tokenizer type must be string")
    if tok["type"] == "lindera":
        if "dict_build_dir" in tok:
            raise go_error("costom tokenizer dict_build_dir was system params, should not be set")
        if "dict_kind" not in tok:
            raise go_error("lindera tokenizer must set dict_kind")
        if not isinstance(tok["dict_kind"], str):
            raise go_error("lindera tokenizer dict kind must be string")
        if "download_urls" in tok:
            raise go_error("costom tokenizer download_urls was system params, should not be set")


def _tokenizer(value: Any) -> Tokenizer:
    """Milvus ``get_builder_with_tokenizer``: a tokenizer name, or a dict with its ``type``."""
    if isinstance(value, str):
        name, params = value, None
    else:
        if "type" not in value:
            raise invalid_argument("customized tokenizer must set type")
        name, params = value["type"], value
        if not isinstance(name, str):
            raise invalid_argument("tokenizer type should be string")
    if name == "standard":
        return tokenizers.STANDARD
    if name == "whitespace":
        return tokenizers.WHITESPACE
    if name == "icu":
        return icu.ICU
    if name == "jieba":
        return DEFAULT_JIEBA if params is None else jieba_from_params(params)
    if name in _MUST_CUSTOMIZE and params is None:
        raise invalid_argument(_MUST_CUSTOMIZE[name])
    if name == "char_group":
        assert params is not None
        return tokenizers.char_group(params)
    if name in _NOT_SUPPORTED:
        raise unsupported(_NOT_SUPPORTED[name])
    raise invalid_argument(f"unsupported tokenizer: {name}")


def _stop_words_option(params: Mapping[str, Any]) -> frozenset[str]:
    if "stop_words" not in params:
        return frozenset()
    return filters.stop_words(filters.string_list(params["stop_words"], "filter stop_words"))


def analyzer_from_map(params: Mapping[str, Any], text: str = "") -> Analyzer:
    """Milvus ``create_analyzer_by_json`` on a parsed params object."""
    if not params:
        return DEFAULT_ANALYZER
    if "type" in params:
        kind = params["type"]
        if not isinstance(kind, str):
            raise internal_error("analyzer type shoud be string")
        build = _BUILT_IN.get(kind)
        if build is None:
            raise internal_error(f"unknown build-in analyzer type: {kind}")
        return build(_stop_words_option(params), text)
    if "tokenizer" not in params:
        raise internal_error("tokenizer name or type must be set")
    tok = params["tokenizer"]
    if not isinstance(tok, (str, dict)):
        raise internal_error("tokenizer name should be string or dict")
    tokenizer = _tokenizer(tok)
    stages: list[Filter] = []
    for key in sorted(params):
        if key == "tokenizer":
            continue
        if key != "filter":
            raise internal_error(f"unknown analyzer option key: {key}")
        stages = filters.filter_list(params[key])
    return Analyzer(tokenizer, stages, text)


def _build(text: str) -> Analyzer:
    if not text:
        return DEFAULT_ANALYZER
    params = parse_params(text)
    if params is None:
        raise internal_error("params should be a json map")
    _check_tokenizer_shape(params)
    return analyzer_from_map(params, text)


_CACHE: dict[str, Analyzer] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_LIMIT = 1024


def _cache_key(text: str) -> str:
    """Params texts that differ only in JSON spacing share a cache entry."""
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":")) if text else ""
    except ValueError:
        return text


def _cached(text: str) -> Analyzer:
    key = _cache_key(text)
    found = _CACHE.get(key)
    if found is not None:
        return found
    try:
        built = _build(text)
    except ParamError as err:
        raise analyzer_error(err, text) from None
    with _CACHE_LOCK:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        return _CACHE.setdefault(key, built)


def params_text(params: Mapping[str, Any] | str | None) -> str:
    """``analyzer_params`` as the JSON text pymilvus sends (``orjson.dumps``: compact; ``""`` for none)."""
    if params is None:
        return ""
    if isinstance(params, str):
        return params
    try:
        return json.dumps(params, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise MilvusError(Code.PARAMETER_INVALID, f"analyzer params are not JSON: {err}") from None


def build_analyzer(params: Mapping[str, Any] | str | None) -> Analyzer:
    """The analyzer for ``analyzer_params`` (a dict or its JSON text; None/"" for Milvus's default).

    Raises :class:`common.analyzer.errors.AnalyzerError` (a ``MilvusError``, code 1100) with
    Milvus's message when the params are bad."""
    return _cached(params_text(params))
