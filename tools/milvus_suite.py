"""Run Milvus's own L0 end-to-end tests (tests/python_client of the Milvus repo) against Quiver.

Milvus ships a pytest suite that its CI runs against a live Milvus (``pytest --tags=L0 --host ...
--port ...``). Quiver claims to speak the same protocol, so that suite, unmodified, is the most
direct outside check of that claim. This tool takes a checkout of the suite (never stored in this
repository), builds a virtualenv with the suite's own requirements, starts ``quiver run standalone``
on free loopback ports, runs the L0-tagged tests of ``milvus_client/`` and ``testcases/`` with a
per-test timeout, writes a JUnit XML plus a per-file summary (Markdown and JSON), and stops the
server.

Usage (from the repository root)::

    .venv/bin/python tools/milvus_suite.py /path/to/milvus [--out .milvus-suite] [--timeout 180]

The checkout may be the Milvus repository root or its ``tests/python_client`` folder. The suite pins
pre-release pymilvus builds from a second index that this machine cannot reach; such a pin is
replaced by the newest final release of the same minor line (or by ``--pymilvus``), and the
replacement is written into the summary.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.e2e.server import StandaloneServer  # noqa: E402

DEFAULT_AREAS = ("milvus_client", "testcases")
# Pins of the suite that cannot work with the pytest it also pins (8.x): pytest-timeout 1.3 calls
# ``py.io`` when a test times out and crashes the whole run. Replaced, and the replacement recorded.
REPLACE_PINS = {"pytest-timeout": "pytest-timeout==2.3.1"}
PIN_RE = re.compile(r"^(pymilvus(?:\[[^\]]*\])?)==(\S+)\s*$")
PRE_RE = re.compile(r"(a|b|rc|dev)\d*$")
STAMP_NAME = "quiver-milvus-suite.json"
INDEX_OPTIONS = ("--find-links", "-f ", "--extra-index-url", "--index-url", "-i ")


def suite_dir(checkout: Path) -> Path:
    """The ``tests/python_client`` folder of a Milvus checkout (or the folder itself)."""
    for cand in (checkout / "tests" / "python_client", checkout):
        if (cand / "conftest.py").exists() and (cand / "requirements.txt").exists():
            return cand.resolve()
    raise SystemExit(f"{checkout} holds no tests/python_client with conftest.py and requirements.txt")


def final_release(pinned: str, python: Path) -> str:
    """The newest final pymilvus release of the pinned version's major.minor line."""
    major_minor = ".".join(pinned.split(".")[:2])
    res = subprocess.run(
        [str(python), "-m", "pip", "index", "versions", "pymilvus"], capture_output=True, text=True, timeout=300
    )
    found = re.search(r"Available versions:\s*(.+)", res.stdout)
    if not found:
        raise SystemExit(f"cannot list pymilvus releases to replace {pinned}:\n{res.stdout}\n{res.stderr}")
    for ver in (v.strip() for v in found.group(1).split(",")):
        if ver.startswith(major_minor + ".") and not PRE_RE.search(ver):
            return ver  # pip lists newest first
    raise SystemExit(f"no final pymilvus release in the {major_minor} line to replace {pinned}")


def requirements(src: Path, override: str | None, python: Path) -> tuple[list[str], dict[str, str]]:
    """The suite's requirement lines, minus extra index links, with unreachable pymilvus pins replaced."""
    lines: list[str] = []
    replaced: dict[str, str] = {}
    for raw in src.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith(INDEX_OPTIONS):
            continue  # extra indexes (test.pypi.org) are unreachable here; their pins are replaced below
        name = re.split(r"[=<>!~\[ ;]", line, maxsplit=1)[0].lower()
        if name in REPLACE_PINS and line != REPLACE_PINS[name]:
            replaced[line] = REPLACE_PINS[name]
            line = REPLACE_PINS[name]
        pin = PIN_RE.match(line)
        if pin and (override or PRE_RE.search(pin.group(2))):
            new = override or replaced.get(pin.group(2)) or final_release(pin.group(2), python)
            replaced[pin.group(2)] = new
            line = f"{pin.group(1)}=={new}"
        lines.append(line)
    return lines, replaced


def ensure_venv(venv: Path, reqs: list[str]) -> Path:
    """Build ``venv`` with ``reqs`` unless a stamp says it already holds exactly them."""
    python = venv / "bin" / "python"
    digest = hashlib.sha256("\n".join(reqs).encode()).hexdigest()
    stamp = venv / STAMP_NAME
    try:
        if json.loads(stamp.read_text()).get("requirements_sha256") == digest and python.exists():
            return python
    except (OSError, ValueError):
        pass
    print(f"building {venv} ({len(reqs)} requirements; takes a few minutes)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    req_file = venv / "requirements.txt"
    req_file.write_text("\n".join(reqs) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(req_file)], check=True)
    stamp.write_text(json.dumps({"requirements_sha256": digest}))
    return python


@dataclass
class FileCounts:
    passed: int = 0
    failed: int = 0
    error: int = 0
    skipped: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)


def _first_line(text: str | None, limit: int = 300) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


MILVUS_ERR_RE = re.compile(r"MilvusException: \(code=(-?\d+), message=([^)\n]{0,300})")


