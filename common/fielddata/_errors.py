"""The shapes of Milvus's insert and search errors, so every codec message reads like Milvus's.

Milvus builds user errors with its merr package: ``WrapErrParameterInvalidMsg`` gives
``"<detail>: invalid parameter"`` and ``WrapErrParameterInvalid`` adds
``"[expected=..][actual=..]"``; some checks return plain Go errors with no title. Clients
(and Milvus's own test-suite) match on these strings, so the codec builds them here.
"""

from __future__ import annotations

import math

from common.errors import Code, MilvusError


def invalid_msg(detail: str) -> MilvusError:
    """merr.WrapErrParameterInvalidMsg: ``"<detail>: invalid parameter"`` (code 1100)."""
    return MilvusError(Code.PARAMETER_INVALID, f"{detail}: invalid parameter")


def mismatch(detail: str, expected: object, actual: object) -> MilvusError:
    """merr.WrapErrParameterInvalid: ``"<detail>: invalid parameter[expected=..][actual=..]"``."""
    return plain(f"{detail}: invalid parameter[expected={expected}][actual={actual}]")


def plain(detail: str) -> MilvusError:
    """A check that Milvus reports as a plain Go error; still an invalid parameter (1100)."""
    return MilvusError(Code.PARAMETER_INVALID, detail)


def go_float(value: float) -> str:
    """Go's ``%f`` of a float64: ``NaN``, ``+Inf``, ``-Inf`` or six decimals."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:f}"


def not_a_number(value: float) -> MilvusError:
    """typeutil.VerifyFloat: the first NaN or infinity found in float data."""
    return plain(f"value '{go_float(value)}' is not a number or infinity")


def num_rows_mismatch(field_name: str, actual: int, expected: int) -> MilvusError:
    """checkAligned: a column's row count differs from the request's num_rows."""
    return mismatch(f"the num_rows ({actual}) of field ({field_name}) is not equal to passed num_rows "
                    f"({expected})", expected, actual)


def dim_mismatch(field_name: str, data_dim: int, schema_dim: int) -> MilvusError:
    """checkAligned: the FieldData's declared dim differs from the schema's."""
    return mismatch(f"the dim ({data_dim}) of field data({field_name}) is not equal to schema dim "
                    f"({schema_dim})", schema_dim, data_dim)
