"""Compaction plans and triggers, persisted so a coordinator restart or failover keeps them.

Milvus keeps its compaction tasks in etcd (``datacoord-meta/compaction-task/...``); so does
Quiver: every state change of a plan is written before it takes effect for anyone else, and a
new active coordinator reloads them. A plan found EXECUTING after a restart goes back to PENDING
(its datanode may have died with the old coordinator; a duplicate run is refused at commit),
and one whose inputs were already swapped for its output is marked COMPLETED, so
GetCompactionState answers for ids issued before the restart.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from common.kv.base import KV
from services.coord.keys import Keys

PENDING = "pending"  # waiting to be handed to the datanode of its vchannel
EXECUTING = "executing"
COMPLETED = "completed"
FAILED = "failed"
ACTIVE = (PENDING, EXECUTING)
_BATCH = 100  # keys per KV transaction (etcd allows 128 operations)


@dataclass
class Plan:
    plan_id: int
    trigger_id: int
    collection_id: int
    partition_id: int
    vchannel: str
    sources: list[int]
    state: str = PENDING
    target: int = 0
    attempts: int = 0
    node: str = ""
    started: float = 0.0  # monotonic time of the last dispatch
    reason: str = ""

    def info(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "trigger_id": self.trigger_id,
            "collection_id": self.collection_id,
            "partition_id": self.partition_id,
            "channel": self.vchannel,
            "sources": list(self.sources),
            "target": self.target,
            "state": self.state,
            "reason": self.reason,
        }


@dataclass
class Trigger:
    trigger_id: int
    collection_id: int
    plan_ids: list[int] = field(default_factory=list)


_PERSISTED = ("plan_id", "trigger_id", "collection_id", "partition_id", "vchannel", "sources", "state", "target",
              "attempts", "node", "reason")  # fmt: skip


class CompactionStore:
    def __init__(self, kv: KV, keys: Keys) -> None:
        self.kv = kv
        self.keys = keys

    def save(self, plans: list[Plan] = (), triggers: list[Trigger] = ()) -> None:  # type: ignore[assignment]
        puts: dict[str, bytes] = {}
        for p in plans:
            puts[self.keys.compaction_task(p.collection_id, p.plan_id)] = json.dumps(
                {k: getattr(p, k) for k in _PERSISTED}
            ).encode()
        for t in triggers:
            puts[self.keys.compaction_trigger(t.trigger_id)] = json.dumps(asdict(t)).encode()
        items = list(puts.items())
        for i in range(0, len(items), _BATCH):
            self.kv.multi_save(dict(items[i : i + _BATCH]))

    def delete(self, plans: list[Plan], triggers: list[Trigger]) -> None:
        keys = [self.keys.compaction_task(p.collection_id, p.plan_id) for p in plans]
        keys += [self.keys.compaction_trigger(t.trigger_id) for t in triggers]
        for i in range(0, len(keys), _BATCH):
            self.kv.multi_save({}, keys[i : i + _BATCH])

    def load(self) -> tuple[dict[int, Plan], dict[int, Trigger]]:
        plans: dict[int, Plan] = {}
        for item in self.kv.scan(self.keys.compaction_tasks()):
            raw: dict[str, Any] = json.loads(item.value)
            plan = Plan(**{k: raw[k] for k in _PERSISTED if k in raw})
            plans[plan.plan_id] = plan
        triggers: dict[int, Trigger] = {}
        for item in self.kv.scan(self.keys.compaction_triggers()):
            t = Trigger(**json.loads(item.value))
            triggers[t.trigger_id] = t
        return plans, triggers
