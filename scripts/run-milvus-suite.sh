#!/usr/bin/env bash
# Run Milvus's own L0 e2e suite (tests/python_client of a Milvus checkout) against Quiver standalone.
# Usage: scripts/run-milvus-suite.sh /path/to/milvus-checkout [tools/milvus_suite.py options...]
# Results (junit.xml, summary.md, summary.json, pytest.log, server log) land in .milvus-suite/.
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: $0 MILVUS_CHECKOUT [--timeout S] [--out DIR] [--pymilvus VER] [paths...]" >&2
    exit 2
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
[ -x .venv/bin/python ] || make install
exec .venv/bin/python tools/milvus_suite.py "$@"
