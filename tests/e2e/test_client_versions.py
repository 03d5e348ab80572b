"""Real, unmodified pymilvus 2.5.x, 2.6.x and 3.0.x clients against one standalone server.

Quiver speaks the Milvus 2.x protocol, and users arrive with whichever pymilvus they already
have. Each pinned older release gets a cached virtualenv (tests/e2e/client_venvs.py) built once
per session; the project's own venv supplies 3.0.x. The same two client scripts
(tests/e2e/clients/: the hello_milvus ORM flow and the MilvusClient quick-start flow) run as
subprocesses under every one of those interpreters, each on its own collection names so all
versions share this module's server. A script checks its own results and prints ``OK`` last;
the test demands exit code 0 and that line, and shows the script's output and the server log
when either is missing.

The tests skip only when pip cannot reach the package index to build a venv; every other
failure to build one fails the test with pip's output.
"""

from __future__ import annotations

import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.client_venvs import (
    PYMILVUS_RELEASES,
    ClientEnv,
    IndexUnreachable,
    VenvBuildError,
    ensure_env,
    own_env,
)
from tests.e2e.server import StandaloneServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

CLIENTS_DIR = Path(__file__).resolve().parent / "clients"
OWN = "own"
CLIENTS = [*PYMILVUS_RELEASES, OWN]
FLOWS = {"hello_milvus": "hello_milvus_flow.py", "quickstart": "quickstart_flow.py"}
FLOW_TIMEOUT_S = 600.0


@pytest.fixture(scope="session")
def client_envs() -> dict[str, ClientEnv | VenvBuildError]:
    """Every client interpreter, keyed as in CLIENTS; venvs are built in parallel, once a session.

    A build error is returned, not raised, so one broken release does not hide the others.
    """

    def build(version: str) -> ClientEnv | VenvBuildError:
        try:
            return ensure_env(version)
        except VenvBuildError as exc:
            return exc
        except Exception as exc:  # reported as that version's failure, not the whole session's
            return VenvBuildError(f"building the pymilvus {version} venv raised {exc!r}")

    with ThreadPoolExecutor(max_workers=len(PYMILVUS_RELEASES)) as pool:
        built = dict(zip(PYMILVUS_RELEASES, pool.map(build, PYMILVUS_RELEASES), strict=True))
    envs: dict[str, ClientEnv | VenvBuildError] = {**built, OWN: own_env()}
    for key, env in envs.items():
        if isinstance(env, ClientEnv):
            how = f"built in {env.build_seconds:.1f}s" if env.build_seconds else "cached"
            how = "project venv" if env.own_venv else how
            print(f"client {key}: pymilvus {env.pymilvus_version} at {env.python} ({how})")
    return envs


def client_env(envs: dict[str, ClientEnv | VenvBuildError], key: str) -> ClientEnv:
    env = envs[key]
    if isinstance(env, IndexUnreachable):
        pytest.skip(f"cannot build the pymilvus {key} client venv: the package index is unreachable ({env})")
    if isinstance(env, VenvBuildError):
        pytest.fail(f"building the pymilvus {key} client venv failed:\n{env}", pytrace=False)
    return env


def run_flow(
    env: ClientEnv, script: str, server: StandaloneServer, collection: str, cwd: Path
) -> tuple[int, str, float]:
    """Run one client script under ``env``; returns exit code, combined output and seconds taken."""
    child_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    cmd = [str(env.python), "-I", "-u", str(CLIENTS_DIR / script), server.uri, collection]
    started = time.monotonic()
    try:
        res = subprocess.run(
            cmd,
            cwd=cwd,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=FLOW_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else (exc.output or "")
        return -1, f"{out}\n[timed out after {FLOW_TIMEOUT_S}s]", time.monotonic() - started
    return res.returncode, res.stdout, time.monotonic() - started


@pytest.mark.parametrize("flow", list(FLOWS))
@pytest.mark.parametrize("client", CLIENTS)
def test_client_flow(
    client: str,
    flow: str,
    client_envs: dict[str, ClientEnv | VenvBuildError],
    server: StandaloneServer,
    tmp_path: Path,
) -> None:
    env = client_env(client_envs, client)
    if client == OWN:
        assert env.pymilvus_version.startswith("3."), f"the project venv holds pymilvus {env.pymilvus_version}"
    collection = f"{flow}_{env.tag}"
    code, output, seconds = run_flow(env, FLOWS[flow], server, collection, tmp_path)
    print(f"pymilvus {env.pymilvus_version} {flow}: exit {code} in {seconds:.1f}s\n{output}")
    lines = output.strip().splitlines()
    if code != 0 or not lines or lines[-1].strip() != "OK":
        pytest.fail(
            f"pymilvus {env.pymilvus_version} {flow} flow (collection {collection}) exited {code} "
            f"after {seconds:.1f}s without a final OK line.\n"
            f"--- client output ---\n{output}\n--- server log (tail) ---\n{server.log()}",
            pytrace=False,
        )
    assert f"pymilvus {env.pymilvus_version}," in lines[0], f"script ran another pymilvus: {lines[0]}"
