"""The RunAnalyzer RPC: what an analyzer makes of some texts, as Milvus's proxy answers it.

pymilvus's ``run_analyzer`` either sends analyzer params (run them as given) or names a
collection's VARCHAR field (run that field's analyzer, a multi-analyzer field's by name per
text). Milvus runs the analyzer on a streaming or query node; the analyzers are plain code in
Quiver (common/analyzer), so the proxy runs them itself. Tokens come with their hash (the BM25
dimension) and, with ``with_detail``, their offsets and positions.
"""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import milvus_pb2

from common.analyzer import Analyzer, build_analyzer, field_analyzers, token_hash
from common.errors import Code, MilvusError, invalid
from services.proxy.context import ProxyContext, db_of
from services.proxy.status import guard, ok


class AnalyzerHandlers:
    ctx: ProxyContext

    @guard("RunAnalyzer")
    def RunAnalyzer(self, request: Any, context: Any) -> Any:
        reply = milvus_pb2.RunAnalyzerResponse(status=ok())
        if not len(request.placeholder):
            return reply
        try:
            texts = [raw.decode("utf-8") for raw in request.placeholder]
        except UnicodeDecodeError:
            raise invalid("analyzer input must be valid UTF-8: invalid parameter") from None
        for text, analyzer in zip(texts, self._analyzers(request, context, len(texts)), strict=True):
            result = reply.results.add()
            for tok in analyzer.analyze(text):
                out = result.tokens.add(token=tok.text)
                if request.with_hash:
                    out.hash = token_hash(tok.text)
                if request.with_detail:
                    out.start_offset, out.end_offset = tok.start_offset, tok.end_offset
                    out.position, out.position_length = tok.position, tok.position_length
        return reply

    def _analyzers(self, request: Any, context: Any, n: int) -> list[Analyzer]:
        if not request.collection_name:
            return [build_analyzer(request.analyzer_params or None)] * n
        if request.analyzer_params:
            raise _input("run analyzer can't use analyzer params and (collection,field) in same time")
        if not request.field_name:
            raise _input("must set field name when collection name was set")
        names = list(request.analyzer_names)
        if names and len(names) not in (1, n):
            raise _input("only support set one analyzer name for all text or set analyzer name for each text, "
                         f"but now analzer name num: {len(names)}, text num: {n}")
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        field = meta.schema.get(request.field_name)
        if field is None:
            raise MilvusError(Code.FIELD_NOT_FOUND, f"field not found[field={request.field_name}]")
        analyzers = field_analyzers(field.type_params)
        if not names:
            return [analyzers.get(None)] * n
        return [analyzers.get(names[0] if len(names) == 1 else names[i]) for i in range(n)]


def _input(message: str) -> MilvusError:
    return MilvusError(Code.PARAMETER_INVALID, message)
