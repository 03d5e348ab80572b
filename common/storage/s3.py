"""S3Storage: object storage of a cluster, on S3 / MinIO / SeaweedFS through boto3.

Path-style addressing (what MinIO and SeaweedFS expect), the bucket created on first use,
keys under ``root``. Listing is recursive with pagination and never uses a delimiter:
SeaweedFS reports prefixes whose objects were all deleted as common prefixes. botocore's
"standard" retry mode rides out a restarting server.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from common.storage.base import ObjectNotFound, ObjectStorage

_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_DELETE_BATCH = 1000


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Storage(ObjectStorage):
    """Objects in ``bucket`` under ``root``; ``endpoint`` is ``host:port`` or a URL."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        root: str = "",
        secure: bool = False,
        region: str = "us-east-1",
        max_attempts: int = 10,
        ca_cert: str | None = None,
        verify: bool = True,
        client_cert: str | None = None,
        client_key: str | None = None,
    ) -> None:
        """TLS: an ``https://`` endpoint or ``secure``; the server is checked against ``ca_cert``
        (else the system's CAs) unless ``verify`` is off; ``client_cert``/``client_key`` answer a
        server that asks for a client certificate."""
        if "://" not in endpoint:
            endpoint = f"{'https' if secure else 'http'}://{endpoint}"
        if bool(client_cert) != bool(client_key):
            raise ValueError("S3 client TLS needs both client_cert and client_key")
        self.bucket = bucket
        self._root = root.strip("/") + "/" if root.strip("/") else ""
        config = Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=32,
            client_cert=(client_cert, client_key) if client_cert and client_key else None,
        )
        self._s3: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            config=config,
            verify=(ca_cert or True) if verify else False,
        )
        self._ensure_bucket(region)

    def _ensure_bucket(self, region: str) -> None:
        try:
            self._s3.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._s3.create_bucket(**kwargs)
        except ClientError as exc:
            if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def _key(self, key: str) -> str:
        if not key:
            raise ValueError("object key must not be empty")
        return self._root + key

    def put(self, key: str, data: bytes) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=self._key(key), Body=bytes(data))

    def get(self, key: str) -> bytes:
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                raise ObjectNotFound(key) from None
            raise
        return bytes(response["Body"].read())

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError(f"bad range offset={offset} length={length}")
        if length == 0:
            self.size(key)  # raises ObjectNotFound for a missing object
            return b""
        try:
            response = self._s3.get_object(
                Bucket=self.bucket, Key=self._key(key), Range=f"bytes={offset}-{offset + length - 1}"
            )
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                raise ObjectNotFound(key) from None
            if _code(exc) == "InvalidRange":  # offset at or past the end of an existing object
                return b""
            raise
        return bytes(response["Body"].read())

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self._s3.head_object(Bucket=self.bucket, Key=self._key(key))
            return head
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise ObjectNotFound(key)
        return int(head["ContentLength"])

    def _list_raw(self, prefix: str) -> list[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        keys: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._root + prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def list(self, prefix: str) -> list[str]:
        return sorted(key[len(self._root) :] for key in self._list_raw(prefix))

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=self._key(key))

    def delete_prefix(self, prefix: str) -> int:
        keys = self._list_raw(prefix)
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            response = self._s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
            )
            errors = response.get("Errors") or []
            if errors:
                raise OSError(f"S3 refused to delete {len(errors)} objects, e.g. {errors[0]}")
        return len(keys)

    def close(self) -> None:
        self._s3.close()
