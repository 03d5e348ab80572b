"""The proxy's HTTP face (port 9091): /healthz, Prometheus /metrics and Milvus's RESTful API v2."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.proxy.auth import RestAuthMiddleware
from services.proxy.rest import mount_rest


def create_app(healthy: Callable[[], bool], servicer: Any = None) -> FastAPI:
    """The HTTP app; with a ``servicer`` (MilvusServicer) it also serves REST v2 under /v2/vectordb."""
    app = FastAPI(title="Quiver", version="0.1.0")

    @app.get("/healthz")
    def healthz() -> Response:
        if healthy():
            return Response("OK", media_type="text/plain")
        return Response("not ready", status_code=503, media_type="text/plain")

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if servicer is not None:
        mount_rest(app, servicer)
        gate = getattr(getattr(servicer, "ctx", None), "auth", None)
        if gate is not None:  # authorization enabled: REST v2 needs credentials
            app.add_middleware(RestAuthMiddleware, gate=gate)
    return app
