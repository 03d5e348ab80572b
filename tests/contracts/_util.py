"""Small helpers for the contract checks: unique names and polling with a deadline."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable


def unique(name: str) -> str:
    """A name no other check uses, so checks can share one real server."""
    return f"{name}-{uuid.uuid4().hex[:12]}"


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
