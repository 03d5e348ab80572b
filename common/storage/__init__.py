"""Object storage: S3 (boto3) in a cluster, a local directory in standalone, memory in tests."""

from common.storage.base import ObjectNotFound, ObjectStorage

__all__ = ["ObjectNotFound", "ObjectStorage"]
