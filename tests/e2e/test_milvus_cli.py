"""milvus_cli (PyPI ``milvus-cli``), unmodified, driven through its interactive prompt against Quiver.

milvus_cli is the command-line client Milvus users reach for; it is a REPL built on prompt_toolkit
and click that asks for most arguments interactively, so the test drives it the way a person does:
in a pseudo-terminal (pexpect), answering each prompt. It lives in a virtualenv of its own under
``.venv-clients/`` (it needs pymilvus 2.6, the project's venv has 3.0), built on first use and reused.

Covered: connect, list collections, show (describe) collection, query, search, delete by IDs and by
expression, and a bad filter whose Milvus error reaches the user. The data is written and checked
with the project's pymilvus, so every answer the CLI prints is compared with known rows.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pexpect
import pytest
from pymilvus import DataType, MilvusClient

from tests.e2e.client_venvs import CACHE_DIR, IndexUnreachable, VenvBuildError, index_reachable

pytestmark = pytest.mark.e2e

MILVUS_CLI_VERSION = "1.2.1"
PYMILVUS_FOR_CLI = "2.6.17"  # milvus-cli 1.2.1 asks for pymilvus>=2.6; pinned so a run is reproducible
REQUIREMENTS = (f"milvus-cli=={MILVUS_CLI_VERSION}", f"pymilvus=={PYMILVUS_FOR_CLI}")
PROMPT = "milvus_cli > "
DIM = 4
ROWS: list[dict[str, Any]] = [
    {"id": i, "color": ["red", "green", "blue"][i % 3], "vec": [float(i), float(i) / 2, 1.0, -float(i)]}
    for i in range(1, 13)
]


def _cli_venv() -> Path:
    """A venv holding milvus-cli; returns the path of its ``milvus_cli`` script."""
    py = f"py{sys.version_info.major}.{sys.version_info.minor}"
    path = CACHE_DIR / f"milvus-cli-{MILVUS_CLI_VERSION}-{py}"
    script = path / "bin" / "milvus_cli"
    stamp = path / "quiver-client-venv.json"
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / f".milvus-cli-{MILVUS_CLI_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if stamp.exists() and json.loads(stamp.read_text()) == list(REQUIREMENTS) and script.exists():
                return script
            shutil.rmtree(path, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True)
            cmd = [str(path / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", *REQUIREMENTS]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
            if res.returncode != 0:
                shutil.rmtree(path, ignore_errors=True)
                if not index_reachable():
                    raise IndexUnreachable(f"the package index is unreachable:\n{res.stderr[-2000:]}")
                raise VenvBuildError(f"{' '.join(cmd)} exited {res.returncode}:\n{res.stderr[-4000:]}")
            stamp.write_text(json.dumps(list(REQUIREMENTS)))
            return script
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def cli_script() -> Path:
    try:
        return _cli_venv()
    except IndexUnreachable as exc:
        pytest.skip(f"cannot install milvus-cli: {exc}")


@pytest.fixture(scope="module")
def collection(server: object) -> Iterator[str]:
    """A loaded collection with known rows, written with the project's pymilvus."""
    name = "cli_films"
    client = MilvusClient(uri=server.uri)  # type: ignore[attr-defined]
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("color", DataType.VARCHAR, max_length=16)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("vec", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 64})
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    client.insert(name, ROWS)
    client.flush(name)  # the entity count the CLI shows comes from flushed segments, as in Milvus
    client.load_collection(name)
    yield name
    client.drop_collection(name)
    client.close()


class Cli:
    """One milvus_cli REPL in a pseudo-terminal."""

    def __init__(self, script: Path, home: Path) -> None:
        env = dict(os.environ) | {"HOME": str(home), "TERM": "dumb", "COLUMNS": "250", "LINES": "50"}
        env.pop("ZILLIZ_URI", None)
        env.pop("ZILLIZ_TOKEN", None)
        self.child = pexpect.spawn(
            str(script), env=env, encoding="utf-8", timeout=60, dimensions=(50, 250), echo=False
        )
        self.child.expect_exact(PROMPT)

    def run(self, command: str, answers: Sequence[tuple[str, str]] = ()) -> str:
        """Send a command, answer each (prompt text, reply) in order, and return what it printed."""
        self.child.sendline(command)
        out = []
        for prompt, reply in answers:
            self.child.expect_exact(prompt)
            out.append(self.child.before)
            self.child.sendline(reply)
        self.child.expect_exact(PROMPT)
        out.append(self.child.before)
        return "".join(out)

    def close(self) -> None:
        # milvus_cli 1.2.1's "exit" command does not leave the loop; Ctrl-D (EOF at the prompt) does.
        self.child.sendcontrol("d")
        self.child.expect(pexpect.EOF, timeout=30)
        self.child.close()


