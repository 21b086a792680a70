"""Structured logs (structlog: JSON, or console on a TTY) and the Prometheus metrics of one app.

Metrics live in a registry per application (not the process-global one) so that several apps, as in
tests, never collide. Log events are names with fields; secrets never enter them.
"""

from __future__ import annotations

import logging
import sys
import threading
import typing
from collections.abc import Mapping
from typing import Any

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from service.model import incidents

#: Every incident state: each has its gauge from the start, and reads 0 when no incident is in it.
STATES: tuple[str, ...] = typing.get_args(incidents.IncidentState)

#: The answers the webhook gives (its series exist at 0 before the first one).
INTAKE_CODES = ("200", "400", "401", "403", "413", "415", "422", "429", "503")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

#: Libraries held at WARNING whatever the level: SQLAlchemy logs every statement at INFO (and rows at DEBUG),
#: aiosqlite statements and kubernetes-asyncio response bodies at DEBUG — alert data and secrets; Alembic
#: one line per plug-in it loads before each migration run (its migration lines stay).
_QUIET = ("sqlalchemy", "aiosqlite", "kubernetes_asyncio", "alembic.runtime.plugins")


def configure_logging(*, fmt: str = "auto", level: str = "info", stream: typing.TextIO | None = None) -> None:
    """Configure logging once per process: every line, ours and every library's, one JSON object on
    ``stream`` (stdout), or a console renderer on a TTY.

    Ours stay on structlog's fast path (a filtering bound logger, no ``logging.LogRecord``); the standard
    library's records (aiohttp, asyncio, asyncpg, alembic, warnings…) go through the root logger's handler,
    whose ``ProcessorFormatter`` renders them with the same keys (``event``, ``level``, ``timestamp``,
    ``logger``, the request's contextvars, ``exception`` as a field). Both write whole lines under the
    handler's lock, so lines never interleave."""
    stream = stream if stream is not None else sys.stdout
    console = fmt == "console" or (fmt == "auto" and stream.isatty())
    renderer: Any = (  # tracebacks without locals (they may hold secrets)
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        if console
        else structlog.processors.JSONRenderer()
    )
    tail: list[Any] = [renderer] if console else [structlog.processors.format_exc_info, renderer]
    head: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = _Handler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=head,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS[level])
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(_LEVELS[level], logging.WARNING))
    logging.captureWarnings(True)  # warnings.warn: a "py.warnings" line, not text on stderr
    structlog.configure(
        processors=[*head, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=_LineLoggerFactory(handler),
        cache_logger_on_first_use=True,  # the hot paths log through module-level proxies
    )


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root logger's handler that ``configure_logging`` installs (and replaces when called again)."""


class _LineLoggerFactory:
    """structlog's loggers: each writes a rendered line to the handler's stream under the handler's lock."""

    def __init__(self, handler: _Handler) -> None:
        self._handler = handler

    def __call__(self, *args: Any) -> _LineLogger:
        return _LineLogger(self._handler, args[0] if args else "remediator")


class _LineLogger:
    """One rendered event, one ``write`` of one line (``print`` writes the newline separately)."""

    def __init__(self, handler: _Handler, name: str) -> None:
        self.name = name  # structlog.stdlib.add_logger_name reads it
        self._stream = handler.stream
        self._lock = handler.lock or threading.RLock()

    def msg(self, message: str) -> None:
        with self._lock:
            self._stream.write(message + "\n")
            self._stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


class Metrics:
    """The service's metrics, registered in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # registered in this order, the order /metrics lists them in
        self._intake(self.registry)
        self._incidents(self.registry)
        self._delivery(self.registry)
        self._processing(self.registry)
        self._mttr(self.registry)
        self._edge(self.registry)
        self._http(self.registry)
        self._outcomes(self.registry)
        self._upkeep(self.registry)
        #: Rows intake committed as pending, ever: the gauge refresher adds those committed while it counted.
        self.inbox_added = 0
        self._states: set[str] = set(STATES)

    def _intake(self, r: CollectorRegistry) -> None:
        """Alerts and requests at the webhook."""
        self.alerts_received = Counter(
            "remediator_alerts_received", "Alerts accepted and stored by intake", registry=r
        )
        self.alerts_duplicate = Counter(
            "remediator_alerts_duplicate", "Alerts already stored (re-sends, HA peers)", registry=r
        )
        self.alerts_unmatched = Counter(
            "remediator_alerts_unmatched", "Alerts that matched no rule", registry=r
        )
        self.intake_requests = Counter(
            "remediator_intake_requests", "Webhook requests by HTTP status", ["code"], registry=r
        )
        # at 0 from the start (increase() then sees the first refusal of each), and kept: labels() validates
        # and locks on every call, a dict look-up does not (the webhook counts every request)
        self._intake_by_code: dict[int, Counter] = {
            int(code): self.intake_requests.labels(code=code) for code in INTAKE_CODES
        }
        self.intake_latency = Histogram(
            "remediator_intake_latency_seconds",
            "Time from request to durable answer",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )

    def _incidents(self, r: CollectorRegistry) -> None:
        """Incidents by state, opened by rule."""
        self.incidents = Gauge("remediator_incidents", "Incidents by state", ["state"], registry=r)
        for state in STATES:  # every state is exported from the start, even before the first count
            self.incidents.labels(state=state)
        self.incidents_opened = Counter(
            "remediator_incidents_opened", "Incidents opened by rule", ["rule"], registry=r
        )

    def _delivery(self, r: CollectorRegistry) -> None:
        """Notifications: the outbox and its delivery attempts."""
        self.outbox_backlog = Gauge(
            "remediator_outbox_backlog", "Notifications not yet delivered", registry=r
        )
        self.notifications = Counter(
            "remediator_notifications",
            "Delivery attempts by channel and result",
            ["channel", "result"],
            registry=r,
        )

    def _processing(self, r: CollectorRegistry) -> None:
        """Inbox rows the pipeline could not process."""
        self.pipeline_errors = Counter(
            "remediator_pipeline_errors", "Inbox rows whose processing raised", registry=r
        )
        self.inbox_quarantined = Counter(
            "remediator_inbox_quarantined",
            "Inbox rows claimed too often without finishing (a worker died on them), not processed again",
            registry=r,
        )

    def _mttr(self, r: CollectorRegistry) -> None:
        """Times to mitigate and resolve, against the rule's MTTR target."""
        mttr_buckets = (10, 30, 60, 120, 180, 300, 600, 900, 1800, 3600, 7200, 14400)
        self.time_to_mitigate = Histogram(
            "remediator_time_to_mitigate_seconds",
            "Alert start (earliest startsAt) to verified mitigation, by rule",
            ["rule"],
            buckets=mttr_buckets,
            registry=r,
        )
        self.time_to_resolve = Histogram(
            "remediator_time_to_resolve_seconds",
            "Alert start (earliest startsAt) to resolution (MTTR), by rule",
            ["rule"],
            buckets=mttr_buckets,
            registry=r,
        )
        self.within_target = Counter(
            "remediator_incidents_within_mttr_target",
            "Incidents resolved within their rule's MTTR target",
            ["rule"],
            registry=r,
        )
        self.over_target = Counter(
            "remediator_incidents_over_mttr_target",
            "Incidents resolved over their rule's MTTR target",
            ["rule"],
            registry=r,
        )

    def _edge(self, r: CollectorRegistry) -> None:
        """The inbox backlog and the requests refused at the edge."""
        self.inbox_backlog = Gauge("remediator_inbox_backlog", "Inbox rows not yet processed", registry=r)
        self.http_refused = Counter(
            "remediator_http_refused",
            "Requests refused at the edge before their handler ran (503 + Retry-After), by reason",
            ["reason"],
            registry=r,
        )

    def _http(self, r: CollectorRegistry) -> None:
        """Every answer of the HTTP server, the build, and the dependencies readiness reports."""
        self.http_duration = Histogram(
            "remediator_http_request_duration_seconds",
            "Time to answer, by route (its pattern, e.g. /v1/incidents/{id}) and status code",
            ["route", "code"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.build_info = Gauge(
            "remediator_build_info", "Always 1; the labels say what runs", ["version", "python"], registry=r
        )
        self.dependency_up = Gauge(
            "remediator_dependency_up",
            "1 when the dependency answered its last check (store, coordination), else 0",
            ["dependency"],
            registry=r,
        )

    def _outcomes(self, r: CollectorRegistry) -> None:
        """What automation did: actions, guard refusals, probes, the kill switch."""
        self.actions = Counter(
            "remediator_actions",
            "Remediation actions by action and outcome",
            ["action", "outcome"],
            registry=r,
        )
        self.guard_refusals = Counter(
            "remediator_guard_refusals", "Automatic actions refused, by guard", ["guard"], registry=r
        )
        self.probes = Counter(
            "remediator_probes",
            "Diagnostic probe results by probe type and status",
            ["probe", "status"],
            registry=r,
        )
        self.kill_switch = Gauge(
            "remediator_kill_switch", "1 while the kill switch is on (automation paused), else 0", registry=r
        )

    def _upkeep(self, r: CollectorRegistry) -> None:
        """Retention and the store's size."""
        self.retention_deleted = Counter(
            "remediator_retention_deleted_rows", "Rows deleted by retention, by table", ["table"], registry=r
        )
        self.store_size = Gauge(
            "remediator_store_size_bytes",
            "Size of the store (SQLite file + WAL, or the PostgreSQL database)",
            registry=r,
        )

    def add_runtime(self, *, version: str, python: str) -> None:
        """The build (``remediator_build_info`` = 1 with these labels) and the process and Python runtime
        collectors (``process_*``, ``python_info``, ``python_gc_*``), in this app's own registry."""
        self.build_info.labels(version=version, python=python).set(1)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def intake_request(self, status: int) -> Counter:
        """The ``remediator_intake_requests`` child of this status code (kept once made)."""
        child = self._intake_by_code.get(status)
        if child is None:
            child = self._intake_by_code[status] = self.intake_requests.labels(code=str(status))
        return child

    def inbox_pending(self, rows: int) -> None:
        """Intake committed ``rows`` new pending rows: the backlog reads them at once, not at the next
        refresh (so that it never reads 0 while an accepted alert waits)."""
        self.inbox_added += rows
        self.inbox_backlog.inc(rows)

    def set_store_gauges(self, by_state: Mapping[str, int], *, outbox: int, inbox: int) -> None:
        """The store-derived gauges, as counted; a state no incident is in any more reads 0."""
        self._states.update(by_state)
        for state in self._states:
            self.incidents.labels(state=state).set(by_state.get(state, 0))
        self.outbox_backlog.set(outbox)
        self.inbox_backlog.set(inbox)
