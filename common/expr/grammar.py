"""The Milvus filter-expression grammar, as a cached LALR(1) lark parser.

Milvus defines its boolean filter language in ANTLR (internal/parser/planparserv2/Plan.g4).
This is our own lark grammar for the same surface syntax. Precedence, loosest first:
``or`` < ``and`` < ``not`` < comparisons (``== != < <= > >=`` chains, ``in``, ``like``,
``is [not] null``) < ``|`` < ``^`` < ``&`` < shifts < ``+ -`` < ``* / %`` < unary ``- +``
and ``exists`` < ``**`` < subscripts and calls. Unlike Milvus, ``not`` binds looser than a
comparison, so ``not a > 1`` means ``not (a > 1)`` (Milvus rejects it as ``(not a) > 1``).
Bitwise and shift operators parse so that they can be rejected with Milvus's message.

Keywords are reserved words (as in Milvus), matched whole, in lower or upper case as Milvus
allows (``and``/``AND``). ``text_match(field, query[, minimum_should_match=N])`` and
``phrase_match(field, query[, slop])`` have rules of their own, as in Milvus's grammar: the
first argument is a bare field name, and the option of text_match is ``minimum_should_match``
``=`` an integer literal (lexed as one token with its ``=``, so a lone ``=`` elsewhere is still
the token recognition error Milvus reports).
"""

from __future__ import annotations

from functools import cache

from lark import Lark, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

GRAMMAR = r"""
start: expr?

?expr: or_expr

?or_expr: and_expr (OR and_expr)*

?and_expr: not_expr (AND not_expr)*

?not_expr: comparison
         | NOT not_expr -> not_

?comparison: bit_or
           | bit_or (CMP_OP bit_or)+ -> compare
           | bit_or IN bit_or -> in_
           | bit_or NOT IN bit_or -> not_in
           | bit_or LIKE bit_or -> like
           | bit_or IS NULL -> is_null
           | bit_or IS NOT NULL -> is_not_null

?bit_or: bit_xor
       | bit_or BOR bit_xor -> bitwise
?bit_xor: bit_and
        | bit_xor BXOR bit_and -> bitwise
?bit_and: shift
        | bit_and BAND shift -> bitwise
?shift: sum
      | shift SHIFT_OP sum -> bitwise

?sum: product
    | sum ADD_OP product -> arith

?product: unary
        | product MUL_OP unary -> arith

?unary: power
      | ADD_OP unary -> unary
      | BNOT unary -> bitwise_not
      | EXISTS unary -> exists

?power: postfix
      | postfix POW unary -> arith

?postfix: primary
        | postfix "[" index "]" -> subscript

index: STRING | INT

?primary: INT -> int_
        | FLOAT -> float_
        | STRING -> string
        | ISO STRING -> iso
        | INTERVAL STRING -> interval
        | BOOL -> bool_
        | IDENT -> ident
        | META -> ident
        | "(" expr ")"
        | "[" [expr ("," expr)* [","]] "]" -> list_
        | "{" IDENT "}" -> template
        | IDENT "(" [expr ("," expr)* [","]] ")" -> call
        | TEXT_MATCH "(" IDENT "," expr ["," MIN_SHOULD_MATCH INT] ")" -> text_match
        | PHRASE_MATCH "(" IDENT "," expr ["," expr] ")" -> phrase_match

OR.3: /(or|OR)\b/ | "||"
AND.3: /(and|AND)\b/ | "&&"
NOT.3: /(not|NOT)\b/ | /!(?!=)/
IN.3: /(in|IN)\b/
LIKE.3: /(like|LIKE)\b/
IS.3: /(is|IS)\b/
NULL.3: /(null|NULL)\b/
EXISTS.3: /(exists|EXISTS)\b/
ISO.3: /(iso|ISO)\b/
INTERVAL.3: /(interval|INTERVAL)\b/
BOOL.3: /(true|True|TRUE|false|False|FALSE)\b/
TEXT_MATCH.3: /(text_match|TEXT_MATCH)\b/
PHRASE_MATCH.3: /(phrase_match|PHRASE_MATCH)\b/
MIN_SHOULD_MATCH.3: /(minimum_should_match|MINIMUM_SHOULD_MATCH)[ \t\r\n]*=(?!=)/

CMP_OP: "==" | "!=" | "<=" | ">=" | "<" | ">"
SHIFT_OP.2: "<<" | ">>"
BOR: /\|(?!\|)/
BAND: /&(?!&)/
BXOR: "^"
BNOT: "~"
POW: "**"
ADD_OP: "+" | "-"
MUL_OP: /\*(?!\*)/ | "/" | "%"

META: "$meta"
IDENT: /[A-Za-z_][A-Za-z0-9_]*/
FLOAT.2: /(\d+\.\d*|\.\d+)([eE][+-]?\d+)?|\d+[eE][+-]?\d+/
INT: /0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO]?[0-7]+|[1-9][0-9]*|0/
STRING.2: /[rR]?("([^"\\\r\n]|\\[^\r\n])*"|'([^'\\\r\n]|\\[^\r\n])*')/

%ignore /[ \t\r\n]+/
"""


@cache
def parser() -> Lark:
    """The LALR parser, built once per process."""
    return Lark(GRAMMAR, parser="lalr", lexer="basic", maybe_placeholders=False)


class SyntaxProblem(ValueError):
    """The expression is not in the language; the message says where and what was found."""


def parse(text: str) -> Tree:
    """Parse ``text`` into a lark tree, raising :class:`SyntaxProblem` with a short reason."""
    try:
        return parser().parse(text)
    except UnexpectedInput as exc:
        raise SyntaxProblem(_describe(text, exc)) from None


def _describe(text: str, exc: UnexpectedInput) -> str:
    col = getattr(exc, "column", -1)
    where = f"line 1:{max(col - 1, 0)}" if col and col > 0 else "end of input"
    if isinstance(exc, UnexpectedEOF):
        return "unexpected end of expression"
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            return "unexpected end of expression"
        return f"{where} mismatched input '{tok}'"
    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if 0 <= exc.pos_in_stream < len(text) else "?"
        return f"{where} token recognition error at: '{ch}'"
    return str(exc)  # pragma: no cover - lark raises only the kinds above
