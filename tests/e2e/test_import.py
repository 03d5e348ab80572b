"""Bulk import end to end: files in the object storage, Import / REST jobs, then query and search.

Files are written with json / pyarrow / numpy into the storage the server uses (the local
storage root in standalone, the S3 bucket in a cluster). Jobs start with pymilvus's
utility.do_bulk_insert (gRPC Import) and with pymilvus.bulk_writer's bulk_import REST helpers,
and the imported rows must equal an exact model: the same rows inserted through Insert into a
twin collection (same routing to partitions), or the rows themselves. Bad files fail the job
with a reason naming the field, and leave the collection as it was.
"""

from __future__ import annotations

import importlib.util
import io
import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pymilvus import DataType, MilvusClient, connections, utility
from pymilvus.client.types import BulkInsertState

from tests.e2e.server import StandaloneServer

pytestmark = pytest.mark.e2e
warnings.filterwarnings("ignore", category=DeprecationWarning)

DIM = 8
WAIT = 180.0  # a generous deadline for a job (CPU is shared); not a timing assertion


def _bulk_import_module() -> ModuleType:
    """pymilvus.bulk_writer.bulk_import without the package __init__ (which wants minio/azure)."""
    import pymilvus

    path = Path(pymilvus.__file__).parent / "bulk_writer" / "bulk_import.py"
    spec = importlib.util.spec_from_file_location("pymilvus_bulk_import", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Storage:
    """Puts files where the server's import reads them."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.s3: Any = None
        if not isinstance(server, StandaloneServer):
            import boto3
            from botocore.config import Config

            s3 = server.cluster.s3
            self.s3 = boto3.client(
                "s3", endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key,
                aws_secret_access_key=s3.secret_key, region_name="us-east-1",
                config=Config(s3={"addressing_style": "path"}),
            )

    def put(self, key: str, data: bytes) -> str:
        if self.s3 is not None:
            self.s3.put_object(Bucket="quiver", Key=key, Body=data)
        else:
            path = self.server.data_dir / "files" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return key


def _parquet(columns: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _rows(start: int, n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    vecs = rng.random((n, DIM), dtype=np.float32)
    rows = []
    for i in range(n):
        pk = start + i
        row: dict[str, Any] = {"pk": pk, "vec": vecs[i].tolist(), "tag": f"t{pk % 5}", "extra": pk * 2}
        if pk % 3:
            row["age"] = pk % 90
        rows.append(row)
    return rows


def _model(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {r["pk"]: {"age": r.get("age"), "tag": r.get("tag", "none"), "extra": r["extra"]} for r in rows}


def _wait_job(client: MilvusClient, job: int) -> BulkInsertState:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        state = utility.get_bulk_insert_state(job)
        if state.state in (BulkInsertState.ImportCompleted, BulkInsertState.ImportFailed):
            return state
        time.sleep(0.3)
    raise AssertionError(f"import job {job} did not finish: {utility.get_bulk_insert_state(job)}")


def _check_collection(client: MilvusClient, name: str, model: dict[int, dict[str, Any]]) -> None:
    got = client.query(name, filter="pk >= 0", output_fields=["pk", "age", "tag", "extra"], limit=16384)
    assert {r["pk"]: {"age": r["age"], "tag": r["tag"], "extra": r.get("extra")} for r in got} == model


@pytest.fixture(scope="module")
def env(server: Any) -> Iterator[tuple[MilvusClient, Storage, Any]]:
    client = MilvusClient(uri=server.uri)
    connections.connect("default", uri=server.uri)
    yield client, Storage(server), server
    connections.disconnect("default")
    client.close()


def _create(client: MilvusClient, name: str, *, auto_id: bool = False, partition_key: bool = False) -> None:
    schema = client.create_schema(auto_id=auto_id, enable_dynamic_field=True)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("age", DataType.INT32, nullable=True)
    schema.add_field("tag", DataType.VARCHAR, max_length=16, default_value="none", is_partition_key=partition_key)
    index = client.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    kwargs: dict[str, Any] = {"num_partitions": 4} if partition_key else {}
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong", **kwargs)


def test_json_parquet_numpy_imports_equal_the_model(env: tuple[MilvusClient, Storage, Any]) -> None:
    client, storage, _ = env
    _create(client, "imp_main")
    # JSON wrapped in {"rows": ...}, a plain JSON list, Parquet, and a NumPy batch
    rows_a, rows_b, rows_c, rows_d = _rows(0, 300, 1), _rows(300, 200, 2), _rows(500, 250, 3), _rows(750, 120, 4)
    storage.put("imp/a.json", json.dumps({"rows": rows_a}).encode())
    storage.put("imp/b.json", json.dumps(rows_b).encode())
    storage.put("imp/c.parquet", _parquet({
        "pk": [r["pk"] for r in rows_c], "vec": [r["vec"] for r in rows_c], "tag": [r["tag"] for r in rows_c],
        "age": pa.array([r.get("age") for r in rows_c], type=pa.int32()),
        "$meta": [json.dumps({"extra": r["extra"]}) for r in rows_c],
    }))
    npy: dict[str, np.ndarray] = {
        "pk": np.array([r["pk"] for r in rows_d], dtype=np.int64),
        "vec": np.array([r["vec"] for r in rows_d], dtype=np.float32),
        "tag": np.array([r["tag"] for r in rows_d]),
        "$meta": np.array([json.dumps({"extra": r["extra"]}) for r in rows_d]),
    }
    npy_files = [storage.put(f"imp/d/{k}.npy", _npy(v)) for k, v in npy.items()]
    for r in rows_d:  # NumPy has no nulls: the batch leaves "age" out, so it is null everywhere
        r.pop("age", None)
    model: dict[int, dict[str, Any]] = {}
    for files, rows in ((["imp/a.json"], rows_a), (["imp/b.json"], rows_b), (["imp/c.parquet"], rows_c),
                        (npy_files, rows_d)):
        job = utility.do_bulk_insert("imp_main", files=files)
        state = _wait_job(client, job)
        assert state.state == BulkInsertState.ImportCompleted, state
        assert state.row_count == len(rows) and state.progress == 100
        model |= _model(rows)
        _check_collection(client, "imp_main", model)
    every = rows_a + rows_b + rows_c + rows_d
    for r in every[::97]:
        hit = client.search("imp_main", data=[r["vec"]], limit=1, anns_field="vec", output_fields=["pk"])[0][0]
        assert hit["entity"]["pk"] == r["pk"] and hit["distance"] < 1e-6
    assert client.query("imp_main", filter="", output_fields=["count(*)"])[0]["count(*)"] == len(every)
    tasks = utility.list_bulk_insert_tasks(collection_name="imp_main")
    assert len(tasks) == 4 and all(t.state == BulkInsertState.ImportCompleted for t in tasks)


def test_deletes_reach_imported_rows(env: tuple[MilvusClient, Storage, Any]) -> None:
    """Deleted imported rows stay deleted after flush, release and reload (delta logs were written)."""
    client, _, _ = env
    gone = list(range(0, 300, 7))
    client.delete("imp_main", ids=gone)
    client.flush("imp_main")
    client.release_collection("imp_main")
    client.load_collection("imp_main")
    got = client.query("imp_main", filter=f"pk in {gone + [1, 2]}", output_fields=["pk"])
    assert sorted(r["pk"] for r in got) == [1, 2]


@pytest.mark.parametrize(
    ("name", "rows", "fragments"),
    [
        ("missing", [{"pk": 1, "age": 3}], ["value of field 'vec' is missed"]),
        ("wrong_dim", [{"pk": 1, "vec": [0.5] * (DIM - 1)}], ["expected dim '8'", "'vec'", "got dim '7'"]),
        ("wrong_type", [{"pk": 1, "vec": [0.5] * DIM}, {"pk": 2, "vec": [0.5] * DIM, "age": "x"}],
         ["expected type 'Int32'", "'age'"]),
    ],
)
def test_bad_json_files_fail_and_import_nothing(
    env: tuple[MilvusClient, Storage, Any], name: str, rows: list[dict[str, Any]], fragments: list[str]
) -> None:
    client, storage, _ = env
    before = client.query("imp_main", filter="", output_fields=["count(*)"])[0]["count(*)"]
    good = _rows(5000, 50, 9)
    path = storage.put(f"bad/{name}.json", json.dumps(good + rows).encode())
    state = _wait_job(client, utility.do_bulk_insert("imp_main", files=[path]))
    assert state.state == BulkInsertState.ImportFailed
    for fragment in (*fragments, path):
        assert fragment in state.infos["failed_reason"], state.infos
    assert state.row_count == 0
    assert client.query("imp_main", filter="", output_fields=["count(*)"])[0]["count(*)"] == before
    assert client.query("imp_main", filter="pk >= 5000", output_fields=["pk"]) == []


def test_bad_requests_are_refused(env: tuple[MilvusClient, Storage, Any]) -> None:
    client, storage, _ = env
    with pytest.raises(Exception, match="unexpected file type"):
        utility.do_bulk_insert("imp_main", files=["x/data.csv"])
    with pytest.raises(Exception, match="only accepts one file"):
        utility.do_bulk_insert("imp_main", files=["a.json", "b.json"])
    with pytest.raises(Exception, match=r"collection not found\[database=default\]\[collection=no_such_collection\]"):
        utility.do_bulk_insert("no_such_collection", files=["a.json"])
    with pytest.raises(Exception, match="cannot find import job"):
        utility.get_bulk_insert_state(123456789)
    state = _wait_job(client, utility.do_bulk_insert("imp_main", files=["nowhere/none.parquet"]))
    assert state.state == BulkInsertState.ImportFailed and "does not exist" in state.infos["failed_reason"]


def test_auto_id_and_partition_key_route_like_insert(env: tuple[MilvusClient, Storage, Any]) -> None:
    """Rows imported into a partition-key collection land in the partitions an Insert would pick."""
    client, storage, _ = env
    _create(client, "imp_pkey", auto_id=True, partition_key=True)
    _create(client, "imp_pkey_twin", auto_id=True, partition_key=True)
    rows = [{k: v for k, v in r.items() if k != "pk"} for r in _rows(0, 400, 5)]
    for i, r in enumerate(rows):
        r["extra"] = i
    storage.put("pkey/rows.json", json.dumps(rows).encode())
    with pytest.raises(Exception, match="partition key"):
        utility.do_bulk_insert("imp_pkey", files=["pkey/rows.json"], partition_name="_default_0")
    state = _wait_job(client, utility.do_bulk_insert("imp_pkey", files=["pkey/rows.json"]))
    assert state.state == BulkInsertState.ImportCompleted, state.infos
    client.insert("imp_pkey_twin", rows)
    for part in client.list_partitions("imp_pkey"):
        got = client.query("imp_pkey", filter="", output_fields=["extra", "tag"], partition_names=[part], limit=1000)
        want = client.query("imp_pkey_twin", filter="", output_fields=["extra", "tag"], partition_names=[part],
                            limit=1000)
        assert sorted((r["extra"], r["tag"]) for r in got) == sorted((r["extra"], r["tag"]) for r in want)
    pks = [r["pk"] for r in client.query("imp_pkey", filter="", output_fields=["pk"], limit=1000)]
    assert len(pks) == len(set(pks)) == 400
    bad = storage.put("pkey/with_pk.json", json.dumps([{"pk": 1, "vec": [0.0] * DIM, "tag": "a"}]).encode())
    state = _wait_job(client, utility.do_bulk_insert("imp_pkey", files=[bad]))
    assert state.state == BulkInsertState.ImportFailed
    assert "'pk' is auto-generated" in state.infos["failed_reason"]


def test_rest_bulk_import_helpers(env: tuple[MilvusClient, Storage, Any]) -> None:
    """pymilvus.bulk_writer's bulk_import / get_import_progress / list_import_jobs against REST v2."""
    client, storage, server = env
    bulk = _bulk_import_module()
    url = f"http://127.0.0.1:{server.http_port}"
    _create(client, "imp_rest")
    rows_1, rows_2 = _rows(0, 150, 11), _rows(150, 90, 12)
    for key, rows in (("rest/1.parquet", rows_1), ("rest/2.parquet", rows_2)):
        storage.put(key, _parquet({
            "pk": [r["pk"] for r in rows], "vec": [r["vec"] for r in rows], "tag": [r["tag"] for r in rows],
            "age": pa.array([r.get("age") for r in rows], type=pa.int32()),
            "$meta": [json.dumps({"extra": r["extra"]}) for r in rows],
        }))
    with pytest.raises(Exception, match=r'code: 2100, message: parse timeout failed.*"soon"'):
        bulk.bulk_import(url=url, collection_name="imp_rest", files=[["rest/1.parquet"]], api_key="root:Milvus",
                         options={"timeout": "soon"})
    resp = bulk.bulk_import(url=url, collection_name="imp_rest", files=[["rest/1.parquet"], ["rest/2.parquet"]],
                            api_key="root:Milvus", options={"timeout": "5m"})
    job_id = resp.json()["data"]["jobId"]
    assert isinstance(job_id, str) and job_id.isdigit()
    deadline = time.monotonic() + WAIT
    while True:
        data = bulk.get_import_progress(url=url, job_id=job_id, api_key="root:Milvus").json()["data"]
        if data["state"] in ("Completed", "Failed") or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert data["state"] == "Completed", data
    assert data["jobId"] == job_id and data["collectionName"] == "imp_rest"
    assert data["progress"] == 100 and data["importedRows"] == data["totalRows"] == 240
    assert [d["fileName"] for d in data["details"]] == ["rest/1.parquet", "rest/2.parquet"]
    assert [(d["importedRows"], d["totalRows"]) for d in data["details"]] == [(150, 150), (90, 90)]
    assert data["fileSize"] == sum(d["fileSize"] for d in data["details"]) and data["details"][0]["fileSize"] > 0
    _check_collection(client, "imp_rest", _model(rows_1 + rows_2))
    listed = bulk.list_import_jobs(url=url, collection_name="imp_rest", api_key="root:Milvus").json()["data"]
    assert listed["records"] == [
        {"jobId": job_id, "collectionName": "imp_rest", "state": "Completed", "progress": 100}
    ]
    with pytest.raises(Exception, match="code: 2100, message: cannot find import job with id 987654321"):
        bulk.get_import_progress(url=url, job_id="987654321", api_key="root:Milvus")
    storage.put("rest/bad.parquet", _parquet({"pk": [1], "vec": [[0.1] * 3], "tag": ["x"]}))
    job_id = bulk.bulk_import(url=url, collection_name="imp_rest", files=[["rest/bad.parquet"]],
                              api_key="root:Milvus").json()["data"]["jobId"]
    deadline = time.monotonic() + WAIT
    while True:
        data = bulk.get_import_progress(url=url, job_id=job_id, api_key="root:Milvus").json()["data"]
        if data["state"] in ("Completed", "Failed") or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert data["state"] == "Failed" and "expected dim '8'" in data["reason"]
    _check_collection(client, "imp_rest", _model(rows_1 + rows_2))


def test_jobs_survive_a_restart(tmp_path: Path) -> None:
    """Job records live in the KV store: after a restart the job is still there, rows too."""
    srv = StandaloneServer(tmp_path / "data")
    srv.start()
    try:
        client = MilvusClient(uri=srv.uri)
        connections.connect("restart", uri=srv.uri)
        _create(client, "imp_restart")
        rows = _rows(0, 100, 21)
        Storage(srv).put("r/rows.json", json.dumps(rows).encode())
        job = utility.do_bulk_insert("imp_restart", files=["r/rows.json"], using="restart")
        deadline = time.monotonic() + WAIT
        while utility.get_bulk_insert_state(job, using="restart").state != BulkInsertState.ImportCompleted:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        connections.disconnect("restart")
        client.close()
        srv.stop()
        srv.start()
        client = MilvusClient(uri=srv.uri)
        connections.connect("restart", uri=srv.uri)
        state = utility.get_bulk_insert_state(job, using="restart")
        assert state.state == BulkInsertState.ImportCompleted and state.row_count == 100
        client.load_collection("imp_restart")
        _check_collection(client, "imp_restart", _model(rows))
        connections.disconnect("restart")
        client.close()
    finally:
        srv.stop()
