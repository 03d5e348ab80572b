"""EtcdKV: the metadata store of a cluster, on etcd through etcd-sdk-python (``pyetcd``).

Every key lives under ``root`` (Milvus's rootPath). Calls that fail because etcd is
unreachable are retried with backoff for ``retry_seconds``; the client marks an endpoint
failed for only ``time_retry`` seconds, so it finds etcd again soon after a restart.
Watches run through :mod:`common.kv._etcd_watch`, which re-watches from the last delivered
revision + 1 when the stream breaks. Leases are etcd leases: TTLs are whole seconds (at
least 1), and the caller keeps them alive with :meth:`EtcdKV.keepalive`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import grpc
import pyetcd
from pyetcd import exceptions as etcd_errors
from pyetcd import transactions as txn
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from common.kv._etcd_watch import EtcdWatch
from common.kv.base import KV, KeyValue, LeaseNotFound, WatchEvent, WatchHandle

T = TypeVar("T")
log = logging.getLogger(__name__)

SCAN_PAGE = 1000
_UNREACHABLE: tuple[type[Exception], ...] = (
    etcd_errors.ConnectionFailedError,
    etcd_errors.NoServerAvailableError,
)
_GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", 512 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


def _unreachable(exc: BaseException) -> bool:
    """Safe to retry: the request never reached etcd."""
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return bool(exc.code() == grpc.StatusCode.UNAVAILABLE)
    return isinstance(exc, _UNREACHABLE)


def _unreachable_or_timeout(exc: BaseException) -> bool:
    """Safe to retry for idempotent requests: etcd was unreachable or did not answer in time."""
    return _unreachable(exc) or isinstance(exc, etcd_errors.ConnectionTimeoutError)


def _revision_of(response: Any) -> int:
    """The revision in the header of one put or delete response of a transaction."""
    if response.HasField("response_put"):
        return int(response.response_put.header.revision)
    return int(response.response_delete_range.header.revision)


def range_end(prefix: bytes) -> bytes:
    """The etcd range end that covers every key starting with ``prefix``."""
    for i in range(len(prefix) - 1, -1, -1):
        if prefix[i] < 0xFF:
            return prefix[:i] + bytes([prefix[i] + 1])
    return b"\0"  # empty or all-0xff prefix: to the end of the key space


class EtcdKV(KV):
    """A KV on etcd; ``endpoints`` are ``host:port`` or ``http(s)://host:port`` strings."""

    def __init__(
        self,
        endpoints: list[str],
        root: str = "",
        user: str | None = None,
        password: str | None = None,
        ca_cert: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        timeout: float = 10.0,
        retry_seconds: float = 30.0,
        time_retry: float = 0.5,
    ) -> None:
        if not endpoints:
            raise ValueError("EtcdKV needs at least one endpoint")
        self._root = root.rstrip("/") + "/" if root.strip("/") else ""
        self._endpoints = endpoints
        self._auth = (user, password)
        self._tls = (ca_cert, cert, key)
        self._timeout = timeout
        self._retry_seconds = retry_seconds
        self._time_retry = time_retry
        self._client_lock = threading.Lock()
        self._watches: set[EtcdWatch] = set()
        self._closed = False
        self._client = self._connect()

    # ---------------------------------------------------------------- plumbing

    def _connect(self) -> pyetcd.MultiEndpointEtcd3Client:
        ca_cert, cert, key = self._tls
        creds = None
        if ca_cert:
            creds = pyetcd.MultiEndpointEtcd3Client.get_secure_creds(ca_cert, key, cert)
        endpoints = []
        for spec in self._endpoints:
            url = urlsplit(spec if "://" in spec else f"http://{spec}")
            secure = url.scheme == "https" or creds is not None
            endpoints.append(
                pyetcd.Endpoint(
                    url.hostname or "127.0.0.1",
                    url.port or 2379,
                    secure=secure,
                    creds=creds,
                    time_retry=self._time_retry,
                    opts=_GRPC_OPTIONS,
                )
            )
        user, password = self._auth

        def connect() -> pyetcd.MultiEndpointEtcd3Client:
            client = pyetcd.MultiEndpointEtcd3Client(
                endpoints=endpoints, timeout=self._timeout, user=user, password=password, failover=True
            )
            if not all(endpoint.secure for endpoint in endpoints):
                # gRPC refuses call credentials on a plaintext channel; the token also goes in
                # the request metadata, which is all etcd reads.
                client.call_credentials = None
            return client

        if user is None:
            return connect()  # no request until the first call
        return self._retrying(connect, _unreachable)  # authenticates now

    @property
    def client(self) -> pyetcd.MultiEndpointEtcd3Client:
        with self._client_lock:
            return self._client

    def _reconnect(self, stale: pyetcd.MultiEndpointEtcd3Client) -> None:
        """Replace the client (e.g. after its auth token expired); watches re-watch by themselves."""
        with self._client_lock:
            if self._client is not stale:
                return
            log.info("etcd client for %s: reconnecting (auth token expired)", self._endpoints)
            self._client = self._connect()
        stale.close()

    def _retrying(self, fn: Callable[[], T], retry_on: Callable[[BaseException], bool]) -> T:
        for attempt in Retrying(
            retry=retry_if_exception(retry_on),
            wait=wait_exponential(multiplier=0.05, max=1.0),
            stop=stop_after_delay(self._retry_seconds),
            reraise=True,
        ):
            with attempt:
                return fn()
        raise AssertionError("unreachable")

    def _call(self, fn: Callable[[pyetcd.MultiEndpointEtcd3Client], T], idempotent: bool = True) -> T:
        """Run ``fn`` on the client, retrying while etcd is unreachable."""
        retry_on = _unreachable_or_timeout if idempotent else _unreachable

        def once() -> T:
            if self._closed:
                raise RuntimeError("EtcdKV is closed")
            client = self.client
            try:
                return fn(client)
            except grpc.RpcError as exc:
                code, details = exc.code(), exc.details() or ""  # type: ignore[attr-defined]
                if code == grpc.StatusCode.NOT_FOUND and "lease not found" in details:
                    raise LeaseNotFound(details) from None
                if "auth token" in details:
                    self._reconnect(client)
                    raise etcd_errors.ConnectionFailedError() from exc
                if code == grpc.StatusCode.INVALID_ARGUMENT:
                    raise ValueError(f"etcd rejected the request: {details}") from None
                raise

        return self._retrying(once, retry_on)

    def _key(self, key: str) -> bytes:
        return (self._root + key).encode()

    def _range(self, prefix: str) -> tuple[bytes, bytes]:
        """The [start, end) key range of everything under ``prefix``."""
        start = self._key(prefix)
        return start or b"\0", range_end(start)  # etcd needs a non-empty start key

    def _unkey(self, raw: bytes) -> str:
        return raw.decode()[len(self._root) :]

    # ---------------------------------------------------------------- reads

    def get(self, key: str) -> bytes | None:
        value, _meta = self._call(lambda c: c.get(self._key(key)))
        return None if value is None else bytes(value)

    def scan(self, prefix: str) -> list[KeyValue]:
        start, end = self._range(prefix)
        out: list[KeyValue] = []
        revision: int | None = None  # later pages read the snapshot of the first
        while True:
            kwargs: dict[str, Any] = {"limit": SCAN_PAGE}
            if revision is not None:
                kwargs["revision"] = revision

            def page(c: pyetcd.MultiEndpointEtcd3Client, start: bytes = start, kwargs: Any = kwargs) -> Any:
                return c.get_range_response(start, end, sort_order="ascend", sort_target="key", **kwargs)

            response = self._call(page)
            if revision is None:
                revision = response.header.revision
            out.extend(KeyValue(self._unkey(kv.key), bytes(kv.value), kv.mod_revision) for kv in response.kvs)
            if not response.more or not response.kvs:
                return out
            start = response.kvs[-1].key + b"\0"

    def revision(self) -> int:
        response = self._call(lambda c: c.get_response(b"\0", count_only=True))
        return int(response.header.revision)

    # ---------------------------------------------------------------- writes

    def put(self, key: str, value: bytes, lease: int | None = None) -> int:
        response = self._call(lambda c: c.put(self._key(key), bytes(value), lease=lease or 0))
        return int(response.header.revision)

    def delete(self, key: str) -> bool:
        response = self._call(lambda c: c.delete(self._key(key), return_response=True))
        return bool(response.deleted >= 1)

    def delete_prefix(self, prefix: str) -> int:
        start, end = self._range(prefix)
        op = txn.Delete(start, range_end=end)
        _ok, responses = self._call(lambda c: c.transaction(compare=[], success=[op], failure=[]))
        return int(responses[0].response_delete_range.deleted)

    def multi_save(self, puts: dict[str, bytes], deletes: list[str] | None = None) -> int:
        deletes = list(dict.fromkeys(deletes or []))
        both = set(puts) & set(deletes)
        if both:
            raise ValueError(f"keys both saved and deleted in one transaction: {sorted(both)}")
        if not puts and not deletes:
            return self.revision()
        ops: list[Any] = [txn.Put(self._key(k), bytes(v)) for k, v in puts.items()]
        ops += [txn.Delete(self._key(k)) for k in deletes]
        _ok, responses = self._call(lambda c: c.transaction(compare=[], success=ops, failure=[]))
        return max(_revision_of(r) for r in responses)

    def compare_and_swap(self, key: str, expected: bytes | None, value: bytes, lease: int | None = None) -> bool:
        k = self._key(key)
        condition = txn.Create(k) == 0 if expected is None else txn.Value(k) == bytes(expected)
        put = txn.Put(k, bytes(value), lease=lease or 0)
        succeeded, _ = self._call(
            lambda c: c.transaction(compare=[condition], success=[put], failure=[]), idempotent=False
        )
        return bool(succeeded)

    # ---------------------------------------------------------------- leases

    def grant_lease(self, ttl_seconds: float) -> int:
        if ttl_seconds <= 0:
            raise ValueError(f"lease TTL must be positive, got {ttl_seconds}")
        ttl = max(1, math.ceil(ttl_seconds))
        lease = self._call(lambda c: c.lease(ttl))
        return int(lease.id)

    def keepalive(self, lease: int) -> None:
        responses = self._call(lambda c: list(c.refresh_lease(lease)))
        if not responses or responses[0].TTL <= 0:
            raise LeaseNotFound(f"lease {lease} not found (expired or revoked)")

    def revoke(self, lease: int) -> None:
        with contextlib.suppress(LeaseNotFound):
            self._call(lambda c: c.revoke_lease(lease))

    # ---------------------------------------------------------------- watches

    def watch_prefix(
        self,
        prefix: str,
        callback: Callable[[WatchEvent], None],
        start_revision: int | None = None,
    ) -> WatchHandle:
        start, end = self._range(prefix)
        first = self.revision() + 1 if start_revision is None else start_revision

        def create(revision: int, on_response: Callable[[object], None]) -> tuple[Any, int]:
            def add(c: pyetcd.MultiEndpointEtcd3Client) -> tuple[Any, int]:
                watch_id = c.add_watch_callback(start, on_response, range_end=end, start_revision=revision)
                return c, int(watch_id)

            return self._call(add)

        watch = EtcdWatch(prefix, callback, first, create, self._unkey, self._forget)
        with self._client_lock:
            self._watches.add(watch)
        watch.start()
        return watch

    def _forget(self, watch: EtcdWatch) -> None:
        with self._client_lock:
            self._watches.discard(watch)

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:
        if self._closed:
            return
        with self._client_lock:
            watches = list(self._watches)
        for watch in watches:
            watch.cancel()
        self._closed = True
        self.client.close()
