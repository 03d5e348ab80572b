"""Index coordination: index definitions per field and build tasks per flushed segment.

A build task is created for every flushed segment that lacks the collection's index, handed
to an indexnode, and polled until it finishes; a task on a node that vanished or failed is
retried elsewhere. Segments too small to be worth an index are marked finished with no
files: they are searched exactly, as Milvus does below its minimum segment size.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pymilvus.grpc_gen.schema_pb2 import DataType

from common.errors import Code, MilvusError, invalid
from common.index import validate_index_params
from common.rpc import rpc
from common.schema import Field, Schema
from services.coord.context import CoordContext
from services.coord.json_index import (
    display_field_name,
    indexed_field,
    is_json_index_request,
    json_index_params,
)
from services.coord.meta import FLUSHED, IndexInfo, SegmentIndexInfo
from services.coord.proxy_cache import invalidates_proxy_cache
from services.coord.scalar_index import check_scalar_type_on_vector, resolve_scalar_index

log = logging.getLogger(__name__)

MIN_ROWS_FOR_INDEX = 1024
MAX_ATTEMPTS = 3


class IndexCoord:
    def __init__(self, ctx: CoordContext) -> None:
        self.ctx = ctx
        self.cat = ctx.catalog
        self._poll_at = 0.0

    def indexes_of(self, collection_id: int) -> list[IndexInfo]:
        return sorted((i for i in self.cat.indexes.values() if i.collection_id == collection_id), key=lambda i: i.id)

    @rpc
    @invalidates_proxy_cache
    def create_index(
        self,
        collection_id: int,
        field_name: str,
        index_name: str,
        params: dict[str, str],
        user_params: dict[str, str] | None = None,
    ) -> int:
        """Define an index; ``params`` are flattened for checking, ``user_params`` are the pairs
        as the client sent them (``params`` still JSON), which DescribeIndex gives back."""
        with self.cat.lock:
            coll = self.cat.collections.get(collection_id)
            if coll is None:
                raise MilvusError(Code.COLLECTION_NOT_FOUND, f"collection not found[collection={collection_id}]")
            field = indexed_field(coll.parsed_schema, field_name)
            if field is None:
                raise MilvusError(Code.FIELD_NOT_FOUND, f"cannot create index on non-exist field: {field_name}")
            user = {k: str(v) for k, v in params.items()}
            index_type = user.get("index_type", "AUTOINDEX") or "AUTOINDEX"
            json_path: str | None = None
            if field.dtype == DataType.JSON and is_json_index_request(index_type):
                metric = ""  # a path inside a JSON field (or a "$meta" key), see json_index.py
                normalised: dict[str, Any] = json_index_params(
                    index_type, field, coll.parsed_schema, field_name, user
                )
                json_path = normalised["json_path"]
            elif not field.is_vector:
                # scalar: no metric; built by querynodes at load (see scalar_index.py)
                metric = ""
                normalised = {"engine": resolve_scalar_index(index_type, field)}
            else:
                bm25_defaults(coll.parsed_schema, field, user)
                metric = user.get("metric_type", "COSINE" if index_type == "AUTOINDEX" else "")
                if not metric:
                    raise invalid("metric type not set for vector index")
                check_scalar_type_on_vector(index_type, field, metric)
                build_params = {k: v for k, v in user.items() if k not in ("index_type", "metric_type")}
                normalised = validate_index_params(index_type, metric, build_params, field.dtype, field.dim)
            name = index_name or field_name
            if json_path is not None and not index_name:
                # Milvus's default: the field's name plus the path, or the name of that path's index
                same = [
                    e
                    for e in self.indexes_of(collection_id)
                    if e.field_id == field.field_id and e.params.get("json_path") == json_path
                ]
                name = same[0].name if same else field.name + json_path
            for existing in self.indexes_of(collection_id):
                if existing.field_id == field.field_id:
                    other_path = existing.params.get("json_path") != json_path
                    if json_path is not None and other_path and existing.name != name:
                        continue  # another path of the same JSON field: allowed
                    if (
                        existing.name == name
                        and existing.index_type == index_type
                        and existing.metric_type == metric
                        and existing.params == normalised
                    ):
                        return existing.id
                    raise invalid("at most one distinct index is allowed per field")
                if existing.name == name:
                    raise MilvusError(
                        Code.INDEX_DUPLICATE, f"index already exists with the name {name} on another field"
                    )
            idx = IndexInfo(
                id=self.ctx.ids.alloc(),
                collection_id=collection_id,
                field_id=field.field_id,
                name=name,
                index_type=index_type,
                metric_type=metric,
                params=normalised,
                user_params=({k: str(v) for k, v in user_params.items()} if user_params is not None else user)
                | {"index_type": user.get("index_type") or index_type}
                | ({"metric_type": user.get("metric_type") or metric} if metric else {}),
                created_ts=self.ctx.tso.alloc(),
            )
            self.cat.save_index(idx)
            return idx.id

    def field_name_of(self, idx: IndexInfo) -> str:
        """The field an index is described under (a "$meta" path index: its dynamic key)."""
        coll = self.cat.collections.get(idx.collection_id)
        if coll is None:
            return ""
        return display_field_name(coll.parsed_schema.field_by_id(idx.field_id), idx.params)

    def find_index(self, collection_id: int, index_name: str = "", field_name: str = "") -> list[IndexInfo]:
        coll = self.cat.collections.get(collection_id)
        out = []
        for i in self.indexes_of(collection_id):
            fname = self.field_name_of(i)
            if (not index_name or i.name == index_name) and (not field_name or fname == field_name):
                out.append(i)
        if not out:
            raise MilvusError(
                Code.INDEX_NOT_FOUND, f"index not found[collection={coll.name if coll else collection_id}]"
            )
        return out

    @rpc
    def describe_index(self, collection_id: int, index_name: str = "", field_name: str = "") -> list[dict[str, Any]]:
        with self.cat.lock:
            segs = [s for s in self.cat.segments.values() if s.collection_id == collection_id and s.state == FLUSHED]
            live = {s.id for s in segs}  # builds of dropped (compacted) segments no longer count
            out = []
            for idx in self.find_index(collection_id, index_name, field_name):
                builds = {
                    si.segment_id: si
                    for si in self.cat.segment_indexes.values()
                    if si.index_id == idx.id and si.segment_id in live
                }
                total = sum(s.num_rows for s in segs)
                growing = sum(
                    s.num_rows
                    for s in self.cat.segments.values()
                    if s.collection_id == collection_id and s.state not in (FLUSHED, "Dropped")
                )
                done = [b for b in builds.values() if b.state == "Finished"]
                failed = [b for b in builds.values() if b.state == "Failed"]
                indexed = sum(b.num_rows for b in done)
                state = "Finished"
                if failed:
                    state = "Failed"
                elif len(done) < len(segs):
                    state = "InProgress"
                out.append(
                    {
                        "index_id": idx.id,
                        "index_name": idx.name,
                        "field_name": self.field_name_of(idx),
                        "field_id": idx.field_id,
                        "params": idx.user_params,
                        "build_params": idx.params,  # normalised (BM25's k1/b reach searches from here)
                        "total_rows": total + growing,
                        "indexed_rows": indexed,
                        "pending_index_rows": total - indexed,
                        "state": state,
                        "fail_reason": failed[0].fail_reason if failed else "",
                    }
                )
            return out

    @rpc
    @invalidates_proxy_cache
    def drop_index(self, collection_id: int, index_name: str = "", field_name: str = "") -> None:
        """Drop indexes; on a loaded collection only scalar ones (Milvus 2.6 datacoord's rule).

        Querynodes stop using a dropped scalar index by themselves: the segment's index
        version changes, so the dispatcher reloads it without that index.
        """
        with self.cat.lock:
            try:
                found = self.find_index(collection_id, index_name, field_name)
            except MilvusError:
                return
            if collection_id in self.cat.load_infos and any(not self.is_scalar(i) for i in found):
                raise invalid(f"vector index cannot be dropped on loaded collection: {collection_id}")
            for idx in found:
                self.cat.drop_index(idx)

    # --- scheduling ---------------------------------------------------------------------
    def schedule(self) -> None:
        """Create build tasks for flushed segments without one; hand pending ones to nodes."""
        with self.cat.lock:
            have = {(si.segment_id, si.index_id) for si in self.cat.segment_indexes.values()}
            new_tasks = []
            for s in list(self.cat.segments.values()):
                if s.state != FLUSHED:
                    continue
                for idx in self.indexes_of(s.collection_id):
                    if (s.id, idx.id) in have:
                        continue
                    si = SegmentIndexInfo(
                        build_id=self.ctx.ids.alloc(),
                        index_id=idx.id,
                        segment_id=s.id,
                        collection_id=s.collection_id,
                        partition_id=s.partition_id,
                        num_rows=s.num_rows,
                    )
                    if s.num_rows < MIN_ROWS_FOR_INDEX or self.is_scalar(idx):
                        si.state = "Finished"  # searched exactly, or a scalar index built at load: no files
                    new_tasks.append(si)
            for si in new_tasks:
                self.cat.save_segment_index(si)
        self._assign()
        if time.monotonic() >= self._poll_at:
            self._poll_at = time.monotonic() + 0.2
            self._poll()

    def _task_payload(self, si: SegmentIndexInfo) -> dict[str, Any]:
        idx = self.cat.indexes[si.index_id]
        seg = self.cat.segments[si.segment_id]
        field = self.cat.collections[si.collection_id].parsed_schema.field_by_id(idx.field_id)
        return {
            "build_id": si.build_id,
            "collection_id": si.collection_id,
            "partition_id": si.partition_id,
            "segment_id": si.segment_id,
            "field_id": field.field_id,
            "dtype": field.dtype,
            "dim": field.dim,
            "index_type": idx.index_type,
            "metric_type": idx.metric_type,
            "params": idx.params,
            "binlogs": seg.binlogs.get(field.field_id, []),  # none: written before the field was added
            "num_rows": seg.num_rows,
            "version": si.attempts + 1,
        }

    def _assign(self) -> None:
        nodes = [n.endpoint for n in self.ctx.nodes("indexnode")]
        if not nodes:
            return
        with self.cat.lock:
            pending = [
                si
                for si in self.cat.segment_indexes.values()
                if si.state == "InProgress" and si.node_endpoint not in nodes
            ]
            for si in pending:
                seg = self.cat.segments.get(si.segment_id)
                if seg is None or seg.state != FLUSHED:  # compacted away meanwhile: nothing to build
                    si.state, si.fail_reason, si.node_endpoint = "Failed", "segment was dropped", ""
                    self._save_if_known(si)
            tasks = [(si, self._task_payload(si)) for si in pending if si.state == "InProgress"]
        for i, (si, payload) in enumerate(tasks):
            endpoint = nodes[(si.build_id + i) % len(nodes)]
            try:
                self.ctx.router.client(endpoint).call("build_index", task=payload)
            except MilvusError as exc:
                log.warning("index task %d to %s failed: %s", si.build_id, endpoint, exc)
                continue
            with self.cat.lock:
                si.node_endpoint = endpoint
                si.attempts += 1
                self._save_if_known(si)

    def _poll(self) -> None:
        with self.cat.lock:
            by_node: dict[str, list[SegmentIndexInfo]] = {}
            for si in self.cat.segment_indexes.values():
                if si.state == "InProgress" and si.node_endpoint:
                    by_node.setdefault(si.node_endpoint, []).append(si)
        live = {n.endpoint for n in self.ctx.nodes("indexnode")}
        for endpoint, infos in by_node.items():
            if endpoint not in live:
                self._requeue(infos, "indexnode went away")
                continue
            try:
                states = self.ctx.router.client(endpoint).call("query_jobs", build_ids=[si.build_id for si in infos])
            except MilvusError as exc:
                log.warning("polling %s failed: %s", endpoint, exc)
                continue
            for si in infos:
                st = states.get(si.build_id) or states.get(str(si.build_id))
                if st is None:
                    self._requeue([si], "task unknown to its indexnode")
                elif st["state"] == "Finished":
                    with self.cat.lock:
                        si.state, si.files, si.size = "Finished", st["files"], st.get("size", 0)
                        self._save_if_known(si)
                elif st["state"] == "Failed":
                    self._requeue([si], st.get("reason", "build failed"))

    def _requeue(self, infos: list[SegmentIndexInfo], reason: str) -> None:
        with self.cat.lock:
            for si in infos:
                si.node_endpoint = ""
                if si.attempts >= MAX_ATTEMPTS:
                    si.state, si.fail_reason = "Failed", reason
                self._save_if_known(si)

    def _save_if_known(self, si: SegmentIndexInfo) -> None:
        """Save a build record unless it was dropped meanwhile (index dropped, segment collected)."""
        if si.build_id in self.cat.segment_indexes:
            self.cat.save_segment_index(si)

    def is_scalar(self, idx: IndexInfo) -> bool:
        return "engine" in idx.params

    def failed_segments(self) -> set[int]:
        """Segments with a build that gave up (they are served without that index)."""
        return {si.segment_id for si in self.cat.segment_indexes.values() if si.state == "Failed"}

    def segment_index_state(self, segment_id: int, collection_id: int) -> tuple[bool, list[dict[str, Any]]]:
        """(every index of the collection finished on this segment, the finished builds)."""
        idxs = self.indexes_of(collection_id)
        builds = [
            si for si in self.cat.segment_indexes.values() if si.segment_id == segment_id and si.state == "Finished"
        ]
        done = {si.index_id for si in builds}
        return all(i.id in done for i in idxs), [
            {
                "build_id": si.build_id,
                "field_id": self.cat.indexes[si.index_id].field_id,
                "files": si.files,
                "index_type": self.cat.indexes[si.index_id].params.get(
                    "engine", self.cat.indexes[si.index_id].index_type
                ),
                "metric_type": self.cat.indexes[si.index_id].metric_type,
                "scalar": self.is_scalar(self.cat.indexes[si.index_id]),
                "size": si.size,  # bytes of its files: the query coordinator's memory estimate
            }
            for si in builds
            if si.index_id in self.cat.indexes
        ]


_BM25_DEFAULTS = (("bm25_k1", "1.2"), ("bm25_b", "0.75"), ("bm25_avgdl", "100"))


def bm25_defaults(schema: Schema, field: Field, user: dict[str, str]) -> None:
    """Milvus's parseFunctionParamsToIndex: a BM25 output field's index is BM25 with k1/b/avgdl
    defaults; the BM25 metric on any other sparse field is refused."""
    fn = schema.function_of_output(field.name) if field.is_function_output else None
    metric = user.get("metric_type", "").upper()
    if fn is None or not fn.is_bm25:
        if metric == "BM25" and field.dtype == DataType.SparseFloatVector:
            raise invalid("only BM25 Function output field support BM25 metric type: invalid parameter"
                          "[expected=valid index params][actual=invalid index params]")
        return
    for key, value in _BM25_DEFAULTS:
        user.setdefault(key, value)
    if not metric:
        user["metric_type"] = "BM25"
    elif metric != "BM25":
        raise MilvusError(Code.PARAMETER_INVALID,
                          f"index metric type of BM25 function output field must be BM25, got {user['metric_type']}")
