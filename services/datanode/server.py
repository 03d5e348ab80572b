"""The datanode's RPC face: the coordinator assigns channels and asks for flushes here."""

from __future__ import annotations

import base64
import logging
import threading
from typing import Any

from common.config import QuiverConfig
from common.errors import Code, MilvusError
from common.msgstream.base import MsgStream
from common.rpc import Caller, rpc
from common.schema import Schema
from common.storage.base import ObjectStorage
from services.datanode.channel import ChannelWriter
from services.datanode.importer import ImportWorker, source_storage

log = logging.getLogger(__name__)


class DataNode:
    def __init__(self, cfg: QuiverConfig, stream: MsgStream, storage: ObjectStorage, coord: Caller) -> None:
        self.cfg = cfg
        self.stream = stream
        self.storage = storage
        self.coord = coord
        self.channels: dict[str, ChannelWriter] = {}
        self._lock = threading.Lock()
        self.importer = ImportWorker(storage, lambda: source_storage(cfg, storage), coord)

    @rpc
    def watch_channel(self, collection_id: int, vchannel: str, schema: str, watcher: str = "") -> None:
        """Consume and persist ``vchannel``; ``watcher``: this node's endpoint as the coordinator
        knows it, sent with every save so a node that lost the channel is told (and lets go)."""
        with self._lock:
            if vchannel in self.channels:
                return
            writer = ChannelWriter(
                collection_id,
                vchannel,
                Schema.from_bytes(base64.b64decode(schema)),
                self.stream,
                self.storage,
                self.coord,
                self.cfg.data.sync_period_seconds,
                watcher=watcher,
                on_revoked=self._revoked,
            )
            writer.start()
            self.channels[vchannel] = writer

    @rpc
    def update_schema(self, collection_id: int, schema: str) -> None:
        """A DDL changed the collection (e.g. a field was added): its writers use the new schema."""
        parsed = Schema.from_bytes(base64.b64decode(schema))
        with self._lock:
            writers = [w for w in self.channels.values() if w.collection_id == collection_id]
        for w in writers:
            w.adopt_schema(parsed)

    @rpc
    def release_channel(self, vchannel: str) -> None:
        with self._lock:
            writer = self.channels.pop(vchannel, None)
        if writer is not None:
            writer.stop()

    def _revoked(self, writer: ChannelWriter) -> None:
        """``writer``'s channel belongs to another node now: forget it (its thread is ending)."""
        with self._lock:
            if self.channels.get(writer.vchannel) is writer:
                del self.channels[writer.vchannel]

    @rpc
    def list_channels(self) -> list[str]:
        with self._lock:
            return sorted(self.channels)

    @rpc
    def flush_segments(self, vchannel: str, segments: list[dict[str, Any]], sync_ts: int = 0) -> None:
        """Flush sealed segments at their seal time; with ``sync_ts``, also sync the channel then."""
        writer = self.channels.get(vchannel)
        if writer is None:
            raise MilvusError(Code.CHANNEL_NOT_FOUND, f"channel not found[channel={vchannel}] on this datanode")
        writer.request_flush(segments, sync_ts)

    @rpc
    def compact(self, plan: dict[str, Any]) -> None:
        """Queue a compaction plan on the writer of its vchannel (it runs between two messages)."""
        writer = self.channels.get(plan["vchannel"])
        if writer is None:
            raise MilvusError(Code.CHANNEL_NOT_FOUND, f"channel not found[channel={plan['vchannel']}] on this datanode")
        writer.request_compaction(plan)

    @rpc
    def import_files(self, task: dict[str, Any]) -> None:
        """Run a bulk import task in the background (services/datanode/importer.py)."""
        self.importer.submit(task)

    def stop(self) -> None:
        with self._lock:
            writers = list(self.channels.values())
            self.channels.clear()
        for w in writers:  # all at once: one blocked in a call must not hold up the others' exits
            w.request_stop()
        for w in writers:
            w.stop()
