"""Schema functions (Milvus 2.5+): a BM25 function turns a text field into a sparse vector field.

A CollectionSchema may carry ``functions``: each names input and output fields, and the rows of
the outputs are computed from the inputs instead of being sent by clients. Quiver runs BM25 (full
text search: the analyzed text of a VARCHAR field becomes a ``{term hash: count}`` sparse row,
common/bm25.py). TextEmbedding and the other function types call model services Quiver does not
host and are refused as unsupported. :func:`check_functions` repeats Milvus's validateFunction
(proxy) and validateAnalyzer (rootcoord) on the request's schema, in Milvus's order and words;
:class:`FunctionSpec` is the plain value every role keeps.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from pymilvus.grpc_gen import common_pb2, schema_pb2
from pymilvus.grpc_gen.schema_pb2 import DataType, FunctionType

from common.errors import Code, MilvusError


@dataclass(frozen=True)
class FunctionSpec:
    """One schema function, as stored with the collection."""

    name: str
    type: int
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    params: tuple[tuple[str, str], ...] = ()
    description: str = ""
    function_id: int = 0
    input_ids: tuple[int, ...] = ()
    output_ids: tuple[int, ...] = ()

    @property
    def is_bm25(self) -> bool:
        return self.type == FunctionType.BM25

    @classmethod
    def from_proto(cls, fn: schema_pb2.FunctionSchema) -> FunctionSpec:
        return cls(fn.name, fn.type, tuple(fn.input_field_names), tuple(fn.output_field_names),
                   tuple((kv.key, kv.value) for kv in fn.params), fn.description, fn.id,
                   tuple(fn.input_field_ids), tuple(fn.output_field_ids))

    def to_proto(self) -> schema_pb2.FunctionSchema:
        return schema_pb2.FunctionSchema(
            name=self.name, id=self.function_id, description=self.description, type=self.type,
            input_field_names=list(self.input_names), input_field_ids=list(self.input_ids),
            output_field_names=list(self.output_names), output_field_ids=list(self.output_ids),
            params=[common_pb2.KeyValuePair(key=k, value=v) for k, v in self.params])


def _fail(msg: str) -> MilvusError:
    """A plain Go error of Milvus's validation (no merr title): code 1100, as schema_rules reports them."""
    return MilvusError(Code.PARAMETER_INVALID, msg)


def type_params(fs: schema_pb2.FieldSchema) -> dict[str, str]:
    return {kv.key: kv.value for kv in fs.type_params}


def _flag(params: dict[str, str], key: str) -> bool:
    return params.get(key, "").strip().lower() == "true"


def enables_analyzer(params: dict[str, str]) -> bool:
    return _flag(params, "enable_analyzer")


def enables_match(params: dict[str, str]) -> bool:
    return _flag(params, "enable_match")


def check_functions(proto: schema_pb2.CollectionSchema) -> None:
    """Milvus's validateFunction; also marks the output fields (``is_function_output``) of ``proto``."""
    by_name = {f.name: f for f in proto.fields}
    for f in proto.fields:  # decided by the functions only, whatever the client sent
        f.is_function_output = False
    used_outputs: set[str] = set()
    used_names: set[str] = set()
    for fn in proto.functions:
        _check_basic(fn)
        if fn.name in used_names:
            raise _fail(f"duplicate function name: {fn.name}")
        used_names.add(fn.name)
        inputs = []
        for name in fn.input_field_names:
            if name not in by_name:
                raise _fail(f"function input field not found: {name}")
            inputs.append(by_name[name])
        _check_inputs(fn, inputs)
        outputs = []
        for name in fn.output_field_names:
            out = by_name.get(name)
            if out is None:
                raise _fail(f"function output field not found: {name}")
            if out.is_primary_key:
                raise _fail(f"function output field cannot be primary key: function {fn.name}, field {name}")
            if out.is_partition_key or out.is_clustering_key:
                raise _fail(f"function output field cannot be partition key or clustering key: "
                            f"function {fn.name}, field {name}")
            if out.nullable:
                raise _fail(f"function output field cannot be nullable: function {fn.name}, field {name}")
            out.is_function_output = True
            if name in used_outputs:
                raise _fail(f"duplicate function output field: function {fn.name}, field {name}")
            used_outputs.add(name)
            outputs.append(out)
        if len(outputs) != 1:
            raise _fail(f"BM25 function only need 1 output field, but got {len(outputs)}")
        if outputs[0].data_type != DataType.SparseFloatVector:
            raise _fail("BM25 function output field must be a SparseFloatVector field, "
                        f"but got {DataType.Name(outputs[0].data_type)}")


