"""``create_app(settings)``: routes, middlewares and cleanup contexts. No logic lives here."""

from __future__ import annotations

import platform
import time
from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web

import service
from service import console, keys, pipeline, registries
from service.clients import hub, sessions
from service.clients.http import HttpClient
from service.clients.kube import KubeClient
from service.clients.postgres import PostgresConnector
from service.clients.prometheus import PrometheusClient
from service.clients.redis import RedisConnector
from service.diagnosis import registry, runner
from service.dispatcher import Dispatcher, worker_name
from service.escalation import links, paging, routes
from service.escalation.channels import registry as channels
from service.escalation.outbox import OutboxWorker
from service.intake import api, control, drills, humans, limits, slack, timing, webhook
from service.intake.committer import GroupCommitter
from service.intake.gauges import GaugeRefresher
from service.lifecycle.timers import EscalationTimers
from service.lifecycle.transitions import Lifecycle
from service.matching import loader
from service.observability import Metrics
from service.records import coordination_backend, inbox, wakeups
from service.records.retention import Retention
from service.records.store import Store
from service.remediation import registry as actions_registry
from service.remediation.engine import Engine, Policy
from service.settings import Settings

log = structlog.get_logger(__name__)


def create_app(
    settings: Settings, *, rules: loader.RuleSet | None = None, clock: Callable[[], float] = time.time
) -> web.Application:
    """Build the application; rules load now so that a broken rule stops start-up with its file:line.
    ``clock`` is what the pipeline, the engine and the timers read as the time (tests inject one)."""
    metrics = Metrics()
    metrics.add_runtime(version=service.__version__, python=platform.python_version())
    limiter = limits.Limiter(
        max_inflight=settings.max_inflight, max_large_bodies=settings.max_large_bodies, metrics=metrics
    )
    app = web.Application(
        # one layer: request id, limits, control characters, JSON errors, timing (timing.edge)
        middlewares=[timing.edge(timing.Timing(metrics), limiter)],
        client_max_size=settings.max_body_bytes + 1,
        handler_args=server_options(settings),
    )
    app[keys.SETTINGS] = settings
    app[keys.METRICS] = metrics
    app[keys.CLOCK] = clock
    app[keys.RULES] = (
        rules
        if rules is not None
        else loader.load_rules(settings.rules_dir, catalogue=registries.catalogue())
    )
    app.cleanup_ctx.extend([_store, _coordination, _clients, _workers, _retention])
    app.router.add_post("/v1/alerts", webhook.post_alerts)
    app.router.add_get("/v1/incidents", api.list_incidents)
    app.router.add_get("/v1/incidents/{id}", api.get_incident)
    app.router.add_post("/v1/incidents/{id}/actions/{action}/{verb:approve|reject}", control.decide_action)
    app.router.add_post("/v1/incidents/{id}/ack", control.acknowledge)
    app.router.add_post("/v1/incidents/{id}/checklist/{item}", control.tick)
    app.router.add_post("/v1/incidents/{id}/comms/{kind}/{step}/publish", control.publish)
    app.router.add_get("/v1/incidents/{id}/report", api.incident_report)
    app.router.add_post("/v1/pause", control.pause)
    app.router.add_get("/v1/pause", control.automation)
    app.router.add_post("/v1/resume", control.resume)
    app.router.add_post("/v1/drills", drills.post_drill)
    slack.setup(app)  # POST /v1/slack/interactions: the Slack app's buttons
    app.router.add_get("/v1/openapi.json", api.openapi_document)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/readyz", api.readyz)
    app.router.add_get("/metrics", api.metrics)
    console.setup(app)
    return app


def server_options(settings: Settings) -> dict[str, float]:
    """Options of aiohttp's connection handler, wherever the app is served (``remediator serve``, tests).

    aiohttp has no timeout of its own for reading a request head, but its keep-alive timer is one: it runs
    from the moment a connection opens (and from each answer on) and closes the connection if no whole
    request head has arrived when it fires, however slowly bytes trickle in. So ``header_timeout_s`` is
    both the head timeout and how long an idle keep-alive connection stays open."""
    return {"keepalive_timeout": settings.header_timeout_s}


