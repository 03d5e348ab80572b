"""``text_match`` and ``phrase_match`` in a filter: their field and arguments, checked as Milvus does.

Milvus 2.6's planner (planparserv2 ``VisitTextMatch`` / ``VisitPhraseMatch``) accepts them on a
VarChar field whose type params say ``enable_match`` is true (Go ``strconv.ParseBool``); the
query must be a string literal or template value; text_match's option is
``minimum_should_match=N`` with 1 <= N <= 1000; phrase_match's slop is a constant integer in
uint32 range (a non-integer constant reads as slop 0, as Milvus's ``GetInt64Val`` does). The
messages below are Milvus's, word for word (its typos included); the parser wraps them in
``cannot parse expression: ..., error: ...`` (code 1100). The field's type params travel in the
node, so a querynode evaluates it with the analyzer the field was created with.
"""

from __future__ import annotations

from pymilvus.grpc_gen.schema_pb2 import DataType

from common.errors import invalid
from common.expr.literals import INT64_MAX, INT64_MIN, parse_int
from common.expr.nodes import Column, Const, Kind, Node, PhraseMatch, TextMatch, show
from common.expr.rules import ExprError
from common.schema import Field, Schema

UINT32_MAX = 2**32 - 1
MIN_SHOULD_MATCH_LIMIT = 1000
_STRING_TYPES = (DataType.VarChar, DataType.String)
_GO_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})


def text_match(
    schema: Schema, name: str, query: Node, option: str | None, query_template: str | None = None
) -> TextMatch:
    """``text_match(name, query[, minimum_should_match=option])``; ``query_template`` names the
    ``{template}`` the query came from, if it did."""
    column, params, by = _text_field(schema, name, "text")
    text = _query(query, "text_match", column, query_template)
    least = 1 if option is None else _min_should_match(option)
    return TextMatch(Kind.BOOL, "Bool", column, text, params, by, least)


def phrase_match(
    schema: Schema, name: str, query: Node, slop: Node | None,
    query_template: str | None = None, slop_template: str | None = None,
) -> PhraseMatch:
    """``phrase_match(name, query[, slop])``. Milvus fills ``{templates}`` after planning: a
    query from one is checked then (a cast to the field's type), a slop from one is not a
    constant, so it is refused."""
    column, params, by = _text_field(schema, name, "phrase")
    text = _query(query, "phrase_match", column, query_template)
    slop_value = 0 if slop is None else _slop(slop, slop_template)
    return PhraseMatch(Kind.BOOL, "Bool", column, text, params, by, slop_value)


def match_enabled(field: Field) -> bool:
    """Whether ``field`` has an enable_match type param that Go's ParseBool reads as true."""
    return field.dtype in _STRING_TYPES and dict(field.extra_params).get("enable_match") in _GO_TRUE


def _text_field(schema: Schema, name: str, what: str) -> tuple[Column, tuple[tuple[str, str], ...], Column | None]:
    field = schema.get(name)
    if field is None:
        if schema.enable_dynamic_field and schema.dynamic_field is not None:
            raise ExprError(f"{what} match operation on non-string is unsupported")  # a "$meta" key
        raise ExprError(f"field {name} not exist")
    if field.dtype == DataType.Text:
        raise ExprError(f"filter on text field ({name}) is not supported yet")
    if field.dtype not in _STRING_TYPES:
        raise ExprError(f"{what} match operation on non-string is unsupported")
    if not match_enabled(field):
        raise ExprError(f'field "{name}" does not enable match')
    column = Column(Kind.STRING, DataType.Name(field.dtype), field.name, bool(field.nullable))
    return column, field.extra_params, _by_column(schema, field)


def _by_column(schema: Schema, field: Field) -> Column | None:
    """The column that picks each row's analyzer, for a field with a multi-analyzer (whose
    analyzers only the querynodes build: planning needs none)."""
    params = dict(field.extra_params)
    if "multi_analyzer_params" not in params:
        return None
    from common.analyzer import field_analyzers  # the analyzer package loads on first use

    by = field_analyzers(params).by_field
    other = schema.get(by) if by else None
    if other is None:
        return None
    label = DataType.Name(other.dtype) if other.dtype in DataType.values() else str(other.dtype)
    return Column(Kind.STRING, label, other.name, bool(other.nullable))


def _query(node: Node, what: str, column: Column, template: str | None) -> str:
    if isinstance(node, Const) and node.kind is Kind.STRING:
        return str(node.value)
    if template is not None and isinstance(node, Const):  # planparserv2 castValue, after planning
        raise invalid(f"cannot cast value to {column.label}, value: {_generic_value(node.value)}")
    raise ExprError(
        f"{what} query should be a string literal or template variable, got: {_source(node)}: invalid parameter"
    )


def _min_should_match(literal: str) -> int:
    value = parse_int(literal)
    if value > INT64_MAX:
        raise ExprError(f"invalid minimum_should_match value: {literal}")
    if value < 1:
        raise ExprError(f"minimum_should_match should be >= 1, got {value}")
    if value > MIN_SHOULD_MATCH_LIMIT:
        raise ExprError(f"minimum_should_match should be <= {MIN_SHOULD_MATCH_LIMIT}, got {value}")
    return value


def _slop(node: Node, template: str | None) -> int:
    text = template or _source(node)
    value = node.value if isinstance(node, Const) else None
    if template or not isinstance(node, Const) or (type(value) is int and not INT64_MIN <= value <= INT64_MAX):
        raise ExprError(
            f'"slop" should be a const integer expression with "uint32" value. "slop" expression passed: {text}'
        )
    slop = value if type(value) is int else 0  # Milvus reads any other constant's Int64 as 0
    if slop < 0:
        raise ExprError(f'"slop" should not be a negative interger. "slop" passed: {text}')
    if slop > UINT32_MAX:
        raise ExprError(f'"slop" exceeds the range of "uint32". "slop" expression passed: {text}')
    return slop


def _generic_value(value: object) -> str:
    """A template value as Go prints its planpb.GenericValue (prototext, one line)."""
    if isinstance(value, bool):
        return f"bool_val:{str(value).lower()}"
    if isinstance(value, int):
        return f"int64_val:{value}"
    if isinstance(value, float):
        return f"float_val:{value:g}"
    return f"array_val:{{{show(Const(Kind.LIST, 'Array', value))}}}"


def _source(node: Node) -> str:
    """The argument as Milvus quotes it (ANTLR's GetText: the tokens without the spaces)."""
    text = show(node)
    return text if '"' in text else text.replace(" ", "")
