"""Service discovery through the KV store: each node holds a session key on a lease.

A node registers ``{root}/session/{role}-{node_id}`` with its endpoint and keeps the lease
alive; when the node dies its lease expires and the key disappears, which is how the
coordinator learns to move its channels and segments elsewhere (as Milvus's sessionutil).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass

from common.kv.base import KV, LeaseNotFound

log = logging.getLogger(__name__)

ROLES = ("proxy", "coord", "querynode", "datanode", "indexnode")


def session_prefix(meta_root: str) -> str:
    return f"{meta_root}/session/"


def active_coord_key(meta_root: str) -> str:
    """Held, on a lease, by the active coordinator; its value is the coordinator's endpoint."""
    return f"{meta_root}/session/mixcoord-active"


def active_coord_endpoint(kv: KV, meta_root: str) -> str | None:
    value = kv.get(active_coord_key(meta_root))
    return value.decode() if value else None


@dataclass(frozen=True)
class SessionInfo:
    role: str
    node_id: int
    endpoint: str  # where its internal RPC API answers (local://... or tcp://...)
    address: str = ""  # the user-facing address (proxy: host:port), if any

    @property
    def key_suffix(self) -> str:
        return f"{self.role}-{self.node_id}"


class Session:
    """A registered node: the lease is refreshed by a daemon thread until :meth:`stop`."""

    def __init__(self, kv: KV, meta_root: str, info: SessionInfo, ttl: float = 10.0) -> None:
        self.kv = kv
        self.info = info
        self.key = session_prefix(meta_root) + info.key_suffix
        self.ttl = ttl
        self._lease = kv.grant_lease(ttl)
        kv.put(self.key, json.dumps(asdict(info)).encode(), lease=self._lease)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keepalive, name=f"session-{info.key_suffix}", daemon=True)
        self._thread.start()

    def _keepalive(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.kv.keepalive(self._lease)
            except LeaseNotFound:
                # The lease expired (e.g. a long pause): register again under a new one.
                log.warning("session %s lost its lease; registering again", self.key)
                self._lease = self.kv.grant_lease(self.ttl)
                self.kv.put(self.key, json.dumps(asdict(self.info)).encode(), lease=self._lease)
            except Exception:  # the store may be restarting; try again at the next beat
                log.warning("session keepalive for %s failed", self.key, exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        try:
            self.kv.revoke(self._lease)
        except Exception:
            log.debug("revoke on stop failed", exc_info=True)


def live_sessions(kv: KV, meta_root: str, role: str | None = None) -> list[SessionInfo]:
    """The nodes registered now, optionally of one role, ordered by node id."""
    prefix = session_prefix(meta_root) + (f"{role}-" if role else "")
    out = []
    for item in kv.scan(prefix):
        try:
            out.append(SessionInfo(**json.loads(item.value)))
        except (ValueError, TypeError):
            continue
    return sorted(out, key=lambda s: (s.role, s.node_id))