async def _store(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    store = Store.open(settings.store_url, timeout_s=settings.store_timeout_s)
    await store.migrate()
    if store.single_writer:  # one replica: whatever is still claimed was claimed by a process that died
        released = await inbox.release(store)
        if released:
            log.info("dispatcher.resumed", rows=released)
    store.start_writer(checkpoint_s=settings.wal_checkpoint_s)
    app[keys.STORE] = store
    yield
    await store.close()


async def _coordination(app: web.Application) -> AsyncIterator[None]:
    """In-process guard state for one replica; Redis (``REMEDIATOR_REDIS_URL``) for several."""
    shared = coordination_backend.connect(app[keys.SETTINGS].redis_url)
    app[keys.COORDINATION] = shared
    try:
        yield
    finally:
        await shared.close()


async def _clients(app: web.Application) -> AsyncIterator[None]:
    """The adapters probes use; each is None when its setting is empty (its probes then report skipped)."""
    settings = app[keys.SETTINGS]
    async with sessions.new_session() as session:
        kube = await KubeClient.connect(settings.kubeconfig)
        postgres = PostgresConnector.from_settings(settings)
        redis = RedisConnector.from_settings(settings)
        secrets = {*(postgres.secrets() if postgres else ()), *(redis.secrets() if redis else ())}
        app[keys.CLIENTS] = hub.Clients(
            http=HttpClient(session),
            prometheus=PrometheusClient(session, settings.prometheus_url)
            if settings.prometheus_url
            else None,
            kube=kube,
            postgres=postgres,
            redis=redis,
            secrets=frozenset(secrets),
            credential_hosts=frozenset(settings.monitor_hosts),
        )
        try:
            yield
        finally:
            if kube is not None:
                await kube.close()


async def _workers(app: web.Application) -> AsyncIterator[None]:
    """The background workers: outbox, dispatcher (pipeline + engine), committer, timers, gauges."""
    settings, store, metrics = app[keys.SETTINGS], app[keys.STORE], app[keys.METRICS]
    async with sessions.new_session() as session:
        table = routes.from_settings(settings)
        outbox = OutboxWorker(
            store,
            channels.build(settings, session, store),
            metrics,
            max_attempts=settings.outbox_max_attempts,
            backoff_s=settings.outbox_backoff_s,
            fallback=table.fallback_for,
            clock=app[keys.CLOCK],
        )
        lifecycle = app[keys.LIFECYCLE] = _lifecycle(settings, store, metrics, table)
        timers = EscalationTimers(
            store,
            lifecycle,
            on_notify=outbox.wake,
            clock=app[keys.CLOCK],
            publish=humans.auto_publisher(app) if settings.statuspage_auto else None,
        )
        flow = _pipeline(app, lifecycle, on_notify=outbox.wake)
        gauges = GaugeRefresher(store, metrics, interval_s=settings.metrics_refresh_s)
        dispatcher = Dispatcher(
            store,
            gauges.after(flow.process),
            metrics,
            workers=settings.workers,
            lease_s=settings.inbox_lease_s,
            quarantine=flow.quarantine,
            max_claims=settings.max_claims,
        )
        committer = GroupCommitter(store, on_commit=dispatcher.wake, dsn=_postgres_dsn(settings, store))
        app[keys.OUTBOX], app[keys.DISPATCHER], app[keys.COMMITTER] = outbox, dispatcher, committer
        listener = _listener(settings, store, dispatcher)
        await gauges.refresh()  # the first scrape already reads the store's numbers
        outbox.start()
        dispatcher.start()
        committer.start()
        timers.start()
        gauges.start()
        _log_started(app)
        try:
            yield
        finally:
            if listener is not None:
                await listener.stop()
            await gauges.stop()
            await timers.stop()
            await committer.stop()
            await dispatcher.stop()
            await flow.drain()
            await outbox.stop()


def _log_started(app: web.Application) -> None:
    """The start-up line: which version listens where, on which store, with how many rules."""
    settings = app[keys.SETTINGS]
    log.info(
        "service.started",
        version=service.__version__,
        listen=settings.listen,
        store=app[keys.STORE].dialect,
        rules=len(app[keys.RULES].rules),
        channels=settings.notify_channels,
    )


async def _retention(app: web.Application) -> AsyncIterator[None]:
    """Retention (``records.retention``): prunes what is older than ``retention_days`` in the background;
    stops first. It starts before intake listens: an older small SQLite file switches to incremental
    auto-vacuum then."""
    retention = Retention.from_settings(
        app[keys.SETTINGS], app[keys.STORE], app[keys.METRICS], clock=app[keys.CLOCK]
    )
    await retention.start()
    try:
        yield
    finally:
        await retention.stop()


def _lifecycle(settings: Settings, store: Store, metrics: Metrics, table: routes.Routes) -> Lifecycle:
    """The owner of the incidents' life, routing notifications by ``table``."""
    return Lifecycle(
        store,
        settings.notify_channels,
        settings.base_url,
        metrics=metrics,
        route=table.channels_for,
        link_policy=links.policy(settings.link_hosts, settings.base_url, settings.prometheus_url),
        paging=paging.from_settings(settings, table),
        link_window_s=settings.link_window_s,
        link_grace_s=settings.link_grace_s,
        first_response_s=settings.first_response_s,
        warroom_bridge=settings.warroom_bridge_url,
        comms_labels=tuple(settings.comms_labels),
        drill_channel=settings.drill_channel,
    )


def _pipeline(
    app: web.Application, lifecycle: Lifecycle, *, on_notify: Callable[[], None]
) -> pipeline.Pipeline:
    """The pipeline and its remediation engine, both kept in the app."""
    settings, store = app[keys.SETTINGS], app[keys.STORE]
    flow = pipeline.Pipeline(
        store=store,
        rules=app[keys.RULES],
        metrics=app[keys.METRICS],
        lifecycle=lifecycle,
        clients=app[keys.CLIENTS],
        probes=registry.probes(),
        limits=runner.Limits(
            probe_timeout_s=settings.probe_timeout_s,
            deadline_s=settings.diagnosis_deadline_s,
            evidence_bytes=settings.evidence_limit_bytes,
        ),
        on_notify=on_notify,
        clock=app[keys.CLOCK],
    )
    engine = Engine(
        store=store,
        coordination=app[keys.COORDINATION],
        actions=actions_registry.actions(),
        probes=registry.probes(),
        clients=app[keys.CLIENTS],
        policy=policy(settings),
        limits=flow.limits,
        owner=worker_name(),
        clock=app[keys.CLOCK],
        metrics=app[keys.METRICS],
    )
    flow.engine = engine
    app[keys.ENGINE], app[keys.PIPELINE] = engine, flow
    return flow


def _postgres_dsn(settings: Settings, store: Store) -> str | None:
    """The asyncpg DSN of a PostgreSQL store (its own connections: intake's committer, the listener)."""
    if store.dialect != "postgresql":
        return None
    return settings.store_url.replace("postgres://", "postgresql://", 1)


def _listener(settings: Settings, store: Store, dispatcher: Dispatcher) -> wakeups.InboxListener | None:
    """On PostgreSQL, a listener that wakes the dispatcher when another replica stores an alert (started)."""
    dsn = _postgres_dsn(settings, store)
    if dsn is None:
        return None
    listener = wakeups.InboxListener(dsn, dispatcher.wake)
    listener.start()
    return listener


def policy(settings: Settings) -> Policy:
    """The guard settings of the remediation engine."""
    return Policy(
        dry_run=settings.dry_run,
        namespaces=frozenset(settings.namespaces) if settings.namespaces else None,
        budget=settings.budget,
        budget_text=settings.action_budget,
        storm_brake=settings.storm_brake,
        flap_window_s=settings.flap_window_s,
        action_timeout_s=settings.action_timeout_s,
        verify_interval_s=settings.verify_interval_s,
    )
