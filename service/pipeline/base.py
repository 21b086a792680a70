"""The parts every stage of the pipeline uses, declared once for the stage classes (``Pipeline`` holds
them as dataclass fields)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from service.clients.hub import Clients
from service.diagnosis import runner
from service.diagnosis.base import ProbeDef
from service.lifecycle.transitions import Lifecycle
from service.matching.loader import RuleSet
from service.observability import Metrics
from service.records.store import Store
from service.remediation import engine as remediation


class Stages:
    """Attributes only: what ``Pipeline`` provides to the stages it inherits."""

    store: Store
    rules: RuleSet
    metrics: Metrics
    lifecycle: Lifecycle
    clients: Clients
    probes: Mapping[str, ProbeDef]
    limits: runner.Limits
    engine: remediation.Engine | None
    on_notify: Callable[[], None]
    clock: Callable[[], float]
    #: verifications of approved actions still running (``drain`` waits for them at shutdown)
    background: set[asyncio.Task[None]]
