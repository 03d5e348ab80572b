"""Milvus's boolean filter language: parse once, evaluate vectorised over column batches.

``compile_filter(expr, schema, params)`` parses an expression such as
``age > 18 and city in ["Paris", "Rome"]`` with a cached LALR grammar (grammar.py), resolves
and type-checks it against the collection schema into a typed tree (builder.py, nodes.py),
and returns a :class:`Filter` whose ``evaluate(columns, n)`` yields a bool mask using numpy
(evaluator.py, vectors.py; JSON goes row by row in boxed.py).
"""

from common.expr.filter import Filter, compile_filter

__all__ = ["Filter", "compile_filter"]
