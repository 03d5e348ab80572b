"""PulsarStream: the message stream of a cluster, on Apache Pulsar (or pulsar-lite) via pulsar-client.

A channel is the topic ``persistent://{tenant}/{namespace}/{topic_prefix}{channel}``.
Produce is a synchronous, unbatched send (so every message has its own id) that blocks
while the producer queue is full. Consumers start from a position with a Reader, never a
live seek, and a reader drops any message whose id is at or below one it already returned
(or below its start): Pulsar delivers at least once, and pulsar-lite 0.2.0 redelivers.
Messages must stay under :data:`MAX_PAYLOAD` (the broker's 5 MiB frame, less headers); the
caller splits larger batches.

Pulsar's binary protocol cannot delete a topic: :meth:`PulsarStream.delete_channel` uses the
admin REST API when ``admin_url`` is given (Apache Pulsar's web service), and otherwise
(pulsar-lite has no admin API) only forgets its producer and leaves the messages in place.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pulsar
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from common.msgstream.base import MsgStream, Reader, StreamMessage

log = logging.getLogger(__name__)

MAX_PAYLOAD = 5 * 1024 * 1024 - 16 * 1024
_TRANSIENT = (pulsar.ConnectError, pulsar.Timeout, pulsar.LookupError)

OrderKey = tuple[int, int, int, int]


class MessageTooLarge(ValueError):
    """A payload over MAX_PAYLOAD bytes: split it before producing."""


def order_key(message_id: pulsar.MessageId) -> OrderKey:
    """Where a message id sits in its topic: (ledger, entry, partition, batch index)."""
    return (
        message_id.ledger_id(),
        message_id.entry_id(),
        message_id.partition(),
        message_id.batch_index(),
    )


def decode_id(message_id: bytes) -> pulsar.MessageId:
    return pulsar.MessageId.deserialize(bytes(message_id))


# open(start, inclusive) -> a pulsar Reader on the channel's topic
OpenReader = Callable[[pulsar.MessageId, bool], pulsar.Reader]


class PulsarReader(Reader):
    """Reads one topic in order, dropping redeliveries and recovering from stalled dispatch.

    Any message whose id is not after the last one returned (or is before the start) is a
    redelivery and is skipped. pulsar-lite 0.2.0 now and then stops dispatching to a reader
    although the topic has more messages: after ``stall_check`` idle seconds the reader asks
    the broker whether messages are available and, if so, reopens after the last one it
    returned. It only asks once it has seen a message (or started from one), because the
    broker answers that question for an empty topic by dropping the connection.
    """

    def __init__(
        self,
        channel: str,
        open_reader: OpenReader,
        start: pulsar.MessageId | None,
        inclusive: bool,
        stall_check: float = 5.0,
    ) -> None:
        self._channel = channel
        self._open = open_reader
        self._start = pulsar.MessageId.earliest if start is None else start
        self._start_inclusive = inclusive
        self._last_id: pulsar.MessageId | None = None
        self._last = None if start is None else order_key(start)
        self._floor_inclusive = inclusive  # the floor itself may still be returned once
        self._stall_check = stall_check
        self._idle_since = self._checked_at = time.monotonic()
        self._reader = open_reader(self._start, inclusive)

    def read(self, timeout: float) -> StreamMessage | None:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            wait_ms = max(1, int((deadline - time.monotonic()) * 1000))
            try:
                message = self._reader.read_next(wait_ms)
            except pulsar.Timeout:
                self._recover_if_stalled()
                return None
            message_id = message.message_id()
            key = order_key(message_id)
            last = self._last
            if last is not None and (key < last or (key == last and not self._floor_inclusive)):
                log.debug("%s: dropped redelivered message %s", self._channel, key)
                if time.monotonic() >= deadline:
                    return None
                continue  # at or below what this reader already returned: a redelivery
            self._last, self._floor_inclusive, self._last_id = key, False, message_id
            self._idle_since = time.monotonic()
            return StreamMessage(self._channel, message_id.serialize(), message.data())

    def _recover_if_stalled(self) -> None:
        now = time.monotonic()
        if self._last is None or min(now - self._idle_since, now - self._checked_at) < self._stall_check:
            return
        self._checked_at = now
        try:
            available = self._reader.has_message_available()
        except pulsar.PulsarException as exc:
            log.debug("%s: cannot ask for available messages: %s", self._channel, exc)
            return
        if not available:
            return
        log.warning("%s: reader stalled with messages available; reopening it", self._channel)
        if self._last_id is None:
            fresh = self._open(self._start, self._start_inclusive)
        else:
            fresh = self._open(self._last_id, False)
        stale, self._reader = self._reader, fresh
        with contextlib.suppress(pulsar.PulsarException):
            stale.close()

    def close(self) -> None:
        with contextlib.suppress(pulsar.AlreadyClosed):
            self._reader.close()


@dataclass(frozen=True)
class PulsarTls:
    """TLS to the broker (a ``pulsar+ssl://`` URL): the CA to trust and an optional client certificate."""

    trust_certs_file_path: str | None = None
    allow_insecure_connection: bool = False
    validate_hostname: bool = True
    cert_file: str | None = None  # with key_file: Pulsar's TLS authentication provider
    key_file: str | None = None


def client_security(service_url: str, auth_token: str | None, tls: PulsarTls | None) -> dict[str, Any]:
    """pulsar.Client keyword arguments for authentication and TLS.

    A client certificate is presented in the TLS handshake and is Pulsar's TLS authentication
    (AuthenticationTLS); a token, if also given, is the authentication instead.
    """
    kwargs: dict[str, Any] = {}
    auth: Any = None
    if tls is not None:
        if tls.cert_file or tls.key_file:
            if not (tls.cert_file and tls.key_file):
                raise ValueError("Pulsar TLS authentication needs both tls_cert_file and tls_key_file")
            auth = pulsar.AuthenticationTLS(tls.cert_file, tls.key_file)
            kwargs["tls_certificate_file_path"] = tls.cert_file  # also presented in the handshake (mTLS)
            kwargs["tls_private_key_file_path"] = tls.key_file
        if tls.trust_certs_file_path:
            kwargs["tls_trust_certs_file_path"] = tls.trust_certs_file_path
        kwargs["tls_allow_insecure_connection"] = tls.allow_insecure_connection
        kwargs["tls_validate_hostname"] = tls.validate_hostname
        if not service_url.startswith(("pulsar+ssl://", "https://")) and (tls.trust_certs_file_path or auth):
            raise ValueError(f"TLS settings need a pulsar+ssl:// service_url, got {service_url}")
    if auth_token:
        auth = pulsar.AuthenticationToken(auth_token)
    kwargs["authentication"] = auth
    return kwargs


class PulsarStream(MsgStream):
    """Channels as Pulsar topics; see the module docstring."""

    def __init__(
        self,
        service_url: str,
        tenant: str = "public",
        namespace: str = "default",
        topic_prefix: str = "",
        admin_url: str | None = None,
        operation_timeout: float = 30.0,
        receiver_queue_size: int = 100,
        stall_check: float = 5.0,
        auth_token: str | None = None,
        tls: PulsarTls | None = None,
    ) -> None:
        self._tenant = tenant
        self._namespace = namespace
        self._topic_prefix = topic_prefix
        self._admin_url = admin_url.rstrip("/") if admin_url else None
        self._operation_timeout = operation_timeout
        self._receiver_queue_size = receiver_queue_size
        self._stall_check = stall_check
        self._client = pulsar.Client(
            service_url,
            operation_timeout_seconds=max(1, int(operation_timeout)),
            logger=logging.getLogger("pulsar"),
            **client_security(service_url, auth_token, tls),
        )
        self._lock = threading.Lock()
        self._producers: dict[str, pulsar.Producer] = {}
        self._closed = False

    def topic(self, channel: str) -> str:
        if not channel:
            raise ValueError("channel name must not be empty")
        return f"persistent://{self._tenant}/{self._namespace}/{self._topic_prefix}{channel}"

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception_type(_TRANSIENT),
            wait=wait_exponential(multiplier=0.1, max=2.0),
            stop=stop_after_delay(self._operation_timeout),
            reraise=True,
        )

    def _producer(self, channel: str) -> pulsar.Producer:
        with self._lock:
            if self._closed:
                raise RuntimeError("message stream is closed")
            producer = self._producers.get(channel)
            if producer is None:
                for attempt in self._retrying():
                    with attempt:
                        producer = self._client.create_producer(
                            self.topic(channel),
                            block_if_queue_full=True,
                            batching_enabled=False,
                            send_timeout_millis=int(self._operation_timeout * 1000),
                        )
                assert producer is not None
                self._producers[channel] = producer
            return producer

    def produce(self, channel: str, payload: bytes) -> bytes:
        if len(payload) > MAX_PAYLOAD:
            raise MessageTooLarge(
                f"message of {len(payload)} bytes for channel {channel!r} exceeds the "
                f"{MAX_PAYLOAD}-byte limit of a Pulsar message; split it"
            )
        data = bytes(payload)
        for attempt in range(2):
            producer = self._producer(channel)
            try:
                return bytes(producer.send(data).serialize())
            except pulsar.AlreadyClosed:
                with self._lock:  # closed under us (delete_channel): make a new one, once
                    if self._producers.get(channel) is producer:
                        del self._producers[channel]
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def reader(self, channel: str, start: bytes | None = None, inclusive: bool = False) -> Reader:
        topic = self.topic(channel)

        def open_reader(start_id: pulsar.MessageId, start_inclusive: bool) -> pulsar.Reader:
            reader: pulsar.Reader | None = None
            for attempt in self._retrying():
                with attempt:
                    reader = self._client.create_reader(
                        topic,
                        start_id,
                        receiver_queue_size=self._receiver_queue_size,
                        start_message_id_inclusive=start_inclusive,
                    )
            assert reader is not None
            return reader

        start_id = None if start is None else decode_id(start)
        return PulsarReader(channel, open_reader, start_id, inclusive, self._stall_check)

    def compare(self, a: bytes, b: bytes) -> int:
        x, y = order_key(decode_id(a)), order_key(decode_id(b))
        return (x > y) - (x < y)

    def delete_channel(self, channel: str) -> None:
        with self._lock:
            producer = self._producers.pop(channel, None)
        if producer is not None:
            with contextlib.suppress(pulsar.AlreadyClosed):
                producer.close()
        if self._admin_url is None:
            log.warning("no Pulsar admin URL: topic %s is not deleted", self.topic(channel))
            return
        path = f"{self._tenant}/{self._namespace}/{quote(self._topic_prefix + channel, safe='')}"
        request = urllib.request.Request(f"{self._admin_url}/admin/v2/persistent/{path}?force=true", method="DELETE")
        try:
            with urllib.request.urlopen(request, timeout=self._operation_timeout):
                pass
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._producers.clear()
        self._client.close()
