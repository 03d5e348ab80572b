"""Milvus's RESTful API v2 (``/v2/vectordb/...``) on the proxy's HTTP port.

A thin translation layer: each route validates its JSON body (pydantic models, published in
/openapi.json), builds the pymilvus protobuf request, calls the MilvusServicer method
in-process — the same code path a gRPC client takes — and turns the response into Milvus's
envelope, ``{"code": 0, "data": ...}`` or ``{"code": N, "message": ...}``, always with HTTP 200.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI

from services.proxy.rest import access, collections, entities, jobs, resource_groups, resources
from services.proxy.rest.envelope import Gateway
from services.proxy.rest.routing import RestRoute

PREFIX = "/v2/vectordb"


def rest_router(servicer: Any) -> APIRouter:
    """Every REST v2 route, bound to ``servicer`` (a MilvusServicer or anything with its methods)."""
    gw = Gateway(servicer)
    router = APIRouter(prefix=PREFIX, route_class=RestRoute, tags=["RESTful API v2"])
    collections.register(router, gw)
    entities.register(router, gw)
    resources.register_partitions(router, gw)
    resources.register_indexes(router, gw)
    resources.register_aliases(router, gw)
    resources.register_databases(router, gw)
    access.register_users(router, gw)
    access.register_roles(router, gw)
    jobs.register(router, gw)  # bulk import (replaces access.register_import_jobs)
    resource_groups.register(router, gw)
    return router


def mount_rest(app: FastAPI, servicer: Any) -> None:
    app.include_router(rest_router(servicer))