def _check_basic(fn: schema_pb2.FunctionSchema) -> None:
    if not fn.name:
        raise _fail("function name cannot be empty")
    if not fn.input_field_names:
        raise _fail(f"function input field names cannot be empty, function: {fn.name}")
    if not fn.output_field_names:
        raise _fail(f"function output field names cannot be empty, function: {fn.name}")
    inputs = Counter(fn.input_field_names)
    outputs = Counter(fn.output_field_names)
    for name in fn.input_field_names:
        if name == "":
            raise _fail(f"function input field name cannot be empty string, function: {fn.name}")
        if inputs[name] > 1:
            raise _fail("each function input field should be used exactly once in the same function, "
                        f"function: {fn.name}, input field: {name}")
    for name in fn.output_field_names:
        if name == "":
            raise _fail(f"function output field name cannot be empty string, function: {fn.name}")
        if inputs[name]:
            raise _fail("a single field cannot be both input and output in the same function, "
                        f"function: {fn.name}, field: {name}")
        if outputs[name] > 1:
            raise _fail("each function output field should be used exactly once in the same function, "
                        f"function: {fn.name}, output field: {name}")
    if fn.type != FunctionType.BM25:
        try:
            kind = FunctionType.Name(fn.type)
        except ValueError:
            kind = str(fn.type)
        if fn.type == FunctionType.Unknown:
            raise _fail("check function params with unknown function type")
        raise MilvusError(Code.UNIMPLEMENTED, f"{kind} functions are not supported by Quiver: only BM25 "
                                              "runs without an external model service")
    if len(fn.params):
        raise _fail("BM25 function accepts no params")


def _check_inputs(fn: schema_pb2.FunctionSchema, inputs: list[schema_pb2.FieldSchema]) -> None:
    if len(inputs) != 1 or inputs[0].data_type != DataType.VarChar:
        raise _fail("BM25 function input field must be a VARCHAR/TEXT field, "
                    f"got {len(inputs)} field with type {DataType.Name(inputs[0].data_type)}")
    if not enables_analyzer(type_params(inputs[0])):
        raise _fail("BM25 function input field must set enable_analyzer to true")


def bm25_inputs(proto: schema_pb2.CollectionSchema) -> set[str]:
    return {fn.input_field_names[0] for fn in proto.functions
            if fn.type == FunctionType.BM25 and len(fn.input_field_names)}


def check_analyzers(proto: schema_pb2.CollectionSchema) -> None:
    """Milvus's validateAnalyzer (rootcoord) for every field, then the analyzer settings themselves."""
    from common.analyzer import check_field_analyzer  # the analyzer package loads jieba & co. lazily

    inputs = bm25_inputs(proto)
    types = {f.name: f.data_type for f in proto.fields}
    nullable = {f.name: f.nullable for f in proto.fields}
    for f in proto.fields:
        params = type_params(f)
        if not enables_match(params) and f.name not in inputs:
            continue
        if not enables_analyzer(params):
            raise _fail(f"field {f.name} which has enable_match or is input of BM25 function must also "
                        "enable_analyzer")
        if "multi_analyzer_params" in params:
            if enables_match(params):
                raise _fail(f"multi analyzer now only support for bm25, but now field {f.name} enable match")
            if "analyzer_params" in params:
                raise _fail(f"field {f.name} analyzer params should be none if has multi analyzer params")
        check_field_analyzer(params, types, nullable, field_name=f.name, collection_name=proto.name,
                             bm25_input=f.name in inputs)

