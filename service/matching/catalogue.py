"""What a rule may name (DESIGN §3.4): every probe and action, with its params model, handed in by the caller.

``matching`` imports no probe or action, so the service builds the catalogue from its registries
(``service.registries.catalogue()``) and passes it to ``loader.load_rules`` and ``loader.lint``; adding a
probe or an action then needs no list here. The one list kept here, ``POD_RESTARTING``, names the actions
that restart or delete a workload's pods: the only ones on which a rule may declare ``quorum:``.
Holds data only; never does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pydantic

#: actions that take pods of a workload down (restart, delete, evict): ``quorum`` is meaningful only on these
POD_RESTARTING = frozenset({"kube.rollout_restart", "kube.delete_pods", "kube.evict_pod"})


@dataclass(frozen=True)
class KnownAction:
    """An action as rule lint sees it: its params model and whether a rule may mark it ``safety: safe``."""

    params: type[pydantic.BaseModel]
    safe_capable: bool


@dataclass(frozen=True)
class Catalogue:
    """Probe params models and known actions, by the names rules use.

    ``quorum_actions``: the actions on which a rule may declare ``quorum`` (those that restart or delete
    a workload's pods)."""

    probes: Mapping[str, type[pydantic.BaseModel]]
    actions: Mapping[str, KnownAction]
    quorum_actions: frozenset[str] = POD_RESTARTING
