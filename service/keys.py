"""Every ``web.AppKey`` of the application, typed, in one place."""

from __future__ import annotations

from aiohttp import web

from service.clients.hub import Clients
from service.dispatcher import Dispatcher
from service.escalation.handoff import Handoff
from service.escalation.outbox import OutboxWorker
from service.intake.committer import GroupCommitter
from service.matching.loader import RuleSet
from service.observability import Metrics
from service.records.coordination import Coordination
from service.records.store import Store
from service.remediation.engine import Engine
from service.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", Store)
RULES = web.AppKey("rules", RuleSet)
COMMITTER = web.AppKey("committer", GroupCommitter)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
OUTBOX = web.AppKey("outbox", OutboxWorker)
CLIENTS = web.AppKey("clients", Clients)
COORDINATION = web.AppKey("coordination", Coordination)
ENGINE = web.AppKey("engine", Engine)
HANDOFF = web.AppKey("handoff", Handoff)
