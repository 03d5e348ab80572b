"""Resource groups: which querynodes a collection's replicas may use, as Milvus's querycoord defines them.

A resource group declares how many querynodes it wants (``requests``) and may hold at most
(``limits``); querynodes are assigned to groups automatically. A joining node goes to the group
missing the most nodes, else to the default group; groups below their requests take nodes from
groups above theirs (redundant ones first, then ``transfer_from`` ones); groups above their limits
give nodes back (to ``transfer_to`` groups first, else ``__default_resource_group``). Replicas
live in one group each and only use its nodes. Groups and their node lists persist in the KV
store, so a new coordinator keeps the assignment.

Errors carry Milvus's codes (300 not found, 301 already exists with another config, 302 too many
groups, 303 illegal config, 304 not enough nodes) and its messages.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from typing import Any

from common.errors import MilvusError, invalid
from common.kv.base import KV
from services.coord.keys import Keys

DEFAULT_RG = "__default_resource_group"
DEFAULT_CAPACITY = 1_000_000
MAX_GROUPS = 1024
RG_NOT_FOUND, RG_ALREADY_EXIST, RG_REACH_LIMIT, RG_ILLEGAL_CONFIG, RG_NODE_NOT_ENOUGH = 300, 301, 302, 303, 304
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_NAME_LENGTH = 255


def not_found(name: str) -> MilvusError:
    return MilvusError(RG_NOT_FOUND, f"resource group not found[rg={name}]")


def node_not_enough(name: str, current: int, expected: int) -> MilvusError:
    return MilvusError(
        RG_NODE_NOT_ENOUGH,
        f"resource group node not enough[rg={name}][currentNodeNum={current}][expectedNodeNum={expected}]",
    )


def make_config(
    requests: int, limits: int, transfer_from: Sequence[str] = (), transfer_to: Sequence[str] = ()
) -> dict[str, Any]:
    return {
        "requests": {"node_num": int(requests)},
        "limits": {"node_num": int(limits)},
        "transfer_from": [{"resource_group": g} for g in transfer_from],
        "transfer_to": [{"resource_group": g} for g in transfer_to],
    }


def normalize_config(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """A config with every key present (what is stored and compared)."""
    if cfg is None:
        return make_config(0, 0)
    return make_config(
        (cfg.get("requests") or {}).get("node_num", 0),
        (cfg.get("limits") or {}).get("node_num", 0),
        [t["resource_group"] for t in cfg.get("transfer_from") or []],
        [t["resource_group"] for t in cfg.get("transfer_to") or []],
    ) | ({"_missing": True} if cfg.get("requests") is None or cfg.get("limits") is None else {})


def validate_name(name: str) -> None:
    """Milvus's rules for a resource group name (checked by its proxy)."""
    if not name:
        raise invalid("resource group name couldn't be empty")
    msg = f"Invalid resource group name {name}."
    if len(name) > MAX_NAME_LENGTH:
        raise invalid(f"{msg} the length of a resource group name must be less than {MAX_NAME_LENGTH} characters")
    if not (name[0] == "_" or name[0].isascii() and name[0].isalpha()):
        raise invalid(f"{msg} the first character of a resource group name must be an underscore or letter")
    if not _NAME.match(name):
        raise invalid(f"{msg} resource group name can only contain numbers, letters and underscores")


class ResourceGroup:
    def __init__(self, name: str, config: dict[str, Any], nodes: list[str] | None = None) -> None:
        self.name = name
        self.config = config
        self.nodes: list[str] = list(nodes or [])

    @property
    def requests(self) -> int:
        return int(self.config["requests"]["node_num"])

    @property
    def limits(self) -> int:
        return int(self.config["limits"]["node_num"])

    def missing(self) -> int:
        return self.requests - len(self.nodes)

    def oversized(self) -> int:
        return len(self.nodes) - self.requests

    def redundant(self) -> int:
        return len(self.nodes) - self.limits

    def room(self) -> int:
        return self.limits - len(self.nodes)

    def has_from(self, other: str) -> bool:
        return any(t["resource_group"] == other for t in self.config["transfer_from"])

    def has_to(self, other: str) -> bool:
        return any(t["resource_group"] == other for t in self.config["transfer_to"])

    def to_json(self) -> bytes:
        return json.dumps({"name": self.name, "config": self.config, "nodes": self.nodes}).encode()


