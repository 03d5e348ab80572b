"""The proxy's HTTP face (port 9091): /healthz, Prometheus /metrics, and later REST v2."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


def create_app(healthy: Callable[[], bool]) -> FastAPI:
    app = FastAPI(title="Quiver", version="0.1.0")

    @app.get("/healthz")
    def healthz() -> Response:
        if healthy():
            return Response("OK", media_type="text/plain")
        return Response("not ready", status_code=503, media_type="text/plain")

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
