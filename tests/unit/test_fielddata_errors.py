"""decode_insert rejects bad inserts as Milvus's proxy does: code 1100 and Milvus's wording."""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np
import pytest
from pymilvus import DataType as DT
from pymilvus.grpc_gen import milvus_pb2, schema_pb2

from common.errors import Code, MilvusError
from common.fielddata import decode_insert
from common.schema import Schema
from tests.unit.test_fielddata_support import client_schema, row_insert

SCHEMA = Schema.from_proto(client_schema([
    ("id", DT.INT64, {"is_primary": True}),
    ("vec", DT.FLOAT_VECTOR, {"dim": 8}),
    ("name", DT.VARCHAR, {"max_length": 4}),
    ("score", DT.FLOAT, {"nullable": True}),
    ("small", DT.INT8, {"default_value": np.int8(1)}),
    ("doc", DT.JSON, {}),
    ("tags", DT.ARRAY, {"element_type": DT.VARCHAR, "max_capacity": 2, "max_length": 3}),
    ("nums", DT.ARRAY, {"element_type": DT.INT16, "max_capacity": 3}),
    ("bits", DT.BINARY_VECTOR, {"dim": 16}),
    ("half", DT.FLOAT16_VECTOR, {"dim": 2}),
    ("brain", DT.BFLOAT16_VECTOR, {"dim": 2}),
    ("sp", DT.SPARSE_FLOAT_VECTOR, {}),
], dynamic=True))


def _rows(n: int = 3) -> list[dict[str, object]]:
    return [{"id": i, "vec": [0.5] * 8, "name": "ab", "score": 1.0, "doc": {"a": i}, "tags": ["x"],
             "nums": [1, 2], "bits": b"\x01\x02", "half": np.ones(2, dtype=np.float16),
             "brain": b"\x80\x3f\x00\x40", "sp": {1: 1.0}} for i in range(n)]


def _request(**overrides: object) -> milvus_pb2.InsertRequest:
    rows = _rows()
    for i, row in enumerate(rows):
        for k, v in overrides.items():
            row[k] = v(i) if callable(v) else v
    return row_insert(SCHEMA, rows)


def _fd(req: milvus_pb2.InsertRequest, name: str) -> schema_pb2.FieldData:
    return next(fd for fd in req.fields_data if fd.field_name == name)


def _expect(req: milvus_pb2.InsertRequest, message: str, exact: bool = False, **kwargs: bool) -> None:
    with pytest.raises(MilvusError) as err:
        decode_insert(SCHEMA, req.fields_data, req.num_rows, **kwargs)
    assert err.value.code == Code.PARAMETER_INVALID
    if exact:
        assert err.value.message == message
    else:
        assert message in err.value.message, err.value.message


def _edit(edit: Callable[[milvus_pb2.InsertRequest], None], **overrides: object) -> milvus_pb2.InsertRequest:
    req = _request(**overrides)
    edit(req)
    return req


def test_valid_request_decodes() -> None:
    req = _request()
    cols = decode_insert(SCHEMA, req.fields_data, 3)
    assert cols["small"].tolist() == [1, 1, 1] and cols["brain"][0].tolist() == [0x3F80, 0x4000]


def test_missing_field() -> None:
    req = _request()
    kept = [fd for fd in req.fields_data if fd.field_name != "name"]
    del req.fields_data[:]
    req.fields_data.extend(kept)
    _expect(req, "fieldSchema(name) has no corresponding fieldData pass in: invalid parameter", exact=True)


def test_unknown_field_and_duplicates() -> None:
    req = _request()
    req.fields_data.add(field_name="ghost", type=DT.INT64).scalars.long_data.data.append(1)
    _expect(req, "fieldName ghost not exist in collection schema: invalid parameter", exact=True)
    req = _request()
    req.fields_data.append(_fd(req, "id"))
    _expect(req, "duplicated field id found: invalid parameter", exact=True)


def test_dynamic_data_without_dynamic_schema() -> None:
    static = Schema.from_proto(client_schema([("id", DT.INT64, {"is_primary": True}),
                                              ("v", DT.FLOAT_VECTOR, {"dim": 2})]))
    req = row_insert(SCHEMA, _rows())
    with pytest.raises(MilvusError) as err:
        decode_insert(static, [_fd(req, "id"), _fd(req, "$meta")], 3)
    assert err.value.message == "without dynamic schema enabled, the field name cannot be set to $meta"