class ResourceManager:
    """The groups, their configs and node assignment; every change is written to the KV store first."""

    def __init__(self, kv: KV, keys: Keys) -> None:
        self.kv = kv
        self.keys = keys
        self.lock = threading.RLock()
        self.groups: dict[str, ResourceGroup] = {}
        for item in kv.scan(keys.resource_groups()):
            d = json.loads(item.value)
            self.groups[d["name"]] = ResourceGroup(d["name"], d["config"], d.get("nodes", []))
        if DEFAULT_RG not in self.groups:
            self._save(ResourceGroup(DEFAULT_RG, make_config(0, DEFAULT_CAPACITY)))

    def _save(self, *groups: ResourceGroup, deletes: list[str] | None = None) -> None:
        puts = {self.keys.resource_group(g.name): g.to_json() for g in groups}
        self.kv.multi_save(puts, [self.keys.resource_group(n) for n in deletes or []])
        for name in deletes or []:
            self.groups.pop(name, None)
        for g in groups:
            self.groups[g.name] = g

    def get(self, name: str) -> ResourceGroup:
        g = self.groups.get(name)
        if g is None:
            raise not_found(name)
        return g

    def group_of(self, node: str) -> str | None:
        for g in self.groups.values():
            if node in g.nodes:
                return g.name
        return None

    # --- declarative API ----------------------------------------------------------------
    def create(self, name: str, config: dict[str, Any] | None) -> None:
        validate_name(name)
        cfg = normalize_config(config)
        with self.lock:
            existing = self.groups.get(name)
            if existing is not None:
                if existing.config == {k: v for k, v in cfg.items() if k != "_missing"}:
                    return  # idempotent, as Milvus
                raise MilvusError(
                    RG_ALREADY_EXIST, f"resource group already exist, but create with different config[rg={name}]"
                )
            if len(self.groups) >= MAX_GROUPS:
                raise MilvusError(RG_REACH_LIMIT, f"resource group num reach limit[rg={name}][limit={MAX_GROUPS}]")
            self._validate(name, cfg)
            self._save(ResourceGroup(name, cfg))

    def update(self, configs: dict[str, dict[str, Any]]) -> None:
        with self.lock:
            changed = []
            for name, config in configs.items():
                g = self.get(name)
                cfg = normalize_config(config)
                self._validate(name, cfg)
                changed.append(ResourceGroup(name, cfg, g.nodes))
            self._save(*changed)

    def drop(self, name: str, replicas_in: int) -> None:
        with self.lock:
            g = self.groups.get(name)
            if g is None:
                return  # dropping a missing group is not an error (Milvus)
            if name == DEFAULT_RG:
                raise invalid(
                    f"default resource group is not deletable: invalid parameter[expected=not default resource group]"
                    f"[actual={name}]"
                )
            if replicas_in:
                raise invalid(
                    f"some replicas still loaded in resource group[{name}], release it first: invalid parameter"
                    f"[expected=empty resource group][actual=resource group {name} has {replicas_in} replicas loaded]"
                )
            if g.limits != 0:
                raise invalid(
                    f"resource group's limits node num is not 0: invalid parameter[expected=not empty resource group]"
                    f"[actual={name}]"
                )
            for other in self.groups.values():
                if other.has_from(name) or other.has_to(name):
                    raise invalid(
                        f"resource group {name} is used by {other.name}'s `TransferFrom` or `TransferTo`, remove "
                        "that configuration first"
                    )
            default = self.groups[DEFAULT_RG]
            moved = ResourceGroup(DEFAULT_RG, default.config, default.nodes + g.nodes)
            self._save(moved, deletes=[name])

    def transfer_node(self, source: str, target: str, num: int) -> None:
        """Deprecated in Milvus: moves requests/limits between the groups; nodes follow."""
        if source == target:
            raise invalid(
                f"source resource group and target resource group should not be the same, resource group: {source}"
            )
        if num <= 0:
            raise invalid(f"invalid NumNode {num}: invalid parameter[expected=NumNode > 0][actual={num}]")
        with self.lock:
            src, dst = self.get(source), self.get(target)
            if len(src.nodes) < num:
                raise node_not_enough(source, len(src.nodes), num)
            s_req, s_lim = max(0, src.requests - num), src.limits
            if source != DEFAULT_RG:
                s_lim = max(0, s_lim - num)
            d_req = dst.requests + num
            d_lim = max(dst.limits, d_req)
            self.update({
                source: src.config | {"requests": {"node_num": s_req}, "limits": {"node_num": s_lim}},
                target: dst.config | {"requests": {"node_num": d_req}, "limits": {"node_num": d_lim}},
            })
        self.assign(self._all_nodes())

    def _all_nodes(self) -> list[str]:
        return [n for g in self.groups.values() for n in g.nodes]

    def _validate(self, name: str, cfg: dict[str, Any]) -> None:
        def bad(why: str) -> MilvusError:
            shown = {k: v for k, v in cfg.items() if k != "_missing"}
            return MilvusError(RG_ILLEGAL_CONFIG, f"{why}: resource group illegal config[rg={name}][config={shown}]")

        if cfg.get("_missing"):
            raise bad("requests or limits is required")
        cfg.pop("_missing", None)
        if cfg["requests"]["node_num"] < 0 or cfg["limits"]["node_num"] < 0:
            raise bad("node num in `requests` or `limits` should not less than 0")
        if cfg["limits"]["node_num"] < cfg["requests"]["node_num"]:
            raise bad("limits node num should not less than requests node num")
        for key, label in (("transfer_from", "TransferFrom"), ("transfer_to", "TransferTo")):
            for t in cfg[key]:
                if t["resource_group"] == name:
                    raise bad(f"resource group in `{label}` {name} should not be itself")
                if t["resource_group"] not in self.groups:
                    raise bad(f"resource group in `{label}` {t['resource_group']} not exist")

    # --- node assignment (every coordinator pass) ---------------------------------------
    def assign(self, live: list[str]) -> bool:
        """Drop gone nodes, place new ones, then recover missing and redundant groups; True if changed."""
        with self.lock:
            before = {n: list(g.nodes) for n, g in self.groups.items()}
            alive = set(live)
            for g in self.groups.values():
                g.nodes = [e for e in g.nodes if e in alive]
            for node in sorted(alive - set(self._all_nodes())):
                self._group_for_incoming().nodes.append(node)
            for g in sorted(self.groups.values(), key=lambda g: g.name):
                while g.missing() > 0 and self._take_for(g):
                    pass
            for g in sorted(self.groups.values(), key=lambda g: g.name):
                while g.redundant() > 0 and self._give_from(g):
                    pass
            changed = [g for n, g in self.groups.items() if before.get(n) != g.nodes]
            if changed:
                self._save(*changed)
            return bool(changed)

    def _group_for_incoming(self) -> ResourceGroup:
        groups = sorted(self.groups.values(), key=lambda g: g.name)
        missing = [g for g in groups if g.missing() > 0]
        if missing:
            return max(missing, key=lambda g: g.missing())
        roomy = [g for g in groups if g.room() > 0]
        if roomy:
            return max(roomy, key=lambda g: g.room())
        return self.groups[DEFAULT_RG]

    def _take_for(self, target: ResourceGroup) -> bool:
        def priority(g: ResourceGroup) -> int:
            if g.redundant() > 0:
                return g.redundant() * 1_000_000
            if target.has_from(g.name):
                return g.oversized() * 100_000
            return g.oversized()

        sources = [g for g in self.groups.values() if g is not target and g.oversized() > 0 and g.nodes]
        if not sources:
            return False
        src = max(sorted(sources, key=lambda g: g.name), key=priority)
        node = sorted(src.nodes)[-1]
        src.nodes.remove(node)
        target.nodes.append(node)
        return True

    def _give_from(self, source: ResourceGroup) -> bool:
        def priority(g: ResourceGroup) -> int:
            if g.missing() > 0:
                return g.missing() * 1_000_000
            if source.has_to(g.name):
                return g.room() * 100_000
            return g.room()

        targets = [g for g in self.groups.values() if g is not source and g.room() > 0]
        if targets:
            dst = max(sorted(targets, key=lambda g: g.name), key=priority)
        elif source.name != DEFAULT_RG:
            dst = self.groups[DEFAULT_RG]
        else:
            return False
        node = sorted(source.nodes)[-1]
        source.nodes.remove(node)
        dst.nodes.append(node)
        return True
