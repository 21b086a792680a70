"""The probe contract: ``async def probe(ctx, params) -> Observation``, declared with its params model.

A probe reads, never writes. It returns an ``Observation`` (status, summary, facts, evidence); the runner
adds the finding id, the probe name and the duration, bounds and redacts the evidence, and turns
timeouts and client errors into ``error`` findings. Probes raise ``errors.Transient``/``Permanent`` from
the clients they use; they do not catch them to hide a failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from service.clients.hub import Clients
from service.model import incidents
from service.model.incidents import FindingStatus


class Params(BaseModel):
    """Base of every probe's params model: frozen, and unknown keys are an error (caught by lint)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class Observation:
    status: FindingStatus
    summary: str
    facts: dict[str, Any] = field(default_factory=dict)
    evidence: str = ""


@dataclass(frozen=True)
class ProbeContext:
    """What a probe may use: the incident's target, the client adapters, and its own time budget."""

    target: incidents.TargetRef
    clients: Clients
    timeout_s: float


ProbeFn = Callable[[ProbeContext, Any], Awaitable[Observation]]


@dataclass(frozen=True)
class ProbeDef:
    """A registered probe: its name in rules, its params model, and the function."""

    name: str
    params: type[Params]
    run: ProbeFn
    needs_target: bool = False  # kube.* probes act on the incident's target and need it valid


def probe(name: str, params: type[Params], *, needs_target: bool = False) -> Callable[[ProbeFn], ProbeDef]:
    """Decorator: ``@probe("http.get", HttpGetParams)`` turns the function into a ``ProbeDef``."""

    def wrap(fn: ProbeFn) -> ProbeDef:
        return ProbeDef(name=name, params=params, run=fn, needs_target=needs_target)

    return wrap
