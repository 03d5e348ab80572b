"""The object store behind the fake Kubernetes API server used by the operator tests.

It keeps what the real API server's storage layer would: objects with uid, resourceVersion,
generation (bumped only when something outside metadata and status changes), finalizers with
deletionTimestamp semantics, owner-reference garbage collection, a history of watch events,
and custom resources validated against their CRD's openAPIV3Schema. Thread-safe: tests poke
it directly while the HTTP side serves Kopf and the operator.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jsonschema

Obj = dict[str, Any]


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    status: bool  # has a /status subresource
    schema: Obj | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


BUILTIN = [
    ResourceType("", "v1", "namespaces", "Namespace", False, True),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, False),
    ResourceType("", "v1", "secrets", "Secret", True, False),
    ResourceType("", "v1", "services", "Service", True, True),
    ResourceType("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, True),
    ResourceType("", "v1", "pods", "Pod", True, True),
    ResourceType("", "v1", "events", "Event", True, False),
    ResourceType("apps", "v1", "deployments", "Deployment", True, True),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", True, True),
    ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False, True),
    ResourceType("events.k8s.io", "v1", "events", "Event", True, False),
]


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> Obj:
        return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": self.reason,
                "message": self.message, "code": self.code}


@dataclass
class Event:
    rv: int
    type: str
    rt: ResourceType
    obj: Obj


@dataclass
class Watcher:
    rt: ResourceType
    namespace: str | None
    selector: dict[str, str]
    deliver: Callable[[Event], object]

    def wants(self, ev: Event) -> bool:
        meta = ev.obj["metadata"]
        if ev.rt != self.rt or (self.namespace and meta.get("namespace") != self.namespace):
            return False
        labels = meta.get("labels") or {}
        return all(labels.get(k) == v for k, v in self.selector.items())


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _body(obj: Obj) -> Obj:
    """What generation counts: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _without_rv(obj: Obj) -> Obj:
    return {**obj, "metadata": {**obj["metadata"], "resourceVersion": None}}