@pytest.fixture(scope="module")
def cli(cli_script: Path, server: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    session = Cli(cli_script, tmp_path_factory.mktemp("cli-home"))
    out = session.run(f"connect -uri {server.uri}")  # type: ignore[attr-defined]
    assert "Connect Milvus successfully" in out, out
    yield session
    session.close()


def _query(cli: Cli, name: str, expr: str, fields: str = "id,color") -> str:
    return cli.run(
        "query",
        [
            ("Collection name", name),
            ("The query expression", expr),
            ("The names of partitions to query", ""),
            ("Fields to return", fields),
            ("timeout", ""),
            ("Guarantee timestamp", ""),
            ("Graceful time", ""),
        ],
    )


def _ids_in(text: str) -> set[int]:
    """The ``id`` values in milvus_cli's JSON output."""
    return {int(m) for m in re.findall(r'"id":\s*(\d+)', text)}


def test_list_and_describe(cli: Cli, collection: str) -> None:
    listed = cli.run("list collections")
    assert collection in listed, listed
    shown = cli.run(f"show collection -c {collection}")
    # milvus_cli prints each field as "name type-number [params]": INT64=5, VARCHAR=21, FLOAT_VECTOR=101.
    for expected in ("*id 5", "color 21 max_length: 16", f"vec 101 dim: {DIM}", "_default", "- vec"):
        assert expected in shown, shown
    assert re.search(r"Entities\s*\|\s*12\b", shown), shown


def test_query(cli: Cli, collection: str) -> None:
    assert "json" in cli.run("set output json")
    out = _query(cli, collection, 'color == "red" and id < 10')
    expected = {r["id"] for r in ROWS if r["color"] == "red" and r["id"] < 10}
    assert _ids_in(out) == expected, out
    assert '"green"' not in out and '"blue"' not in out


def test_query_bad_field_reports_milvus_error(cli: Cli, collection: str) -> None:
    out = _query(cli, collection, "no_such_field > 3")
    assert "no_such_field" in out, out
    assert not _ids_in(out)


def test_search(cli: Cli, collection: str) -> None:
    target = ROWS[4]  # id 5
    out = cli.run(
        "search",
        [
            ("Collection name", collection),
            ("The vector field used to search", "vec"),
            ("Vector data", json.dumps(target["vec"])),
            ("Search parameter ef's value", "32"),
            ("Groups search by Field", ""),
            ("decimal places", "-1"),
            ("topk", "3"),
            ("The boolean expression used to filter attribute", ""),
            ("The names of partitions to search", ""),
            ("Fields to return", "id,color"),
            ("Guarantee timestamp", ""),
        ],
    )
    assert "Metric type: L2" in out, out
    hits = [int(m) for m in re.findall(r"\bid\D{1,8}?(\d+)", out.split("Search result")[-1])]
    assert hits[:1] == [target["id"]], out
    # The three nearest rows of a row on this line are itself and its two neighbours.
    assert set(hits[:3]) == {4, 5, 6}, out


def test_delete_by_ids_and_expression(cli: Cli, collection: str, server: object) -> None:
    out = cli.run(f"delete ids -c {collection}", [("The IDs to delete", "[1, 2]"), ("Do you want to continue?", "y")])
    assert "Error" not in out, out
    out = cli.run(
        f"delete entities -c {collection}",
        [("The expression to specify entities to be deleted", 'color == "blue"'), ("Do you want to continue?", "y")],
    )
    assert "Error" not in out, out
    remaining = {r["id"] for r in ROWS if r["id"] not in (1, 2) and r["color"] != "blue"}
    assert _ids_in(_query(cli, collection, "id >= 0")) == remaining
    client = MilvusClient(uri=server.uri)  # type: ignore[attr-defined]
    try:
        got = client.query(collection, filter="id >= 0", output_fields=["id"], consistency_level="Strong")
    finally:
        client.close()
    assert {r["id"] for r in got} == remaining
