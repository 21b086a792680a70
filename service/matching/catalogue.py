"""What a rule may name (DESIGN §3.4): every probe and action, with its params model, handed in by the caller.

``matching`` imports no probe or action, so the service builds the catalogue from its registries
(``service.registries.catalogue()``) and passes it to ``loader.load_rules`` and ``loader.lint``; adding a
probe or an action then needs no list here. Holds data only; never does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pydantic


@dataclass(frozen=True)
class KnownAction:
    """An action as rule lint sees it: its params model and whether a rule may mark it ``safety: safe``."""

    params: type[pydantic.BaseModel]
    safe_capable: bool


@dataclass(frozen=True)
class Catalogue:
    """Probe params models and known actions, by the names rules use."""

    probes: Mapping[str, type[pydantic.BaseModel]]
    actions: Mapping[str, KnownAction]
