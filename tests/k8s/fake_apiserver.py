"""A small Kubernetes API server on 127.0.0.1 for running the real operator (Kopf) in tests.

It speaks the REST API that Kopf and the operator use: discovery (/version, /api, /apis and
each group version's resource list, with /status subresources), list and watch (streaming JSON
lines, resuming from a resourceVersion), get, create, replace, merge patch, JSON patch, the
/status subresource and delete with finalizers. A bearer token is required, so the
kubeconfig-based login of both Kopf and the operator is exercised too. In place of the
Deployment and StatefulSet controllers, ``auto_available`` marks workloads available shortly
after each write, unless the test holds them (``hold``/``release``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from typing import Any

import jsonpatch
from aiohttp import web

from tests.k8s.fake_store import ApiError, Event, ResourceType, Store

Obj = dict[str, Any]
TOKEN = "quiver-test-token"


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (strategic merge patches are treated the same here)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _selector(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(",") if "=" in part) if text else {}


class FakeApiServer:
    def __init__(self) -> None:
        self.store = Store()
        self.auto_available = True
        self.held: set[tuple[str, str]] = set()  # (kind, name) left unavailable until released
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-apiserver", daemon=True)
        self._runner: web.AppRunner | None = None
        self._streams: set[asyncio.Queue[Event | None]] = set()
        self.store.on_write.append(self._controller)

    # ---- lifecycle ----------------------------------------------------------------
    def start(self) -> FakeApiServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._auth])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        async def _stop() -> None:
            for queue in list(self._streams):
                queue.put_nowait(None)
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kubeconfig(self, namespace: str = "default") -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": TOKEN}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester", "namespace": namespace}}],
            "current-context": "fake",
        }

    # ---- the stand-in for the workload controllers ----------------------------------
    def _controller(self, rt: ResourceType, obj: Obj) -> None:
        if rt.kind not in ("Deployment", "StatefulSet") or not self.auto_available:
            return
        if (rt.kind, obj["metadata"]["name"]) in self.held or obj["metadata"].get("deletionTimestamp"):
            return
        if self._is_available(obj):
            return
        meta = obj["metadata"]
        self._loop.call_soon_threadsafe(self._loop.call_later, 0.05, self.make_available, rt.kind,
                                        meta["namespace"], meta["name"])

    @staticmethod
    def _is_available(obj: Obj) -> bool:
        want = obj.get("spec", {}).get("replicas", 1)
        st = obj.get("status") or {}
        return bool(st.get("observedGeneration") == obj["metadata"].get("generation")
                    and st.get("availableReplicas", st.get("readyReplicas")) == want and st.get("replicas") == want)

    def make_available(self, kind: str, namespace: str, name: str) -> None:
        """What the controller and kubelet would report once every pod of the new template is up."""
        rt = self.store.by_kind("apps/v1", kind)

        def mutate(obj: Obj) -> Obj:
            want = obj.get("spec", {}).get("replicas", 1)
            obj["status"] = {"observedGeneration": obj["metadata"].get("generation", 1), "replicas": want,
                             "updatedReplicas": want, "readyReplicas": want, "availableReplicas": want}
            return obj

        with contextlib.suppress(ApiError):
            self.store.update(rt, namespace, name, mutate, subresource="status")

    def hold(self, kind: str, name: str) -> None:
        self.held.add((kind, name))

    def release(self, kind: str, namespace: str, name: str) -> None:
        self.held.discard((kind, name))
        self.make_available(kind, namespace, name)

    # ---- HTTP -------------------------------------------------------------------------
    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response(ApiError(401, "Unauthorized", "Unauthorized").status(), status=401)
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except ApiError as exc:
            return web.json_response(exc.status(), status=exc.code)

    def _discovery(self, path: str) -> Obj | None:
        types = self.store.types
        if path == "/version":
            return {"major": "1", "minor": "31", "gitVersion": "v1.31.0", "platform": "linux/amd64"}
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"]}
        if path == "/apis":
            groups: dict[str, str] = {t.group: t.version for t in types if t.group}
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}} for g, v in sorted(groups.items())]}
        for gv in {t.api_version for t in types}:
            if path == ("/api/" if "/" not in gv else "/apis/") + gv:
                resources = []
                for t in (t for t in types if t.api_version == gv):
                    resources.append({"name": t.plural, "singularName": t.kind.lower(), "namespaced": t.namespaced,
                                      "kind": t.kind, "verbs": ["create", "delete", "get", "list", "patch",
                                                                "update", "watch"]})
                    if t.status:
                        resources.append({"name": f"{t.plural}/status", "singularName": "", "kind": t.kind,
                                          "namespaced": t.namespaced, "verbs": ["get", "patch", "update"]})
                return {"kind": "APIResourceList", "groupVersion": gv, "resources": resources}
        return None

    def _route(self, path: str) -> tuple[ResourceType, str | None, str | None, str]:
        segs = [s for s in path.split("/") if s]
        if segs[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", segs[2:]
        elif segs[:1] == ["apis"] and len(segs) >= 3:
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            raise ApiError(404, "NotFound", f"no route for {path}")
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise ApiError(404, "NotFound", f"no route for {path}")
        rt = self.store.find(group, version, rest[0])
        return rt, namespace, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else ""

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        found = self._discovery(request.path)
        if found is not None:
            return web.json_response(found)
        rt, namespace, name, sub = self._route(request.path)
        ns = namespace or ""
        q = request.query
        if name is None:
            if request.method == "GET" and q.get("watch", "").lower() in ("true", "1"):
                return await self._watch(request, rt, namespace)
            if request.method == "GET":
                items, rv = self.store.list(rt, namespace, _selector(q.get("labelSelector", "")))
                return web.json_response({"kind": f"{rt.kind}List", "apiVersion": rt.api_version,
                                          "metadata": {"resourceVersion": str(rv)}, "items": items})
            if request.method == "POST":
                return web.json_response(self.store.create(rt, ns, await request.json()), status=201)
            raise ApiError(405, "MethodNotAllowed", request.method)
        if request.method == "GET":
            return web.json_response(self.store.get(rt, ns, name))
        if request.method == "DELETE":
            return web.json_response(self.store.delete(rt, ns, name))
        if request.method in ("PUT", "PATCH"):
            body = await request.json()
            ctype = request.content_type
            if request.method == "PUT":
                mutate = self._replace(body)
            elif ctype == "application/json-patch+json":
                mutate = self._json_patch(body)
            else:
                mutate = self._merge(body)
            return web.json_response(self.store.update(rt, ns, name, mutate, subresource=sub))
        raise ApiError(405, "MethodNotAllowed", request.method)

    @staticmethod
    def _replace(body: Obj) -> Any:
        def mutate(old: Obj) -> Obj:
            wanted = body.get("metadata", {}).get("resourceVersion")
            if wanted and wanted != old["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", "the object has been modified; please apply your changes again")
            return body

        return mutate

    @staticmethod
    def _merge(body: Obj) -> Any:
        return lambda old: _merge_patch(old, body)

    @staticmethod
    def _json_patch(ops: list[Obj]) -> Any:
        def mutate(old: Obj) -> Obj:
            try:
                patched: Obj = jsonpatch.apply_patch(old, ops)
                return patched
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise ApiError(422, "Invalid", f"json patch: {exc}") from exc

        return mutate

    async def _watch(self, request: web.Request, rt: ResourceType, namespace: str | None) -> web.StreamResponse:
        q = request.query
        since = int(q["resourceVersion"]) if q.get("resourceVersion") not in (None, "", "0") else None
        timeout = float(q.get("timeoutSeconds", "3600"))
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        watcher = self.store.subscribe(rt, namespace, _selector(q.get("labelSelector", "")), since,
                                       lambda ev: loop.call_soon_threadsafe(queue.put_nowait, ev))
        self._streams.add(queue)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            deadline = loop.time() + timeout
            while (left := deadline - loop.time()) > 0:
                try:
                    ev = await asyncio.wait_for(queue.get(), timeout=left)
                except asyncio.TimeoutError:
                    break
                if ev is None:
                    break
                line = json.dumps({"type": ev.type, "object": ev.obj}) + "\n"
                await response.write(line.encode())
        except ConnectionResetError:
            pass  # the client went away
        finally:
            self.store.unsubscribe(watcher)
            self._streams.discard(queue)
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response
