"""Run a rule's probes concurrently: each under its own timeout, all inside the diagnosis deadline.

A probe that hangs is cut off and reported ``error`` ("timeout after 5s") while the others report; a
probe whose client fails is reported ``error`` with the reason; bad params are reported, not raised.
Summary, evidence and every string of the facts are cut, then redacted, here, once, for every probe.
A probe whose params come from the alert never runs on an invalid target (``plan_probe``). Never raises
for a probe's sake.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import ValidationError

from service import errors
from service.clients.hub import Clients
from service.diagnosis import redact
from service.diagnosis.base import Observation, ProbeContext, ProbeDef
from service.matching import templates
from service.model import incidents
from service.model.rules import ProbeSpec
from service.observability import Metrics

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Limits:
    probe_timeout_s: float = 5.0
    deadline_s: float = 20.0
    evidence_bytes: int = 4096


@dataclass(frozen=True)
class PlannedProbe:
    """One probe of a rule with its rendered params (or the error that rendering raised, or why it must not
    run at all: ``skip`` — e.g. its params come from the alert and the alert's target is invalid)."""

    spec: ProbeSpec
    params: Mapping[str, Any]
    render_error: str | None = None
    skip: str | None = None


def plan_probe(
    spec: ProbeSpec,
    params: templates.CompiledParams,
    context: Mapping[str, Any],
    target: incidents.TargetRef,
) -> PlannedProbe:
    """Render one probe's params for this alert; a probe whose params come from the alert never runs on an
    invalid target (a label that fails validation must not pick a host either)."""
    if params.templated and not target.valid:
        return PlannedProbe(
            spec, {}, skip=f"target is invalid ({target.error}); its params come from the alert: not run"
        )
    try:
        return PlannedProbe(spec, templates.render_params(params, context))
    except templates.TemplateError as exc:
        return PlannedProbe(spec, {}, render_error=str(exc))


async def run_all(
    planned: Sequence[PlannedProbe],
    *,
    registry: Mapping[str, ProbeDef],
    target: incidents.TargetRef,
    clients: Clients,
    limits: Limits,
    metrics: Metrics | None = None,
) -> list[incidents.Finding]:
    """Every planned probe's finding, in rule order, within ``limits.deadline_s``; each is counted in
    ``metrics.probes`` by probe type and status (when ``metrics`` is given)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.deadline_s
    tasks = [
        asyncio.create_task(
            _one(p, registry, target, clients, limits, deadline, metrics), name=f"probe-{p.spec.id}"
        )
        for p in planned
    ]
    return list(await asyncio.gather(*tasks))


async def _one(
    planned: PlannedProbe,
    registry: Mapping[str, ProbeDef],
    target: incidents.TargetRef,
    clients: Clients,
    limits: Limits,
    deadline: float,
    metrics: Metrics | None,
) -> incidents.Finding:
    loop = asyncio.get_running_loop()
    started = loop.time()
    spec = planned.spec
    budget = min(spec.timeout.total_seconds() if spec.timeout else limits.probe_timeout_s, deadline - started)
    observation = await _observe(planned, registry.get(spec.probe), target, clients, max(0.0, budget))
    finding = incidents.Finding(
        id=spec.id,
        probe=spec.probe,
        status=observation.status,
        summary=redact.clean(observation.summary, limit=500, secrets=clients.secrets),
        facts=redact.facts(observation.facts, clients.secrets),
        evidence=redact.clean(observation.evidence, limit=limits.evidence_bytes, secrets=clients.secrets),
        duration_ms=round((loop.time() - started) * 1000, 1),
    )
    log.info("probe.finished", probe=spec.probe, id=spec.id, status=finding.status, ms=finding.duration_ms)
    if metrics is not None:
        metrics.probes.labels(probe=spec.probe, status=finding.status).inc()
    return finding


async def _observe(
    planned: PlannedProbe,
    definition: ProbeDef | None,
    target: incidents.TargetRef,
    clients: Clients,
    budget: float,
) -> Observation:
    spec = planned.spec
    if definition is None:
        return Observation("error", f"unknown probe {spec.probe!r}")
    if planned.skip is not None:
        return Observation("skipped", planned.skip)
    if planned.render_error is not None:
        return Observation("error", f"params could not be rendered: {planned.render_error}")
    if definition.needs_target and not target.valid:
        return Observation("skipped", f"target is invalid ({target.error}); not probed")
    try:
        params = definition.params.model_validate(dict(planned.params))
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "with"
        return Observation("error", f"bad params: {where}: {first['msg']}")
    if budget <= 0:
        return Observation("error", "timeout: the diagnosis deadline had passed before this probe started")
    context = ProbeContext(target=target, clients=clients, timeout_s=budget)
    try:
        async with asyncio.timeout(budget):
            return await definition.run(context, params)
    except TimeoutError:
        return Observation("error", f"timeout after {budget:g}s", facts={"timeout": True})
    except errors.RemediatorError as exc:
        return Observation("error", str(exc) or type(exc).__name__)
    except Exception as exc:  # a probe bug must not hide the other findings
        log.exception("probe.crashed", probe=spec.probe, id=spec.id)
        return Observation("error", f"probe failed: {type(exc).__name__}: {exc}")
