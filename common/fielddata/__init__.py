"""The codec between Milvus's FieldData / IDs / PlaceholderGroup messages and numpy columns.

The proxy decodes (and validates, as Milvus's proxy does) what clients send with
:func:`decode_insert` and :func:`decode_placeholder_group`; every role then works on dicts
of numpy columns (see :mod:`.columns` for the representation of each type), and query and
search results go back to clients through :func:`encode_column` and :func:`encode_ids`.
"""

from .columns import VALID_SUFFIX, concat_columns, empty_column, num_rows, take_rows, valid_name
from .decode import decode_insert
from .encode import decode_ids, encode_column, encode_ids
from .placeholder import decode_placeholder_group, decode_text_placeholder
from .vectors import bfloat16_to_float32, float32_to_bfloat16, parse_sparse_rows, sparse_row_bytes

__all__ = [
    "VALID_SUFFIX",
    "bfloat16_to_float32",
    "concat_columns",
    "decode_ids",
    "decode_insert",
    "decode_placeholder_group",
    "decode_text_placeholder",
    "empty_column",
    "encode_column",
    "encode_ids",
    "float32_to_bfloat16",
    "num_rows",
    "parse_sparse_rows",
    "sparse_row_bytes",
    "take_rows",
    "valid_name",
]
