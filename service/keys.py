"""Every ``web.AppKey`` of the application, typed, in one place.

The types are imported for the type checker only: at run time this module imports nothing of ours, so a
handler in ``intake`` can import it without pulling in the stages and workers that ``app`` wires up
(``app`` stores them; mypy still types ``request.app[keys.STORE]`` as ``Store``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from service.clients.hub import Clients
    from service.dispatcher import Dispatcher
    from service.escalation.outbox import OutboxWorker
    from service.intake.committer import GroupCommitter
    from service.intake.slack import Interactions
    from service.lifecycle.transitions import Lifecycle
    from service.matching.loader import RuleSet
    from service.observability import Metrics
    from service.pipeline import Pipeline
    from service.records.coordination import Coordination
    from service.records.store import Store
    from service.remediation.engine import Engine
    from service.settings import Settings

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
STORE: web.AppKey[Store] = web.AppKey("store")
RULES: web.AppKey[RuleSet] = web.AppKey("rules")
#: the time as the pipeline, engine and timers read it (``time.time`` unless a test injects a clock)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
COMMITTER: web.AppKey[GroupCommitter] = web.AppKey("committer")
DISPATCHER: web.AppKey[Dispatcher] = web.AppKey("dispatcher")
OUTBOX: web.AppKey[OutboxWorker] = web.AppKey("outbox")
CLIENTS: web.AppKey[Clients] = web.AppKey("clients")
COORDINATION: web.AppKey[Coordination] = web.AppKey("coordination")
ENGINE: web.AppKey[Engine] = web.AppKey("engine")
LIFECYCLE: web.AppKey[Lifecycle] = web.AppKey("lifecycle")
PIPELINE: web.AppKey[Pipeline] = web.AppKey("pipeline")
#: the Slack interactions endpoint's verifier and background tasks (``intake.slack``)
INTERACTIONS: web.AppKey[Interactions] = web.AppKey("slack_interactions")
