"""How a bad analyzer setting is reported, in the words Milvus uses at each layer.

Milvus checks ``analyzer_params`` twice: Go first (``CheckAndFillParams``: JSON and the tokenizer's
shape), then the Rust tantivy binding, whose errors read ``"<Kind>: <reason>"``
(``InvalidArgument``/``InternalError``) and reach the client wrapped by the C++ and Go layers. The
builder raises :class:`ParamError` with the bare reason; :func:`analyzer_error` wraps it the way
``RunAnalyzer`` and collection loading report it, and :mod:`common.analyzer.fields` wraps the same
reason the way CreateCollection does. Every error is ``MilvusError`` code 1100 (PARAMETER_INVALID).
"""

from __future__ import annotations

from common.errors import Code, MilvusError

INVALID_ARGUMENT = "InvalidArgument"
INTERNAL_ERROR = "InternalError"


class ParamError(Exception):
    """A reason why analyzer params are bad: Rust's (``kind`` set) or Go's (``kind`` None)."""

    def __init__(self, reason: str, kind: str | None = INVALID_ARGUMENT) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind

    @property
    def detail(self) -> str:
        """The reason as the layer that found it words it (``"InvalidArgument: unsupported tokenizer: x"``)."""
        return f"{self.kind}: {self.reason}" if self.kind else self.reason


def invalid_argument(reason: str) -> ParamError:
    return ParamError(reason, INVALID_ARGUMENT)


def internal_error(reason: str) -> ParamError:
    return ParamError(reason, INTERNAL_ERROR)


def go_error(reason: str) -> ParamError:
    """A reason found by Milvus's Go code before the Rust builder runs (no ``Kind:`` prefix)."""
    return ParamError(reason, None)


class AnalyzerError(MilvusError):
    """Bad analyzer params, as a client sees them; ``detail`` and ``params`` keep the parts."""

    def __init__(self, message: str, detail: str, params: str, from_rust: bool) -> None:
        super().__init__(Code.PARAMETER_INVALID, message)
        self.detail = detail
        self.params = params
        self.from_rust = from_rust

    def segcore_text(self, verb: str) -> str:
        """The reason as Go's canalyzer reports it, ``verb`` being ``"analyzer"`` or ``"tokenizer"``."""
        if not self.from_rust:
            return self.detail
        return (f"failed to create {verb}, C Runtime Exception: Tokenizer creation failed: create tokenizer "
                f"failed with error: {self.detail} param: {self.params}: segcore error[segcoreCode=2001]")


def analyzer_error(err: ParamError, params: str) -> AnalyzerError:
    """``err`` as creating an analyzer from ``params`` (its JSON text) reports it (``NewAnalyzer``)."""
    out = AnalyzerError("", err.detail, params, err.kind is not None)
    out.message = out.segcore_text("analyzer")
    out.args = (out.message,)
    return out


def plain(message: str) -> MilvusError:
    """A Milvus check that returns a plain Go error (no merr title), reported as code 1100."""
    return MilvusError(Code.PARAMETER_INVALID, message)


def unsupported(what: str) -> ParamError:
    """A Milvus feature Quiver does not implement (dictionaries or services it cannot load)."""
    return invalid_argument(f"{what} is not supported by Quiver")