def test_wrong_payload_type() -> None:
    def swap(req: milvus_pb2.InsertRequest) -> None:
        fd = _fd(req, "name")
        fd.scalars.long_data.data.extend([1, 2, 3])
    _expect(_edit(swap), "varchar field 'name' is illegal, array type mismatch: "
                         "invalid parameter[expected=need string array][actual=got nil]", exact=True)

    def vec_as_bytes(req: milvus_pb2.InsertRequest) -> None:
        _fd(req, "vec").vectors.binary_vector = b"\x00" * 96
    _expect(_edit(vec_as_bytes), "float vector field 'vec' is illegal, array type mismatch: "
                                 "invalid parameter[expected=need float vector][actual=got nil]", exact=True)


def test_vector_dim_mismatch() -> None:
    _expect(_request(vec=[0.5] * 16), "the dim (16) of field data(vec) is not equal to schema dim (8): "
                                      "invalid parameter[expected=8][actual=16]", exact=True)

    def bits_dim(req: milvus_pb2.InsertRequest) -> None:
        _fd(req, "bits").vectors.dim = 8
    _expect(_edit(bits_dim), "the dim (8) of field data(bits) is not equal to schema dim (16)")

    def ragged(req: milvus_pb2.InsertRequest) -> None:
        _fd(req, "vec").vectors.float_vector.data.append(1.0)
    _expect(_edit(ragged), "the length(25) of float data should divide the dim(8): invalid parameter",
            exact=True)

    def short_bits(req: milvus_pb2.InsertRequest) -> None:
        _fd(req, "bits").vectors.binary_vector = b"\x01" * 5
    _expect(_edit(short_bits), "the num(40) of all bits should divide the dim(16): invalid parameter",
            exact=True)


@pytest.mark.parametrize("bad,shown", [(float("nan"), "NaN"), (float("inf"), "+Inf"),
                                       (float("-inf"), "-Inf")])
def test_nan_and_inf_in_float_vectors(bad: float, shown: str) -> None:
    _expect(_request(vec=lambda i: [0.5] * 7 + [bad if i == 2 else 0.5]),
            f"value '{shown}' is not a number or infinity", exact=True)


def test_nan_in_float_scalar_and_half_vectors() -> None:
    _expect(_request(score=float("nan")), "value 'NaN' is not a number or infinity", exact=True)
    _expect(_request(half=np.array([np.inf, 1], dtype=np.float16)),
            "float16 vector contain nan or infinity value.")
    _expect(_request(brain=b"\xc0\x7f\x00\x00"), "bfloat16 vector contain nan or infinity value.")


def test_varchar_longer_than_max_length_counts_utf8_bytes() -> None:
    _expect(_request(name=lambda i: "abc" if i < 2 else "ééé"),
            "length of varchar field name exceeds max length, row number: 2, length: 6, max length: 4: "
            "invalid parameter", exact=True)


def test_num_rows_mismatch() -> None:
    req = _request()
    req.num_rows = 4
    _expect(req, "the num_rows (3) of field (id) is not equal to passed num_rows (4): "
                 "invalid parameter[expected=4][actual=3]", exact=True)
    req.num_rows = 0
    _expect(req, "num_rows should be greater than 0: invalid parameter[expected=invalid num_rows][actual=0]",
            exact=True)


def test_primary_key_supplied_with_auto_id() -> None:
    auto = Schema.from_proto(client_schema([("id", DT.INT64, {"is_primary": True, "auto_id": True}),
                                            ("v", DT.FLOAT_VECTOR, {"dim": 2})]))
    req = row_insert(auto, [{"id": 5, "v": [1.0, 2.0]}])
    with pytest.raises(MilvusError) as err:
        decode_insert(auto, req.fields_data, 1)
    assert err.value.message == ("can not assign primary field data when auto id enabled and "
                                 "allow_insert_auto_id is false id: invalid parameter")