def _strip_extensions(schema: Any) -> Any:
    """An OpenAPI v3 CRD schema as JSON Schema: drop the x-kubernetes-* and nullable keys."""
    if isinstance(schema, dict):
        return {k: _strip_extensions(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if isinstance(schema, list):
        return [_strip_extensions(v) for v in schema]
    return schema


@dataclass
class Store:
    types: list[ResourceType] = field(default_factory=lambda: list(BUILTIN))
    objects: dict[tuple[str, str, str, str], Obj] = field(default_factory=dict)
    history: list[Event] = field(default_factory=list)
    watchers: list[Watcher] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _rv: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    rv: int = 0
    on_write: list[Callable[[ResourceType, Obj], None]] = field(default_factory=list)

    # ---- resource types -------------------------------------------------------------
    def find(self, group: str, version: str, plural: str) -> ResourceType:
        for rt in self.types:
            if (rt.group, rt.version, rt.plural) == (group, version, plural):
                return rt
        raise ApiError(404, "NotFound", f"the server could not find the requested resource {group}/{plural}")

    def by_kind(self, api_version: str, kind: str) -> ResourceType:
        for rt in self.types:
            if rt.api_version == api_version and rt.kind == kind:
                return rt
        raise ApiError(404, "NotFound", f"no kind {kind} in {api_version}")

    def _register_crd(self, crd: Obj) -> None:
        spec = crd["spec"]
        for ver in spec["versions"]:
            schema = (ver.get("schema") or {}).get("openAPIV3Schema")
            rt = ResourceType(spec["group"], ver["name"], spec["names"]["plural"], spec["names"]["kind"],
                              spec.get("scope") == "Namespaced", "status" in (ver.get("subresources") or {}),
                              _strip_extensions(schema) if schema else None)
            self.types = [t for t in self.types if (t.group, t.version, t.plural) != (rt.group, rt.version, rt.plural)]
            self.types.append(rt)
        crd.setdefault("status", {})["conditions"] = [
            {"type": "Established", "status": "True"}, {"type": "NamesAccepted", "status": "True"}]
        crd["status"]["acceptedNames"] = dict(spec["names"])

    # ---- reads ------------------------------------------------------------------------
    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        with self.lock:
            obj = self.objects.get((rt.group, rt.plural, namespace if rt.namespaced else "", name))
            if obj is None:
                raise ApiError(404, "NotFound", f'{rt.plural} "{name}" not found')
            return copy.deepcopy(obj)

    def list(self, rt: ResourceType, namespace: str | None, selector: dict[str, str]) -> tuple[list[Obj], int]:
        with self.lock:
            probe = Watcher(rt, namespace, selector, lambda _: None)
            items = [copy.deepcopy(o) for (g, p, _, _), o in sorted(self.objects.items())
                     if (g, p) == (rt.group, rt.plural) and probe.wants(Event(0, "", rt, o))]
            return items, self.rv

    def subscribe(self, rt: ResourceType, namespace: str | None, selector: dict[str, str], since: int | None,
                  deliver: Callable[[Event], object]) -> Watcher:
        """Replay what the watcher missed (everything after ``since``; all objects if None), then live."""
        with self.lock:
            watcher = Watcher(rt, namespace, selector, deliver)
            if since is None:
                for obj in self.list(rt, namespace, selector)[0]:
                    deliver(Event(int(obj["metadata"]["resourceVersion"]), "ADDED", rt, obj))
            else:
                for ev in self.history:
                    if ev.rv > since and watcher.wants(ev):
                        deliver(ev)
            self.watchers.append(watcher)
            return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        with self.lock:
            if watcher in self.watchers:
                self.watchers.remove(watcher)

    # ---- writes -----------------------------------------------------------------------
    def _emit(self, etype: str, rt: ResourceType, obj: Obj) -> None:
        ev = Event(int(obj["metadata"]["resourceVersion"]), etype, rt, copy.deepcopy(obj))
        self.history.append(ev)
        for w in list(self.watchers):
            if w.wants(ev):
                w.deliver(ev)

    def _validate(self, rt: ResourceType, obj: Obj) -> None:
        if rt.schema is None:
            return
        try:
            jsonschema.validate(obj, rt.schema)
        except jsonschema.ValidationError as exc:
            path = ".".join(str(p) for p in exc.absolute_path)
            raise ApiError(422, "Invalid", f"{rt.kind}.{rt.group} is invalid: {path}: {exc.message}") from exc

    def _store(self, rt: ResourceType, obj: Obj, etype: str) -> Obj:
        self.rv = next(self._rv)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        meta = obj["metadata"]
        self.objects[(rt.group, rt.plural, meta.get("namespace", ""), meta["name"])] = obj
        self._emit(etype, rt, obj)
        for hook in self.on_write:
            hook(rt, copy.deepcopy(obj))
        return copy.deepcopy(obj)

    def create(self, rt: ResourceType, namespace: str, obj: Obj) -> Obj:
        with self.lock:
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            if rt.namespaced:
                meta["namespace"] = namespace
            else:
                meta.pop("namespace", None)
            key = (rt.group, rt.plural, meta.get("namespace", ""), meta.get("name"))
            if not meta.get("name"):
                raise ApiError(422, "Invalid", "metadata.name: Required value")
            if key in self.objects:
                raise ApiError(409, "AlreadyExists", f'{rt.plural} "{meta["name"]}" already exists')
            obj.setdefault("apiVersion", rt.api_version)
            obj.setdefault("kind", rt.kind)
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
            meta.pop("deletionTimestamp", None)
            self._validate(rt, obj)
            if rt.plural == "customresourcedefinitions":
                self._register_crd(obj)
            return self._store(rt, obj, "ADDED")

    def update(self, rt: ResourceType, namespace: str, name: str, mutate: Callable[[Obj], Obj],
               subresource: str = "") -> Obj:
        """Apply ``mutate`` to the stored object, as a main-resource or /status write."""
        with self.lock:
            old = self.get(rt, namespace, name)
            new = mutate(copy.deepcopy(old))
            new["metadata"] = {**new.get("metadata", {}), "name": name, "uid": old["metadata"]["uid"],
                               "creationTimestamp": old["metadata"]["creationTimestamp"]}
            if rt.namespaced:
                new["metadata"]["namespace"] = namespace
            if subresource == "status":
                new = {**old, "status": new.get("status")}
            elif rt.status:
                new["status"] = old.get("status")
                if new.get("status") is None:
                    new.pop("status")
            if old["metadata"].get("deletionTimestamp"):
                new["metadata"]["deletionTimestamp"] = old["metadata"]["deletionTimestamp"]
            spec_changed = _body(new) != _body(old)
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + int(spec_changed)
            self._validate(rt, new)
            if _without_rv(new) == _without_rv(old):
                return old  # a no-op write changes nothing, as in Kubernetes
            if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
                self._remove(rt, new)
                return copy.deepcopy(new)
            return self._store(rt, new, "MODIFIED")

    def delete(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        with self.lock:
            obj = self.get(rt, namespace, name)
            if obj["metadata"].get("finalizers"):
                if not obj["metadata"].get("deletionTimestamp"):
                    obj["metadata"]["deletionTimestamp"] = _now()
                    return self._store(rt, obj, "MODIFIED")
                return obj
            self._remove(rt, obj)
            return obj

    def _remove(self, rt: ResourceType, obj: Obj) -> None:
        meta = obj["metadata"]
        self.objects.pop((rt.group, rt.plural, meta.get("namespace", ""), meta["name"]), None)
        self.rv = next(self._rv)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._emit("DELETED", rt, obj)
        self._collect_garbage(meta["uid"])

    def _collect_garbage(self, owner_uid: str) -> None:
        """Background cascading deletion: dependents whose owner is gone are deleted too."""
        for (group, plural, ns, name), dependent in list(self.objects.items()):
            owners = dependent["metadata"].get("ownerReferences") or []
            if any(o.get("uid") == owner_uid for o in owners):
                rt = next(t for t in self.types if (t.group, t.plural) == (group, plural))
                self.delete(rt, ns, name)
