"""Bulk import's file readers: JSON rows, Parquet and NumPy batches to checked insert columns.

The datanode's import worker reads the files of an import job with :func:`read_batch` (from
the object storage, or the bucket in a cluster) and gets the same columns an Insert would
produce after the proxy's checks; :func:`bucket_of` routes rows to shards and partitions
exactly as the proxy does, so deletes later reach the segments holding the rows.
"""

from common.sharding import bucket_of

from .assemble import Columns, assemble
from .errors import IMPORT_FAILED, ImportFileError
from .readers import JSON, NUMPY, PARQUET, count_rows, file_type, read_batch, read_json, read_numpy, read_parquet

__all__ = [
    "IMPORT_FAILED",
    "JSON",
    "NUMPY",
    "PARQUET",
    "Columns",
    "ImportFileError",
    "assemble",
    "bucket_of",
    "count_rows",
    "file_type",
    "read_batch",
    "read_json",
    "read_numpy",
    "read_parquet",
]
