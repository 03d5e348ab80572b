"""Image rollouts in dependency order: coordinator, then the workers, then the proxy.

:func:`plan_images` decides, from the Deployments as they are now, which image each role's
Deployment should get in this reconcile pass. A stage whose image changes (or which is still
rolling) holds every later stage at its current image; the handler retries until the whole
plan has gone through. Scaling never waits: only the image is held back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from quiver_operator.manifests import image_of
from quiver_operator.spec import ROLLOUT_STAGES, STANDALONE

Obj = dict[str, Any]


def rolled_out(deploy: Obj | None) -> bool:
    """True when the Deployment's controller has caught up and every wanted pod is available
    at the current template (the test ``kubectl rollout status`` makes)."""
    if deploy is None:
        return False
    wanted = deploy.get("spec", {}).get("replicas", 1)
    status = deploy.get("status") or {}
    generation = deploy.get("metadata", {}).get("generation", 0)
    return (
        status.get("observedGeneration", 0) >= generation
        and status.get("updatedReplicas", 0) >= wanted
        and status.get("replicas", 0) <= status.get("updatedReplicas", 0)
        and status.get("availableReplicas", 0) >= wanted
    )


@dataclass
class Plan:
    images: dict[str, str] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)  # roles kept at their old image for now
    waiting_for: list[str] = field(default_factory=list)  # roles that must become available first

    @property
    def done(self) -> bool:
        return not self.held


def stages_for(keys: list[str]) -> list[tuple[str, ...]]:
    if keys == [STANDALONE.key]:
        return [(STANDALONE.key,)]
    return [tuple(k for k in stage if k in keys) for stage in ROLLOUT_STAGES]


def plan_images(desired: Mapping[str, str], existing: Mapping[str, Obj | None]) -> Plan:
    """``desired``: role key -> wanted image; ``existing``: role key -> its Deployment now (or None)."""
    plan = Plan()
    blocked = False
    for stage in stages_for(list(desired)):
        for key in stage:
            current = image_of(existing.get(key))
            if blocked and current is not None and current != desired[key]:
                plan.images[key] = current
                plan.held.append(key)
            else:
                plan.images[key] = desired[key]
        if blocked:
            continue
        for key in stage:
            deploy = existing.get(key)
            current = image_of(deploy)
            changing = current is not None and current != desired[key]
            if changing or (deploy is not None and not rolled_out(deploy)):
                plan.waiting_for.append(key)
        blocked = bool(plan.waiting_for)
    if not plan.held:
        plan.waiting_for = []
    return plan
