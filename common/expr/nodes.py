"""The typed syntax tree of a compiled filter expression.

The builder turns a lark parse tree into these nodes after resolving every identifier
against the collection schema and checking operand types, so the evaluator never has to
re-check anything. Value nodes carry a :class:`Kind` (the evaluation class) and a
``label`` (Milvus's DataType name, used in error messages). "Boxed" nodes (JSON paths, array
elements and arithmetic on them) evaluate to object arrays of Python values, where a row
without a usable value holds :data:`MISSING`; everything else evaluates to typed numpy data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class Kind(Enum):
    """How a value evaluates; several schema types share one kind (Int8..Int64 are INT)."""

    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    STRING = "string"
    JSON = "json"
    ARRAY = "array"  # a whole Array field
    LIST = "list"  # a constant list literal


NUMERIC = (Kind.INT, Kind.FLOAT)


class _Missing:
    """Marks a row whose JSON key, array index or arithmetic has no usable value."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Node:
    kind: Kind
    label: str

    @property
    def boxed(self) -> bool:
        return False


# ---------------------------------------------------------------- values


@dataclass(frozen=True)
class Const(Node):
    value: Any


@dataclass(frozen=True)
class Column(Node):
    """A schema field read whole: scalar, JSON (including "$meta") or Array."""

    name: str
    nullable: bool = False
    elem: Kind | None = None  # element kind of an Array field
    elem_label: str = ""

    @property
    def boxed(self) -> bool:
        return self.kind is Kind.JSON


@dataclass(frozen=True)
class Path(Node):
    """``field["a"][0]``: a key path into a JSON field or an index into an Array field."""

    column: Column
    path: tuple[str | int, ...]

    @property
    def boxed(self) -> bool:
        return True


@dataclass(frozen=True)
class Arith(Node):
    op: str  # + - * / % **
    left: Node
    right: Node

    @property
    def boxed(self) -> bool:
        return self.left.boxed or self.right.boxed


@dataclass(frozen=True)
class TimeShift(Node):
    """A Timestamptz operand plus or minus an ISO 8601 interval (``ts + INTERVAL 'P1M'``)."""

    operand: Node
    years: int
    months: int
    seconds: int  # days, hours, minutes and seconds; all three carry the sign of the operation


@dataclass(frozen=True)
class Negate(Node):
    operand: Node

    @property
    def boxed(self) -> bool:
        return self.operand.boxed


@dataclass(frozen=True)
class Length(Node):
    """``array_length(x)`` of an Array field or a JSON path."""

    operand: Column | Path

    @property
    def boxed(self) -> bool:
        return self.operand.boxed


# ---------------------------------------------------------------- predicates


@dataclass(frozen=True)
class Compare(Node):
    op: str  # == != < <= > >=
    left: Node
    right: Node


@dataclass(frozen=True)
class InList(Node):
    operand: Node
    values: tuple[Any, ...]
    negate: bool


@dataclass(frozen=True)
class Like(Node):
    operand: Node
    pattern: str


@dataclass(frozen=True)
class Not(Node):
    operand: Node


@dataclass(frozen=True)
class And(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class NullTest(Node):
    operand: Column | Path
    is_null: bool


@dataclass(frozen=True)
class Exists(Node):
    operand: Path


@dataclass(frozen=True)
class Contains(Node):
    """json_contains / array_contains (mode "one"), *_all ("all") and *_any ("any")."""

    operand: Node
    values: tuple[Any, ...]
    mode: str


@dataclass(frozen=True)
class TextPredicate(Node):
    """``text_match`` / ``phrase_match`` on a VarChar field with enable_match: ``query`` is analyzed
    with the field's analyzer (its type params, ``params``); ``by`` is the column whose value picks
    each row's analyzer when the field has a multi-analyzer (None otherwise)."""

    column: Column
    query: str
    params: tuple[tuple[str, str], ...]
    by: Column | None


@dataclass(frozen=True)
class TextMatch(TextPredicate):
    """Rows holding at least ``min_should_match`` of the query's tokens (1: any of them)."""

    min_should_match: int


@dataclass(frozen=True)
class PhraseMatch(TextPredicate):
    """Rows holding the query's tokens at their relative positions, each moved by at most ``slop``."""

    slop: int


def show(node: Node) -> str:
    """Render a node back to expression text, for error messages."""
    if isinstance(node, Const):
        return _show_value(node.value)
    if isinstance(node, Column):
        return node.name
    if isinstance(node, Path):
        return node.column.name + "".join(f"[{_show_value(p)}]" for p in node.path)
    if isinstance(node, Arith):
        return f"{show(node.left)} {node.op} {show(node.right)}"
    if isinstance(node, Negate):
        return f"-{show(node.operand)}"
    if isinstance(node, Length):
        return f"array_length({show(node.operand)})"
    if isinstance(node, Compare):
        return f"{show(node.left)} {node.op} {show(node.right)}"
    if isinstance(node, TextMatch):
        option = f", minimum_should_match={node.min_should_match}" if node.min_should_match != 1 else ""
        return f"text_match({node.column.name}, {_show_value(node.query)}{option})"
    if isinstance(node, PhraseMatch):
        return f"phrase_match({node.column.name}, {_show_value(node.query)}, {node.slop})"
    return type(node).__name__.lower()


def _show_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show_value(v) for v in value) + "]"
    return repr(value)