def _reason(case: ET.Element, outcome: ET.Element) -> str:
    """Why a test failed: the last server error logged, else the assertion's first line."""
    first = _first_line(outcome.get("message")) or _first_line(outcome.text)
    if first and "but got False" not in first and "MilvusException" not in first:
        return first  # a plain assertion on results says more than any logged error
    texts = [outcome.get("message") or "", outcome.text or ""]
    texts += [child.text or "" for child in case if child.tag in ("system-out", "system-err")]
    found = MILVUS_ERR_RE.findall("\n".join(texts))
    if found:  # the last server error is the one the test tripped on
        code, message = found[-1]
        return f"MilvusException(code={code}): {message.strip()}"[:300]
    return first


def summarize(junit: Path) -> dict[str, FileCounts]:
    """Per test file: passed/failed/error/skipped counts and each failure's first message line."""
    per_file: dict[str, FileCounts] = defaultdict(FileCounts)
    for case in ET.parse(junit).getroot().iter("testcase"):
        classname = case.get("classname", "")
        parts = classname.split(".")
        # "testcases.test_query.TestQueryParams" -> testcases/test_query.py
        mods = [p for p in parts if not p[:1].isupper()]
        fname = "/".join(mods) + ".py" if mods else classname
        counts = per_file[fname]
        outcome = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        if outcome is None:
            counts.passed += 1
        elif outcome.tag == "skipped":
            counts.skipped += 1
        else:
            if outcome.tag == "failure":
                counts.failed += 1
            else:
                counts.error += 1
            counts.failures.append(
                {
                    "test": f"{classname}::{case.get('name', '')}",
                    "kind": outcome.tag,
                    "message": _reason(case, outcome),
                }
            )
    return dict(sorted(per_file.items()))


def write_summary(out: Path, per_file: dict[str, FileCounts], meta: dict[str, object]) -> str:
    rows = ["| file | passed | failed | error | skipped |", "|---|---:|---:|---:|---:|"]
    total = FileCounts()
    for fname, c in per_file.items():
        rows.append(f"| {fname} | {c.passed} | {c.failed} | {c.error} | {c.skipped} |")
        total.passed += c.passed
        total.failed += c.failed
        total.error += c.error
        total.skipped += c.skipped
    rows.append(f"| **total** | {total.passed} | {total.failed} | {total.error} | {total.skipped} |")
    head = [f"- {k}: {v}" for k, v in meta.items()]
    fails = [f"- `{f['test']}` ({f['kind']}): {f['message']}" for c in per_file.values() for f in c.failures]
    text = "\n".join(["# Milvus L0 suite against Quiver", "", *head, "", *rows, "", "## Failures", "", *fails, ""])
    (out / "summary.md").write_text(text)
    data = {"meta": meta, "files": {k: vars(v) for k, v in per_file.items()}}
    (out / "summary.json").write_text(json.dumps(data, indent=1))
    return f"{total.passed} passed, {total.failed} failed, {total.error} errors, {total.skipped} skipped"


def git_describe(path: Path) -> str:
    res = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else "unknown (not a git work tree)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkout", type=Path, help="Milvus checkout (repo root or tests/python_client)")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / ".milvus-suite", help="results folder")
    ap.add_argument("--venv", type=Path, default=REPO_ROOT / ".venv-milvus-suite")
    ap.add_argument("--timeout", type=int, default=180, help="per-test timeout in seconds")
    ap.add_argument("--tags", default="L0")
    ap.add_argument("--pymilvus", help="pymilvus version to use instead of the suite's pin")
    ap.add_argument("--label", default="", help="branch/commit text recorded in the summary")
    ap.add_argument("paths", nargs="*", help="test paths inside the suite (default: milvus_client testcases)")
    ap.add_argument("--pytest-arg", action="append", default=[], help="extra argument passed to pytest")
    args = ap.parse_args(argv)

    suite = suite_dir(args.checkout)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    reqs, replaced = requirements(suite / "requirements.txt", args.pymilvus, Path(sys.executable))
    python = ensure_venv(args.venv.resolve(), reqs)

    server = StandaloneServer(args.out / "quiver-data")
    server.start(timeout=120)
    junit = args.out / "junit.xml"
    cmd = [
        str(python), "-m", "pytest", *(args.paths or DEFAULT_AREAS),
        "-o", "addopts=", "-p", "no:cacheprovider", "-p", "no:sugar", "-p", "no:html", "-p", "no:locust",
        "--tags", args.tags, "--host", "127.0.0.1", "--port", str(server.grpc_port),
        "--uri", server.uri, "--timeout", str(args.timeout), "--timeout-method", "signal",
        "--junitxml", str(junit), "-o", "junit_logging=all", "-v", "-rN",
        *args.pytest_arg,
    ]  # fmt: skip
    started = time.monotonic()
    try:
        with open(args.out / "pytest.log", "wb") as log:
            rc = subprocess.run(cmd, cwd=suite, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ)).returncode
        alive = server.proc is not None and server.proc.poll() is None
    finally:
        server.stop()
    if not junit.exists():
        print(f"pytest wrote no JUnit XML (exit {rc}); see {args.out / 'pytest.log'}")
        return 2
    meta: dict[str, object] = {
        "suite": args.label or str(suite),
        "commit": git_describe(suite),
        "requirement pins replaced": replaced or "none",
        "tags": args.tags,
        "per-test timeout (s)": args.timeout,
        "wall time (s)": round(time.monotonic() - started),
        "server alive at end": alive,
        "pytest exit code": rc,
    }
    line = write_summary(args.out, summarize(junit), meta)
    print(f"{line}; summary in {args.out / 'summary.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
