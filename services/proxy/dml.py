"""Insert, upsert and delete: validate, stamp, shard, assign segments, produce on the channels."""

from __future__ import annotations

from typing import Any

import numpy as np
from pymilvus.grpc_gen import milvus_pb2
from pymilvus.grpc_gen.schema_pb2 import DataType

from common import msgs
from common.bm25 import fill_function_outputs
from common.channels import pchannel_of
from common.codec import pack
from common.errors import Code, MilvusError, invalid
from common.expr import compile_filter
from common.fielddata import decode_insert, encode_ids
from common.metrics import ROWS_INSERTED
from common.reduce import merge_rows
from common.schema import Schema
from common.sharding import bucket_of
from services.proxy.context import ProxyContext, db_of
from services.proxy.meta_cache import CollectionMeta
from services.proxy.partial_update import merge_partial, parse_ops, stored_rows_expr
from services.proxy.reader import ShardReader
from services.proxy.status import guard, ok
from services.proxy.templates import expr_params

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _row_bytes(cols: dict[int, np.ndarray], n: int) -> int:
    total = 0
    for col in cols.values():
        if col.dtype != object:
            total += col.nbytes
        else:
            sample = col[: min(n, 64)]
            total += len(pack(sample)) * n // max(1, len(sample))
    return max(1, total // max(1, n))


class DmlHandlers:
    ctx: ProxyContext
    reader: ShardReader

    @guard("Insert")
    def Insert(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        return self.ctx.scheduler.dml.run(lambda: self._write(meta, request, upsert=False))

    @guard("Upsert")
    def Upsert(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        return self.ctx.scheduler.dml.run(lambda: self._write(meta, request, upsert=True))

    def _partition_ids(self, meta: CollectionMeta, name: str, columns: dict[str, np.ndarray], n: int) -> np.ndarray:
        """The partition of each row: the named one, the default one, or by partition key."""
        key_field = meta.schema.partition_key
        if key_field is not None:
            if name:
                raise invalid("not support manually specifying the partition names if partition key mode is used")
            names = sorted(meta.partitions, key=lambda p: int(p.rsplit("_", 1)[-1]) if p[-1].isdigit() else -1)
            ids = np.array([meta.partitions[p] for p in names], dtype=np.int64)
            return ids[bucket_of(columns[key_field.name], len(ids))]
        return np.full(n, meta.partition_id(name or "_default"), dtype=np.int64)

    def _write(self, meta: CollectionMeta, request: Any, upsert: bool) -> Any:
        schema = meta.schema
        n = int(request.num_rows)
        ops = parse_ops(schema, request) if upsert else {}
        # Like Milvus, an array op makes the upsert partial without the flag.
        partial = upsert and (bool(getattr(request, "partial_update", False)) or bool(ops))
        columns = decode_insert(schema, request.fields_data, n, for_upsert=upsert, partial_update=partial)
        pk = schema.primary
        existing = n
        if partial:
            # Milvus 2.6 rejects these in any upsert; 2.5 (whose API Quiver reports) only in a partial one.
            if len(np.unique(columns[pk.name])) != n:
                raise invalid("duplicate primary keys are not allowed in the same batch")
            stored = self._stored_rows(meta, columns[pk.name])
            existing = len(stored[pk.name]) if stored else 0
            columns = merge_partial(schema, columns, stored, ops)
            fill_function_outputs(schema, columns)  # from the merged text
        first = int(self.ctx.coord.call("alloc_ids", count=n))
        row_ids = np.arange(first, first + n, dtype=np.int64)
        old_pks = columns.get(pk.name) if upsert else None
        # auto_id: the row ids are the keys (as strings for VarChar); an upsert replaces the keys it was sent
        if pk.name not in columns or (upsert and pk.auto_id):
            columns[pk.name] = row_ids.copy() if pk.dtype == DataType.Int64 else row_ids.astype(str).astype(object)
        pks = columns[pk.name]
        parts = self._partition_ids(meta, request.partition_name, columns, n)
        by_id = self._by_field_id(schema, columns)
        shards = bucket_of(pks, len(meta.vchannels))
        with self.ctx.ticker.dml() as ts:
            if old_pks is not None:
                self._produce_deletes(meta, old_pks, bucket_of(old_pks, len(meta.vchannels)), ts, -1)
            for shard, vchannel in enumerate(meta.vchannels):
                in_shard = shards == shard
                for pid in np.unique(parts[in_shard]):
                    rows = np.flatnonzero(in_shard & (parts == pid))
                    self._produce_inserts(meta, vchannel, int(pid), rows, row_ids, by_id, ts)
        result = milvus_pb2.MutationResult(
            status=ok(), IDs=encode_ids(pks, pk.dtype), succ_index=list(range(n)), timestamp=ts, insert_cnt=n
        )
        if upsert:  # as Milvus: rows inserted, keys deleted (a partial update deletes only stored keys)
            result.upsert_cnt = n
            result.delete_cnt = existing
        ROWS_INSERTED.inc(n)
        return result

    def _stored_rows(self, meta: CollectionMeta, pks: np.ndarray) -> dict[str, np.ndarray]:
        """The stored rows of ``pks`` with every field, read at Strong consistency."""
        expr, fetch = stored_rows_expr(meta.schema)
        gts = int(self.ctx.coord.call("alloc_timestamp"))
        self.ctx.ticker.report()
        replies = self.reader.fan_out(
            meta,
            "query",
            partition_ids=[],
            expr=expr,
            expr_params={"pks": pks.tolist()},
            output_fields=fetch,
            limit=None,
            guarantee_ts=gts,
        )
        return merge_rows([r["rows"] for r in replies], meta.schema.primary.name, None)

    @staticmethod
    def _by_field_id(
        schema: Schema, columns: dict[str, np.ndarray]
    ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
        cols, valid = {}, {}
        for f in schema.fields:
            if f.name in columns:
                cols[f.field_id] = columns[f.name]
            if f"{f.name}.valid" in columns:
                valid[f.field_id] = columns[f"{f.name}.valid"]
        return cols, valid

    def _produce_inserts(
        self,
        meta: CollectionMeta,
        vchannel: str,
        partition_id: int,
        rows: np.ndarray,
        row_ids: np.ndarray,
        by_id: tuple[dict[int, np.ndarray], dict[int, np.ndarray]],
        ts: int,
    ) -> None:
        cols, valid = by_id
        assignments = self.ctx.coord.call(
            "assign_segments",
            collection_id=meta.id,
            partition_id=partition_id,
            vchannel=vchannel,
            count=len(rows),
            ts=ts,
        )
        start = 0
        pchannel = pchannel_of(vchannel)
        per_row = _row_bytes({f: c[rows[:64]] for f, c in cols.items()}, min(64, len(rows)))
        for segment_id, count in assignments:
            seg_rows = rows[start : start + count]
            start += count
            for piece in msgs.split_rows(len(seg_rows), per_row):
                idx = seg_rows[piece]
                msg = msgs.InsertMsg(
                    vchannel=vchannel,
                    collection_id=meta.id,
                    partition_id=partition_id,
                    segment_id=segment_id,
                    timestamp=ts,
                    row_ids=row_ids[idx],
                    columns={f: c[idx] for f, c in cols.items()},
                    valid={f: v[idx] for f, v in valid.items()},
                )
                self.ctx.stream.produce(pchannel, msgs.encode(msg))

    def _produce_deletes(
        self, meta: CollectionMeta, pks: np.ndarray, shards: np.ndarray, ts: int, partition_id: int
    ) -> None:
        for shard, vchannel in enumerate(meta.vchannels):
            sel = pks[shards == shard]
            if len(sel) == 0:
                continue
            for piece in msgs.split_rows(len(sel), 64):
                msg = msgs.DeleteMsg(vchannel, meta.id, partition_id, ts, sel[piece])
                self.ctx.stream.produce(pchannel_of(vchannel), msgs.encode(msg))

    @guard("Delete")
    def Delete(self, request: Any, context: Any) -> Any:
        meta = self.ctx.cache.get(db_of(request, context), request.collection_name)
        return self.ctx.scheduler.dml.run(lambda: self._delete(meta, request))

    def _delete(self, meta: CollectionMeta, request: Any) -> Any:
        schema = meta.schema
        expr = request.expr or ""
        if not expr.strip():
            raise invalid("delete plan can't be empty or always true : " + expr)
        values = expr_params(request.expr_template_values)
        try:
            flt = compile_filter(expr, schema, values)
        except MilvusError as exc:
            if exc.code != Code.PARAMETER_INVALID:
                raise
            # proxy task_delete.go: WrapErrParameterInvalidMsg("failed to create delete plan: %v", err)
            raise invalid(f"failed to create delete plan: {exc.message}: invalid parameter") from None
        partition_id = meta.partition_id(request.partition_name) if request.partition_name else -1
        found = flt.pk_values()
        if found is not None:
            if schema.primary.dtype == 5:
                # A literal outside int64 names no stored key; deleting it deletes nothing.
                found = [v for v in found if isinstance(v, int) and _INT64_MIN <= v <= _INT64_MAX]
            pks = np.asarray(found, dtype=np.int64 if schema.primary.dtype == 5 else object)
        else:
            pks = self._query_pks(meta, expr, values, partition_id)
        shards = bucket_of(pks, len(meta.vchannels))
        with self.ctx.ticker.dml() as ts:
            self._produce_deletes(meta, pks, shards, ts, partition_id)
        # Like Milvus since 2.3.2, a delete reports how many keys it deleted, not the keys.
        return milvus_pb2.MutationResult(status=ok(), delete_cnt=len(pks), timestamp=ts)

    def _query_pks(
        self, meta: CollectionMeta, expr: str, values: dict[str, Any] | None, partition_id: int
    ) -> np.ndarray:
        """Delete by a general expression: find the matching pks first (at Strong consistency)."""
        gts = int(self.ctx.coord.call("alloc_timestamp"))
        self.ctx.ticker.report()
        replies = self.reader.fan_out(
            meta,
            "query",
            partition_ids=[partition_id] if partition_id >= 0 else [],
            expr=expr,
            expr_params=values,
            output_fields=[meta.schema.primary.name],
            limit=None,
            guarantee_ts=gts,
        )
        pk = meta.schema.primary.name
        parts = [r["rows"][pk] for r in replies if r["rows"]]
        if not parts:
            return np.empty(0, dtype=np.int64 if meta.schema.primary.dtype == 5 else object)
        return np.unique(np.concatenate(parts))
