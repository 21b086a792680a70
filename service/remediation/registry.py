"""Every action, by the name rules use. Adding an action touches its module and one line in ``FAMILIES``.

Rule loading and ``rules lint`` read names, params models and ``safe_capable`` from here
(``service.registries``), so the actions and rule lint never disagree and nothing else lists actions.
"""

from __future__ import annotations

from service.remediation.actions import (
    delete_pods,
    evict_pod,
    expand_pvc,
    promote_replica,
    rollout_restart,
    rollout_undo,
    scale,
    terminate_idle,
)
from service.remediation.base import ActionDef

FAMILIES: tuple[tuple[ActionDef, ...], ...] = (
    rollout_restart.ACTIONS,
    scale.ACTIONS,
    evict_pod.ACTIONS,
    terminate_idle.ACTIONS,
    rollout_undo.ACTIONS,
    delete_pods.ACTIONS,
    expand_pvc.ACTIONS,
    promote_replica.ACTIONS,
)


def actions() -> dict[str, ActionDef]:
    return {definition.name: definition for family in FAMILIES for definition in family}
