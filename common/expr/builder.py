"""Turns a lark parse tree into the typed node tree, checking it against the schema.

One :class:`Builder` per compilation: it resolves identifiers (schema fields, then keys of
the dynamic "$meta" field when enable_dynamic_field is on), substitutes template values,
folds constant sub-expressions and raises :class:`ExprError` with Milvus's wording for
anything Milvus would reject.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lark import Token, Transformer
from pymilvus.grpc_gen.schema_pb2 import DataType

from common import timestamptz
from common.errors import MilvusError
from common.expr import textcalls
from common.expr.boxed import dedupe
from common.expr.functions import build_call
from common.expr.literals import INT64_MAX, INT64_MIN, const_of, parse_int, unquote
from common.expr.nodes import (
    NUMERIC,
    And,
    Arith,
    Column,
    Compare,
    Const,
    Exists,
    InList,
    Kind,
    Like,
    Negate,
    Node,
    Not,
    NullTest,
    Or,
    Path,
    TimeShift,
    show,
)
from common.expr.rules import (
    REVERSED,
    ExprError,
    arith_kind,
    cast_values,
    check_divisor,
    comparable,
    fold_arith,
    fold_compare,
)
from common.schema import Field, Schema

_KINDS: dict[int, Kind] = {
    DataType.Bool: Kind.BOOL,
    DataType.Int8: Kind.INT,
    DataType.Int16: Kind.INT,
    DataType.Int32: Kind.INT,
    DataType.Int64: Kind.INT,
    DataType.Float: Kind.FLOAT,
    DataType.Double: Kind.FLOAT,
    DataType.String: Kind.STRING,
    DataType.VarChar: Kind.STRING,
    DataType.JSON: Kind.JSON,
    DataType.Array: Kind.ARRAY,
    DataType.Timestamptz: Kind.INT,  # UTC microseconds, compared with ISO '...' literals
}
TIMESTAMPTZ = "Timestamptz"
INTERVAL = "Interval"
_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_BIT_NAMES = {"&": "BitAnd", "|": "BitOr", "^": "BitXor", "<<": "shift", ">>": "shift"}
TRUE = Const(Kind.BOOL, "Bool", True)
FALSE = Const(Kind.BOOL, "Bool", False)


def type_name(node: Node) -> str:
    """Milvus's name for a node's type in messages (Array fields show their element type)."""
    if isinstance(node, Column) and node.kind is Kind.ARRAY:
        return f"Array[{node.elem_label}]"
    return node.label


class Builder(Transformer[Token, Node | None]):
    """Bottom-up construction of typed nodes; see the module docstring."""

    def __init__(
        self,
        schema: Schema,
        params: Mapping[str, Any] | None,
        lists: Mapping[str, tuple[Any, ...]] | None = None,
    ) -> None:
        super().__init__()
        self._schema = schema
        self._params = params or {}
        self._lists = lists or {}  # literal lists cut out of the text before parsing
        self._filled: list[tuple[Node, str]] = []  # values of {templates}, which Milvus fills after parsing

    # ------------------------------------------------------------ literals and names

    def start(self, children: list[Node]) -> Node | None:
        return children[0] if children else None

    def int_(self, children: list[Token]) -> Node:
        return Const(Kind.INT, "Int64", parse_int(children[0]))

    def float_(self, children: list[Token]) -> Node:
        return Const(Kind.FLOAT, "Double", float(children[0]))

    def string(self, children: list[Token]) -> Node:
        return Const(Kind.STRING, "VarChar", unquote(children[0]))

    def iso(self, children: list[Token]) -> Node:
        """``ISO '2025-01-01T00:00:00+08:00'``: a Timestamptz value; without an offset the text is
        read in the collection's time zone (property ``timezone``), as Milvus's planner does."""
        try:
            return Const(Kind.INT, TIMESTAMPTZ, timestamptz.parse_one(unquote(children[1]), self._schema.timezone))
        except MilvusError as exc:
            raise ExprError(exc.message) from None

    def interval(self, children: list[Token]) -> Node:
        """``INTERVAL 'P1Y2M3DT4H5M6S'``: an ISO 8601 duration (checked where it is used)."""
        text = unquote(children[1])
        if _DURATION.match(text) is None:
            raise ExprError(f"invalid ISO 8601 duration: {text}")
        return Const(Kind.INT, INTERVAL, text)

    def bool_(self, children: list[Token]) -> Node:
        return TRUE if children[0].lower() == "true" else FALSE

    def list_(self, children: list[Node]) -> Node:
        for item in children:
            if not isinstance(item, Const):
                raise ExprError(f"array element type must be generic value, but got: {show(item)}")
        return Const(Kind.LIST, "Array", tuple(c.value for c in children if isinstance(c, Const)))

    def template(self, children: list[Token]) -> Node:
        name = str(children[0])
        if name in self._lists:
            return Const(Kind.LIST, "Array", self._lists[name])
        if name not in self._params:
            raise ExprError(f"the value of expression template variable name {{{name}}} is not found")
        try:
            node = const_of(self._params[name])
        except ValueError as exc:
            raise ExprError(f"template variable {{{name}}}: {exc}") from None
        self._filled.append((node, name))
        return node

    def ident(self, children: list[Token]) -> Node:
        name = str(children[0])
        field = self._schema.get(name)
        if field is not None:
            return self._column(field)
        dynamic = self._schema.dynamic_field if self._schema.enable_dynamic_field else None
        if dynamic is None or name == "$meta":
            raise ExprError(f"field {name} not exist")
        return Path(Kind.JSON, "JSON", self._column(dynamic), (name,))

    def _column(self, field: Field) -> Column:
        label = DataType.Name(field.dtype) if field.dtype in DataType.values() else str(field.dtype)
        if field.is_vector:
            raise ExprError(f"filter on vector field ({field.name}) is not supported")
        if field.dtype == DataType.Text:
            raise ExprError(f"filter on text field ({field.name}) is not supported yet")
        kind = _KINDS.get(field.dtype)
        if kind is None:
            raise ExprError(f"filter on {label} field ({field.name}) is not supported")
        if kind is not Kind.ARRAY:
            return Column(kind, label, field.name, bool(field.nullable))
        elem = _KINDS.get(field.element_type)
        if elem is None or elem in (Kind.ARRAY, Kind.JSON):
            raise ExprError(f"array field ({field.name}) has unsupported element type")
        return Column(kind, label, field.name, bool(field.nullable), elem, DataType.Name(field.element_type))

    def index(self, children: list[Token]) -> str | int:
        tok = children[0]
        return parse_int(tok) if tok.type == "INT" else unquote(tok)

    def subscript(self, children: list[Any]) -> Node:
        base, key = children
        if isinstance(key, str) and not key:
            raise ExprError(f"invalid identifier: {show(base)}[\"\"]")
        if isinstance(base, Path) and base.column.kind is Kind.JSON:
            return Path(Kind.JSON, "JSON", base.column, (*base.path, key))
        if isinstance(base, Column) and base.kind is Kind.JSON:
            return Path(Kind.JSON, "JSON", base, (key,))
        if isinstance(base, Column) and base.kind is Kind.ARRAY:
            if not isinstance(key, int):
                raise ExprError("can only access array field with integer index")
            assert base.elem is not None
            return Path(base.elem, base.elem_label, base, (key,))
        if isinstance(base, (Column, Path)):
            raise ExprError(f"{base.label} data type not supported accessed with []")
        raise ExprError(f"invalid identifier: {show(base)}")

    # ------------------------------------------------------------ arithmetic

    def arith(self, children: list[Any]) -> Node:
        left, op_tok, right = children
        op = str(op_tok)
        if INTERVAL in (left.label, right.label):
            return self._shift_time(left, op, right)
        kind, label = arith_kind(op, left, right)
        if isinstance(left, Const) and isinstance(right, Const):
            return const_of(fold_arith(op, left.value, right.value))
        if isinstance(right, Const):
            check_divisor(op, right.value)
        for side in (left, right):
            if isinstance(side, Const) and isinstance(side.value, int) and not _fits_int64(side.value):
                raise ExprError(f"value {side.value} is out of range of Int64")
        return Arith(kind, label, op, left, right)

    def _shift_time(self, left: Node, op: str, right: Node) -> Node:
        """``column +/- INTERVAL '...'``: the only arithmetic an interval takes part in."""
        if right.label != INTERVAL or left.label != TIMESTAMPTZ or op not in "+-" or isinstance(left, Const):
            raise ExprError(f"an interval can only be added to or subtracted from a Timestamptz field: "
                            f"{show(left)} {op} {show(right)}")
        assert isinstance(right, Const)
        m = _DURATION.match(right.value)
        assert m is not None
        years, months, days, hours, minutes, seconds = (int(g or 0) for g in m.groups())
        sign = 1 if op == "+" else -1
        fixed = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
        return TimeShift(Kind.INT, TIMESTAMPTZ, left, sign * years, sign * months, sign * fixed)

    def unary(self, children: list[Any]) -> Node:
        op, operand = str(children[0]), children[1]
        if operand.kind not in NUMERIC and operand.kind is not Kind.JSON:
            raise ExprError(f"unary {op} cannot be applied on {type_name(operand)}")
        if op == "+":
            return operand
        if isinstance(operand, Const):
            return const_of(-operand.value)
        return Negate(operand.kind, operand.label, operand)

    def bitwise(self, children: list[Any]) -> Node:
        left, op, right = children
        raise ExprError(f"{_BIT_NAMES[str(op)]} is not supported: {show(left)}{op}{show(right)}")

    def bitwise_not(self, children: list[Any]) -> Node:
        raise ExprError(f"BitNot is not supported: ~{show(children[1])}")

    # ------------------------------------------------------------ predicates

    def compare(self, children: list[Any]) -> Node:
        operands = children[0::2]
        ops = [str(t) for t in children[1::2]]
        if len(ops) == 2 and ({*ops} <= {"<", "<="} or {*ops} <= {">", ">="}):
            low, mid, high = operands
            return self._and([self._compare(low, ops[0], mid), self._compare(mid, ops[1], high)])
        node = operands[0]
        for op, right in zip(ops, operands[1:], strict=True):
            node = self._compare(node, op, right)
        return node

    def _compare(self, left: Node, op: str, right: Node) -> Node:
        if INTERVAL in (left.label, right.label):
            raise ExprError(f"an interval can only be added to or subtracted from a Timestamptz field: "
                            f"{show(left)} {op} {show(right)}")
        for a, b in ((left, right), (right, left)):
            if isinstance(a, Const) and a.label == TIMESTAMPTZ and not isinstance(b, Const) and b.label != TIMESTAMPTZ:
                raise ExprError(f"field '{show(b)}' is not a timestamptz datatype")
        if not comparable(left, right):
            if isinstance(left, Const) and isinstance(right, Const):
                raise ExprError(
                    "comparison operations cannot be applied to two incompatible operands: "
                    f"{show(left)} {op} {show(right)}"
                )
            raise ExprError(
                f"comparisons between {type_name(left)} and {type_name(right)} are not supported"
            )
        if isinstance(left, Const) and isinstance(right, Const):
            return TRUE if fold_compare(op, left.value, right.value) else FALSE
        if isinstance(left, Const):
            left, right, op = right, left, REVERSED[op]
        kinds = (left.kind, right.kind)
        if (Kind.ARRAY in kinds or Kind.LIST in kinds) and op not in ("==", "!="):
            raise ExprError("can not comparisons array fields directly")
        return Compare(Kind.BOOL, "Bool", op, left, right)

    def in_(self, children: list[Any]) -> Node:
        return self._term(children[0], children[-1], negate=False)

    def not_in(self, children: list[Any]) -> Node:
        return self._term(children[0], children[-1], negate=True)

    def _term(self, operand: Node, values: Node, negate: bool) -> Node:
        if isinstance(operand, Const):
            raise ExprError(f"'term' can only be used on non-const expression, but got: {show(operand)}")
        if operand.kind in (Kind.ARRAY, Kind.LIST):
            raise ExprError(f"'term' can not be used on an array field, got: {show(operand)}")
        if not isinstance(values, Const) or values.kind is not Kind.LIST:
            raise ExprError(f"the right-hand side of 'in' must be a list, but got: {show(values)}")
        cast = cast_values(values.value, operand.kind, operand.label)
        return InList(Kind.BOOL, "Bool", operand, dedupe(cast), negate)

    def like(self, children: list[Any]) -> Node:
        operand, pattern = children[0], children[-1]
        if not isinstance(operand, (Column, Path)):
            raise ExprError("like operation on complicated expr is unsupported")
        if operand.kind not in (Kind.STRING, Kind.JSON):
            raise ExprError("like operation on non-string or no-json field is unsupported")
        if not isinstance(pattern, Const) or pattern.kind is not Kind.STRING:
            raise ExprError(f"the pattern of like must be a string, but got: {show(pattern)}")
        return Like(Kind.BOOL, "Bool", operand, pattern.value)

    def is_null(self, children: list[Any]) -> Node:
        return self._null_test(children[0], is_null=True)

    def is_not_null(self, children: list[Any]) -> Node:
        return self._null_test(children[0], is_null=False)

    def _null_test(self, operand: Node, is_null: bool) -> Node:
        if not isinstance(operand, (Column, Path)):
            raise ExprError(f"is null operations are only supported on fields, got: {show(operand)}")
        return NullTest(Kind.BOOL, "Bool", operand, is_null)

    def exists(self, children: list[Any]) -> Node:
        operand = children[1]
        if not isinstance(operand, (Column, Path)):
            raise ExprError(
                f"exists operations are only supported on single fields now, got: {show(operand)}"
            )
        column = operand.column if isinstance(operand, Path) else operand
        if column.kind is not Kind.JSON:
            raise ExprError(f"exists operations are only supportted on json field, got:{column.label}")
        if not isinstance(operand, Path):
            raise ExprError("exists operations are only supportted on json key")
        return Exists(Kind.BOOL, "Bool", operand)

    def call(self, children: list[Any]) -> Node:
        return build_call(str(children[0]), children[1:])

    def text_match(self, children: list[Any]) -> Node:
        """``text_match(field, query[, minimum_should_match=N])``: keyword, field name, query, option."""
        option = str(children[4]) if len(children) > 4 else None
        return textcalls.text_match(self._schema, str(children[1]), children[2], option, self._template_of(children[2]))

    def phrase_match(self, children: list[Any]) -> Node:
        """``phrase_match(field, query[, slop])``."""
        slop = children[3] if len(children) > 3 else None
        return textcalls.phrase_match(
            self._schema, str(children[1]), children[2], slop, self._template_of(children[2]), self._template_of(slop)
        )

    def _template_of(self, node: Node | None) -> str | None:
        """``{name}`` if ``node`` is the value of that template (Milvus fills those after planning)."""
        return next((f"{{{name}}}" for filled, name in self._filled if filled is node), None)

    # ------------------------------------------------------------ logic

    def not_(self, children: list[Any]) -> Node:
        operand = children[1]
        if operand.kind is not Kind.BOOL:
            raise ExprError("not op can only be applied on boolean expression")
        if isinstance(operand, Const):
            return FALSE if operand.value else TRUE
        return Not(Kind.BOOL, "Bool", operand)

    def and_expr(self, children: list[Any]) -> Node:
        return self._and(children[0::2])

    def or_expr(self, children: list[Any]) -> Node:
        return self._or(children[0::2])

    def _and(self, items: list[Node]) -> Node:
        flat = _logical_items(items, And, "and")
        if any(isinstance(i, Const) and not i.value for i in flat):
            return FALSE
        rest = tuple(i for i in flat if not isinstance(i, Const))
        return rest[0] if len(rest) == 1 else (And(Kind.BOOL, "Bool", rest) if rest else TRUE)

    def _or(self, items: list[Node]) -> Node:
        flat = _logical_items(items, Or, "or")
        if any(isinstance(i, Const) and i.value for i in flat):
            return TRUE
        rest = tuple(i for i in flat if not isinstance(i, Const))
        return rest[0] if len(rest) == 1 else (Or(Kind.BOOL, "Bool", rest) if rest else FALSE)


def _logical_items(items: list[Node], cls: type[And] | type[Or], name: str) -> list[Node]:
    flat: list[Node] = []
    for item in items:
        if item.kind is not Kind.BOOL:
            raise ExprError(f"'{name}' can only be used between boolean expressions")
        flat.extend(item.items if isinstance(item, cls) else (item,))
    return flat


def _fits_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX
