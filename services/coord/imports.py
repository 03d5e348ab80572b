"""Bulk import jobs: create, dispatch to a datanode, commit the segments it wrote, report progress.

As in Milvus, the coordinator only keeps the job: a datanode's import worker reads and checks
every file, then writes the rows straight into new segments (binlogs and PK stats logs) and
asks here to commit them. The commit registers them as Flushed segments in one catalog write,
so nothing of a job is visible unless all of it is; the index coordinator then builds their
indexes and the query coordinator loads them like any flushed segment. A job reports
Completed once its segments are indexed and, when the collection is loaded, served.

Job records live in the KV store under the coordinator's meta root (``import-job/{id}``), so a
coordinator restart loses none: a job that was running is dispatched again under a new
attempt number (the old attempt's commit is refused and its worker deletes its files).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from common.errors import Code, MilvusError
from common.rpc import rpc
from services.coord.catalog import now_ms
from services.coord.context import CoordContext
from services.coord.data import DataCoord
from services.coord.delta_watermark import channel_sync, covered_from
from services.coord.go_duration import parse_duration
from services.coord.index import IndexCoord
from services.coord.keys import Keys
from services.coord.meta import FLUSHED, SegmentInfo

if TYPE_CHECKING:
    from services.coord.query import QueryCoord

log = logging.getLogger(__name__)

IMPORT_FAILED = 2100  # merr.ErrImportFailed
PENDING, IMPORTING, COMPLETED, FAILED = "Pending", "Importing", "Completed", "Failed"
MAX_FILES = 1024  # Milvus's dataCoord.import.maxImportFileNumPerReq
SERVE_WAIT_SECONDS = 600.0  # a committed job is Completed at the latest this long after its commit
MAX_JOBS = 1000  # finished jobs kept (the oldest are forgotten)


class ImportJob(BaseModel):
    job_id: int
    db_name: str
    collection_id: int
    collection_name: str
    partition_ids: list[int]  # one partition, or every partition (in key-bucket order) with a partition key
    files: list[list[str]]
    options: dict[str, str] = {}
    state: str = PENDING
    reason: str = ""
    progress: int = 0
    total_rows: int = 0
    imported_rows: int = 0
    batches: list[dict[str, int]] = []  # per batch of files: {"rows", "size"} (known once read)
    attempt: int = 0
    node: str = ""
    segment_ids: list[int] = []  # set at commit: the job's rows are in these segments
    row_ts: int = 0  # the timestamp of the running attempt's rows (0: not allocated yet)
    committed_ms: int = 0
    created_ms: int = 0
    completed_ms: int = 0
    timeout_ms: int = 0  # wall clock by which an uncommitted job fails (the "timeout" option; 0: none)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def _failed(msg: str) -> MilvusError:
    return MilvusError(IMPORT_FAILED, f"{msg}: importing data failed")


def _timeout_ms(options: dict[str, str]) -> int | None:
    """The ``timeout`` option (a Go duration, as Milvus takes it) in milliseconds; None if absent."""
    raw = options.get("timeout")
    if raw is None:
        return None
    try:
        return max(0, int(parse_duration(raw) * 1000))
    except ValueError as exc:
        raise _failed(f"parse timeout failed, err={exc}") from None


class ImportManager:
    def __init__(self, ctx: CoordContext, data: DataCoord, index: IndexCoord, query: QueryCoord) -> None:
        self.ctx = ctx
        self.cat = ctx.catalog
        self.data = data
        self.index = index
        self.query = query
        self.keys = Keys(ctx.meta_root)
        self._lock = threading.RLock()  # taken inside the catalog lock, never around it
        self.jobs: dict[int, ImportJob] = {}
        self._load()

    def _load(self) -> None:
        for item in self.ctx.kv.scan(self.keys.import_job()):
            job = ImportJob.model_validate_json(item.value)
            lost = job.segment_ids and any(sid not in self.cat.segments for sid in job.segment_ids)
            if job.state == IMPORTING and (not job.segment_ids or lost):
                # its worker answers to no one now (or the commit died half-way): run it again
                job.state, job.attempt, job.node, job.segment_ids = PENDING, job.attempt + 1, "", []
                self._save(job)
            self.jobs[job.job_id] = job

    def _save(self, job: ImportJob) -> None:
        self.ctx.kv.put(self.keys.import_job(job.job_id), job.to_bytes())

    # --- the client-facing calls (via the proxy) ----------------------------------------
    @rpc
    def create_import(
        self, db_name: str, collection_id: int, partition_ids: list[int], files: list[list[str]],
        options: dict[str, str] | None = None,
    ) -> int:
        """Queue a job; the proxy has resolved the collection and the target partitions."""
        files = [[p for p in group if p] for group in files]
        files = [g for g in files if g]
        if not files:
            raise MilvusError(Code.PARAMETER_INVALID, "import request is empty: invalid parameter")
        if len(files) > MAX_FILES:
            raise _failed(f"The max number of import files should not exceed {MAX_FILES}, but got {len(files)}")
        timeout_ms = _timeout_ms(options or {})
        with self.cat.lock:
            coll = self.cat.collections.get(collection_id)
            if coll is None:
                raise MilvusError(Code.COLLECTION_NOT_FOUND, f"collection not found[collection={collection_id}]")
            known = self.cat.partitions.get(collection_id, {})
            missing = [p for p in partition_ids if p not in known]
            if missing or not partition_ids:
                bad = missing or partition_ids
                raise MilvusError(Code.PARTITION_NOT_FOUND, f"partition not found[partition={bad}]")
            job = ImportJob(
                job_id=self.ctx.ids.alloc(), db_name=db_name, collection_id=collection_id,
                collection_name=coll.name, partition_ids=list(partition_ids), files=files,
                options=dict(options or {}), created_ms=now_ms(),
                timeout_ms=now_ms() + timeout_ms if timeout_ms is not None else 0,
            )
            with self._lock:
                self._save(job)
                self.jobs[job.job_id] = job
                self._prune()
        log.info("import job %d: %d batch(es) into %s", job.job_id, len(files), coll.name)
        self.dispatch()
        return job.job_id

    def _prune(self) -> None:
        done = sorted(j for j, job in self.jobs.items() if job.state in (COMPLETED, FAILED))
        for job_id in done[: max(0, len(self.jobs) - MAX_JOBS)]:
            self.ctx.kv.delete(self.keys.import_job(job_id))
            del self.jobs[job_id]

    def _view(self, job: ImportJob) -> dict[str, Any]:
        out = job.model_dump(exclude={"node", "attempt", "segment_ids", "committed_ms"})
        out["segment_ids"] = list(job.segment_ids) if job.state == COMPLETED else []
        return out

    @rpc
    def get_import_progress(self, job_id: int) -> dict[str, Any]:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise _failed(f"cannot find import job with id {job_id}")
            return self._view(job)

    @rpc
    def list_imports(self, db_name: str = "", collection_id: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [
                self._view(j) for j in sorted(self.jobs.values(), key=lambda j: j.job_id)
                if (not collection_id or j.collection_id == collection_id) and (not db_name or j.db_name == db_name)
            ]

    # --- the loop step ------------------------------------------------------------------
    def tick(self) -> None:
        self._expire()
        self._requeue_lost()
        self.dispatch()
        self._finish_committed()

    def _expire(self) -> None:
        """Fail the jobs not committed by their deadline (Milvus's import timeout). A worker still on
        one is refused at its commit; until then, a stuck job would hold its channels' delete floor."""
        now = now_ms()
        with self._lock:
            late = [j for j in self.jobs.values()
                    if j.timeout_ms and j.state in (PENDING, IMPORTING) and not j.segment_ids and now >= j.timeout_ms]
        for job in late:
            self._fail(job, f"import timeout: not done within the time limit of its timeout option "
                            f"({job.options.get('timeout', '')})")

    def _requeue_lost(self) -> None:
        live = {n.endpoint for n in self.ctx.nodes("datanode")}
        with self._lock:
            for job in self.jobs.values():
                if job.state == IMPORTING and not job.segment_ids and job.node and job.node not in live:
                    log.warning("import job %d: datanode %s is gone, retrying", job.job_id, job.node)
                    job.state, job.attempt, job.node, job.progress = PENDING, job.attempt + 1, "", 0
                    self._save(job)

    def dispatch(self) -> None:
        nodes = sorted(n.endpoint for n in self.ctx.nodes("datanode"))
        if not nodes:
            return
        with self._lock:
            pending = [j for j in self.jobs.values() if j.state == PENDING]
            busy = {e: 0 for e in nodes}
            for j in self.jobs.values():
                if j.state == IMPORTING and j.node in busy and not j.segment_ids:
                    busy[j.node] += 1
        for job in sorted(pending, key=lambda j: j.job_id):
            with self.cat.lock:
                coll = self.cat.collections.get(job.collection_id)
                if coll is None:
                    self._fail(job, "collection was dropped before the import started")
                    continue
                task = {
                    "job_id": job.job_id, "attempt": job.attempt, "collection_id": coll.id,
                    "schema": coll.schema_b64, "vchannels": list(coll.vchannels),
                    "partition_ids": list(job.partition_ids), "files": job.files,
                    "max_rows": self.data.max_rows(coll),
                }
            endpoint = min(nodes, key=lambda e: (busy[e], e))
            with self._lock:
                if job.state != PENDING:
                    continue
                job.state, job.node = IMPORTING, endpoint
                self._save(job)
            try:
                self.ctx.router.client(endpoint).call("import_files", task=task)
                busy[endpoint] += 1
            except MilvusError as exc:
                log.warning("import job %d to %s failed: %s", job.job_id, endpoint, exc)
                with self._lock:
                    if job.state == IMPORTING and not job.segment_ids:
                        job.state, job.node = PENDING, ""
                        self._save(job)

    def _fail(self, job: ImportJob, reason: str) -> None:
        with self._lock:
            job.state, job.reason, job.completed_ms = FAILED, reason, now_ms()
            self._save(job)
        log.warning("import job %d failed: %s", job.job_id, reason)

    def _finish_committed(self) -> None:
        """Committed jobs become Completed once their segments are indexed and (if loaded) served."""
        with self._lock:
            waiting = [j for j in self.jobs.values() if j.state == IMPORTING and j.segment_ids]
        if not waiting:
            return
        loaded = self.query.loaded_segment_ids()
        for job in waiting:
            with self.cat.lock:
                ready = all(self._served(sid, job.collection_id, loaded) for sid in job.segment_ids)
            if ready or now_ms() - job.committed_ms > SERVE_WAIT_SECONDS * 1000:
                with self._lock:
                    job.state, job.progress, job.completed_ms = COMPLETED, 100, now_ms()
                    self._save(job)
                log.info("import job %d completed: %d rows", job.job_id, job.imported_rows)

    def _served(self, segment_id: int, collection_id: int, loaded: set[int]) -> bool:
        s = self.cat.segments.get(segment_id)
        if s is None or s.state != FLUSHED:
            return True  # compacted or dropped meanwhile: nothing left to wait for
        if not self.index.segment_index_state(segment_id, collection_id)[0]:
            return False
        parts = self.query.loaded_partitions(collection_id)
        return parts is None or s.partition_id not in parts or segment_id in loaded

    # --- datanode reports ---------------------------------------------------------------
    def _running(self, job_id: int, attempt: int) -> ImportJob:
        job = self.jobs.get(job_id)
        if job is None or job.state != IMPORTING or job.attempt != attempt or job.segment_ids:
            raise MilvusError(Code.SERVICE_INTERNAL, f"import job {job_id} attempt {attempt} is not running")
        return job

    @rpc
    def import_row_ts(self, job_id: int, attempt: int) -> int:
        """The timestamp a running attempt stamps its rows with, recorded with the job at once.

        A delete newer than it may name imported keys, and the datanodes route deletes only to
        segments they know; so until the commit (after which they learn the job's segments) they
        keep every delete newer than it (:meth:`delete_floor`)."""
        with self._lock:
            job = self._running(job_id, attempt)
            job.row_ts = self.ctx.tso.alloc()
            self._save(job)
            return job.row_ts

    @rpc
    def delete_floor(self, vchannel: str) -> int:
        """The oldest row timestamp of the imports into ``vchannel`` not committed yet (0: none):
        the channel's datanode must keep the deletes newer than it for their segments."""
        with self.cat.lock, self._lock:
            floors = [
                j.row_ts
                for j in self.jobs.values()
                if j.state == IMPORTING
                and not j.segment_ids
                and j.row_ts
                and (coll := self.cat.collections.get(j.collection_id)) is not None
                and vchannel in coll.vchannels
            ]
        return min(floors, default=0)

    @rpc
    def report_import_progress(
        self, job_id: int, attempt: int, progress: int, total_rows: int = 0, batches: list[dict[str, int]] | None = None
    ) -> None:
        with self._lock:
            job = self._running(job_id, attempt)
            job.progress = max(job.progress, min(90, int(progress)))
            job.total_rows = total_rows or job.total_rows
            job.batches = batches or job.batches

    @rpc
    def fail_import(self, job_id: int, attempt: int, reason: str) -> None:
        with self._lock:
            job = self._running(job_id, attempt)
        self._fail(job, reason)

    @rpc
    def complete_import(self, job_id: int, attempt: int, segments: list[dict[str, Any]]) -> list[int]:
        """Register the worker's segments as Flushed, all in one catalog write; refused if stale."""
        with self.cat.lock, self._lock:
            job = self._running(job_id, attempt)
            coll = self.cat.collections.get(job.collection_id)
            if coll is None:
                self._fail(job, "collection was dropped during the import")
                raise _failed(f"collection {job.collection_id} was dropped during the import")
            parts = self.cat.partitions.get(coll.id, {})
            ts = self.ctx.tso.alloc()
            segs = []
            for rec in segments:
                if rec["partition_id"] not in parts or rec["vchannel"] not in coll.vchannels:
                    self._fail(job, f"partition {rec['partition_id']} was dropped during the import")
                    raise _failed(f"partition {rec['partition_id']} was dropped during the import")
                segs.append(SegmentInfo(
                    id=int(rec["id"]), collection_id=coll.id, partition_id=int(rec["partition_id"]),
                    vchannel=rec["vchannel"], state=FLUSHED, num_rows=int(rec["num_rows"]),
                    assigned_rows=int(rec["num_rows"]), max_rows=int(rec["max_rows"]), created_ts=ts, seal_ts=ts,
                    flush_ts=ts, binlogs={int(k): list(v) for k, v in rec["binlogs"].items()},
                    statslogs=list(rec["statslogs"]),
                    # no delete older than its rows hits them; newer ones reach its delta logs once
                    # the channel's datanode has taken it in (services/coord/delta_watermark.py)
                    delta_floor_ts=job.row_ts,
                    delta_covered_seq=covered_from(channel_sync(self.cat.checkpoints.get(rec["vchannel"]))),
                ))
            rows = sum(s.num_rows for s in segs)
            # the job names its segments first: a restart in between finds them, or reruns the job
            job.segment_ids, job.imported_rows, job.total_rows = [s.id for s in segs], rows, rows
            job.progress, job.committed_ms = 95, now_ms()
            self._save(job)
            self.cat.save_segments(segs)
        log.info("import job %d: committed %d rows in %d segment(s)", job_id, rows, len(segs))
        # the channels' datanodes take the segments in at their next sync (flushed_segment_ids)
        return [s.id for s in segs]
