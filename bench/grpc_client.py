"""A minimal Milvus-protocol search client: the server's cost without pymilvus's.

pymilvus turns every hit of a search reply into Python objects (a ``Hit`` dict per row, a
``Hits`` list per query): for nq=100 x top-10 that is ~2 ms of client CPU per call on this
project's machine, about as long as faiss's whole search, and it is spent in the client, not in
the database. Issue #4's targets compare the database with raw faiss, so the bench also drives
Quiver with this client, which speaks the same wire protocol through pymilvus's generated
protobuf stubs but builds the request from numpy rows and decodes ids and scores straight into
numpy arrays (what a Go or C++ client, or a Python client built for throughput, would do).

It is a real client, not a shortcut into the server: requests go over gRPC to the proxy's
public port and pass through the same handler, auth/quota guard and query path as pymilvus's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc


class SearchFailed(RuntimeError):
    """The server answered a search with a non-success status."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"search failed: code {code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class SearchReply:
    """One search reply as numpy arrays: row ``i`` of ``ids``/``scores`` is query ``i``'s hits."""

    ids: list[np.ndarray]
    scores: list[np.ndarray]


def _target(uri: str) -> str:
    """host:port of a pymilvus-style ``http://host:port`` URI."""
    target = uri.removeprefix("http://").rstrip("/")
    if "://" in target:
        raise ValueError(f"unsupported URI for the gRPC client: {uri!r} (use http://host:port)")
    return target


class LeanSearchClient:
    """Float-vector search over one gRPC channel; one instance per collection and field."""

    def __init__(self, uri: str, collection: str, anns_field: str, metric: str = "L2") -> None:
        self.channel = grpc.insecure_channel(
            _target(uri),
            options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)],
        )
        self.stub: Any = milvus_pb2_grpc.MilvusServiceStub(self.channel)
        self.collection = collection
        self.anns_field = anns_field
        self.metric = metric

    def request(self, queries: np.ndarray, limit: int, params: dict[str, Any], expr: str = "") -> Any:
        """The SearchRequest pymilvus would send for these rows (float32, one row per query).

        Like pymilvus without ``consistency_level``, it reads at the collection's consistency level.
        """
        rows = np.ascontiguousarray(queries, dtype=np.float32)
        if rows.ndim != 2:
            raise ValueError(f"queries must be a 2-d array, got shape {rows.shape}")
        group = common_pb2.PlaceholderGroup(
            placeholders=[
                common_pb2.PlaceholderValue(
                    tag="$0", type=common_pb2.PlaceholderType.FloatVector, values=[r.tobytes() for r in rows]
                )
            ]
        )
        pairs = {
            "anns_field": self.anns_field,
            "topk": str(limit),
            "metric_type": self.metric,
            "params": json.dumps(params),
            "round_decimal": "-1",
        }
        return milvus_pb2.SearchRequest(
            collection_name=self.collection,
            dsl=expr,
            dsl_type=common_pb2.BoolExprV1,
            placeholder_group=group.SerializeToString(),
            search_params=[common_pb2.KeyValuePair(key=k, value=v) for k, v in pairs.items()],
            nq=len(rows),
            use_default_consistency=True,  # the collection's consistency level, as pymilvus asks by default
        )

    def search(self, queries: np.ndarray, limit: int, params: dict[str, Any], expr: str = "") -> SearchReply:
        reply = self.stub.Search(self.request(queries, limit, params, expr))
        status = reply.status
        if status.code != 0 or status.error_code != 0:
            raise SearchFailed(status.code or status.error_code, status.reason)
        res = reply.results
        if res.ids.HasField("int_id"):
            ids = np.array(res.ids.int_id.data, dtype=np.int64)
        else:
            ids = np.array(res.ids.str_id.data)
        scores = np.array(res.scores, dtype=np.float32)
        bounds = np.cumsum(np.array(res.topks, dtype=np.int64))[:-1]
        return SearchReply(ids=np.split(ids, bounds), scores=np.split(scores, bounds))

    def close(self) -> None:
        self.channel.close()
