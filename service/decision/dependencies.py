"""Which of a rule's dependencies are failing, each as the sentence a human reads (the ``dependency`` guard).

A rule's ``depends_on`` names its own probes (``db``: does PostgreSQL accept connections?) and other rules
(``database-failure``). A dependency fails when

- its probe's finding is ``failed`` — or ``error``: a dependency probe that could not look is treated as
  failing, because unknown is not healthy and acting on a dependent while its dependency may be down is the
  harm this guard exists to prevent (a human reads the probe's own words and decides). ``degraded`` (slow but
  answering) and ``skipped`` do not block, and neither does a probe that did not run at all;
- or an unresolved incident of the depended-on rule is open in the target's namespace (the caller reads
  those: ``service.records.dependencies.open_causes`` satisfies ``OpenIncident``).

Pure: findings and open incidents come in as arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from service.model import incidents
from service.model.rules import Rule


class OpenIncident(Protocol):
    """What the guard needs to know of an open incident of a depended-on rule."""

    @property
    def id(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def target_kind(self) -> str: ...
    @property
    def target_namespace(self) -> str: ...
    @property
    def target_name(self) -> str: ...


#: the finding statuses of a dependency probe that block automatic actions (see the module docstring)
BLOCKING = frozenset({"failed", "error"})


def failing(
    rule: Rule, found: Sequence[incidents.Finding], open_incidents: Sequence[OpenIncident] = ()
) -> dict[str, str]:
    """Every failing dependency of ``rule`` → the sentence a human reads, in ``depends_on`` order.

    A depended-on rule with several open incidents is named by its oldest (the first given)."""
    by_id = {f.id: f for f in found}
    causes: dict[str, OpenIncident] = {}
    for cause in open_incidents:
        causes.setdefault(cause.rule, cause)
    out: dict[str, str] = {}
    for name in rule.depends_on:
        finding = by_id.get(name)
        if name in rule.dependency_probes():
            if finding is not None and finding.status in BLOCKING:
                out[name] = probe_sentence(finding)
        elif name in causes:
            out[name] = incident_sentence(causes[name])
    return out


def probe_sentence(finding: incidents.Finding) -> str:
    """``probe db (tcp.connect) failed: TCP postgresql.default:5432: connection refused``."""
    verb = "failed" if finding.status == "failed" else "could not check its dependency"
    said = f": {finding.summary}" if finding.summary else ""
    return f"probe {finding.id} ({finding.probe}) {verb}{said}"


def incident_sentence(cause: OpenIncident) -> str:
    """``database-failure incident 01J… is open in default (Deployment postgresql)``; without a target name
    (a rule unit test's incident) the parenthesis is left out."""
    what = f" ({cause.target_kind} {cause.target_name})" if cause.target_name else ""
    return f"{cause.rule} incident {cause.id} is open in {cause.target_namespace}{what}"
