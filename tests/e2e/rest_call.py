"""One POST to a server's RESTful API v2, for e2e tests that mix pymilvus and REST calls."""

from __future__ import annotations

from typing import Any

import httpx


def post_v2(server: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` to ``/v2/vectordb/<path>`` on ``server``'s HTTP port; the JSON envelope back."""
    resp = httpx.post(f"http://127.0.0.1:{server.http_port}/v2/vectordb/{path.lstrip('/')}", json=body, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]
