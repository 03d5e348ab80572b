"""The sparse-vector dimension Milvus's BM25 function gives a token.

``typeutil.HashString2LessUint32``: the CRC-32 (IEEE) of the token's first 100 UTF-8 bytes (cut
mid-character if need be), modulo 2**32 - 1, so that no dimension is 0xFFFFFFFF. The BM25 function
counts each token's occurrences under this dimension; using the same hash keeps Quiver's sparse
vectors and ``RunAnalyzer`` hashes identical to Milvus's.
"""

from __future__ import annotations

import zlib

_MAX_BYTES = 100
_MODULUS = 0xFFFFFFFF


def token_hash(token: str) -> int:
    """The uint32 dimension of ``token`` in a BM25 sparse vector."""
    return zlib.crc32(token.encode("utf-8")[:_MAX_BYTES]) % _MODULUS
