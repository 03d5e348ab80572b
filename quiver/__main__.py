"""``python -m quiver`` is the ``quiver`` command."""

from quiver.cli import main

raise SystemExit(main())