def test_bad_json() -> None:
    def corrupt(req: milvus_pb2.InsertRequest) -> None:
        _fd(req, "doc").scalars.json_data.data[1] = b"{not json"
    _expect(_edit(corrupt), "invalid JSON in field doc, row number: 1")

    def huge(req: milvus_pb2.InsertRequest) -> None:
        _fd(req, "doc").scalars.json_data.data[0] = b'"' + b"x" * 65536 + b'"'
    _expect(_edit(huge), "the length (65538) of json field (doc) exceeds max length (65536)")


@pytest.mark.parametrize("payload,message", [
    (b"[1, 2]", "the value of dynamic field must be a JSON object, row number: 0"),
    (b'{"$meta": 1}', "cannot set json key to: $meta"),
    (b'{"name": "x"}', "dynamic field name cannot include the static field name: name"),
])
def test_bad_dynamic_rows(payload: bytes, message: str) -> None:
    def put(req: milvus_pb2.InsertRequest) -> None:
        _fd(req, "$meta").scalars.json_data.data[0] = payload
    _expect(_edit(put), message)


def test_null_in_non_nullable_field() -> None:
    def null_name(req: milvus_pb2.InsertRequest) -> None:
        fd = _fd(req, "name")
        fd.valid_data.extend([True, False, True])
        del fd.scalars.string_data.data[1]
    _expect(_edit(null_name), "the length of valid_data of field(name) is wrong: invalid parameter"
                              "[expected=0][actual=3]", exact=True)


def test_nullable_lengths_must_agree() -> None:
    def short_mask(req: milvus_pb2.InsertRequest) -> None:
        del _fd(req, "score").valid_data[2]
    _expect(_edit(short_mask), "the length of valid_data of field(score) is wrong: "
                               "invalid parameter[expected=3][actual=2]", exact=True)

    def extra_value(req: milvus_pb2.InsertRequest) -> None:
        fd = _fd(req, "score")
        fd.valid_data[0] = False  # the mask says two values; four are sent (neither 2 nor num_rows)
        fd.scalars.float_data.data.append(2.0)
    _expect(_edit(extra_value), "the length of field is wrong: invalid parameter[expected=2][actual=4]",
            exact=True)


def test_int8_overflow() -> None:
    def big(req: milvus_pb2.InsertRequest) -> None:
        fd = _fd(req, "small")
        fd.scalars.int_data.data[1] = 300
    req = _request(small=lambda i: 1)
    big(req)
    _expect(req, "the 1th element (300) out of range: [-128, 127]: invalid parameter"
                 "[expected=integer doesn't overflow][actual=out of range]", exact=True)
    _expect(_request(nums=[1, 40000]), "the 1th element (40000) out of range: [-32768, 32767]")


def test_array_rules() -> None:
    _expect(_request(tags=["a", "b", "c"]), "the length (3) of 0th array exceeds max capacity (2): "
                                            "invalid parameter[expected=valid length array]", exact=False)
    _expect(_request(tags=lambda i: ["ok"] if i else ["toolong"]),
            'length of Array array field "tags" exceeds max length, row number: 0, array index: 0, '
            "length: 7, max length: 3: invalid parameter", exact=True)

    def wrong_element(req: milvus_pb2.InsertRequest) -> None:
        row = _fd(req, "nums").scalars.array_data.data[0]
        row.long_data.data.extend([1])
    _expect(_edit(wrong_element), "insert data does not match: invalid parameter[expected=int array]"
                                  "[actual=*schemapb.ScalarField_LongData array]", exact=True)


def test_sparse_rows_are_checked() -> None:
    def unsorted(req: milvus_pb2.InsertRequest) -> None:
        _fd(req, "sp").vectors.sparse_float_vector.contents[1] = struct.pack("<IfIf", 5, 1.0, 2, 1.0)
    _expect(_edit(unsorted), "unsorted or same indices in sparse float vector", exact=True)

    def negative(req: milvus_pb2.InsertRequest) -> None:
        _fd(req, "sp").vectors.sparse_float_vector.contents[0] = struct.pack("<If", 5, -1.0)
    _expect(_edit(negative), "negative value in sparse float vector")

    def odd(req: milvus_pb2.InsertRequest) -> None:
        _fd(req, "sp").vectors.sparse_float_vector.contents[0] = b"\x00" * 7
    _expect(_edit(odd), "invalid data length in sparse float vector: 7", exact=True)
