"""Every action, by the name rules use. Adding an action touches its module and one line here.

The names equal ``service.model.catalog.ACTIONS`` and an action is safe-capable exactly when the catalog lists
it in ``SAFE_CAPABLE_ACTIONS`` (tested), so that rule lint and the actions never disagree.
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
from service.remediation.base import ActionDef, Params

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


def param_models() -> dict[str, type[Params]]:
    """Params model by action name, for ``rules lint`` and rule loading."""
    return {name: definition.params for name, definition in actions().items()}
