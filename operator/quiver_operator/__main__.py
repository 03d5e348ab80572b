"""``python -m quiver_operator`` (or ``quiver-operator``): run the operator with Kopf.

Equivalent to ``kopf run -m quiver_operator.handlers`` plus the flags given here; by default it
watches every namespace and runs without Kopf's peering (one operator replica).
"""

from __future__ import annotations

import sys

import kopf.cli


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not any(a in ("-A", "--all-namespaces") or a.startswith(("-n", "--namespace")) for a in args):
        args.append("--all-namespaces")
    if not any(a.startswith(("--standalone", "--peering")) for a in args):
        args.append("--standalone")
    kopf.cli.main(["run", "-m", "quiver_operator.handlers", *args], standalone_mode=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
