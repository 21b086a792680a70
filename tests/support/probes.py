"""Running probes through the real diagnosis runner, as the pipeline does, and what a finding shows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from service.clients.hub import Clients
from service.diagnosis import runner
from service.model import incidents
from service.model.rules import ProbeSpec


async def run_probes(
    clients: Clients,
    probes: list[tuple[str, dict[str, Any]]],
    *,
    registry: Mapping[str, Any],
    target: incidents.TargetRef,
    timeout: float,
) -> list[incidents.Finding]:
    """Run ``(probe name, params)`` pairs (ids ``p0``, ``p1``, ...) against ``target``."""
    planned = [
        runner.PlannedProbe(
            spec=ProbeSpec.model_validate({"id": f"p{i}", "probe": name, "with": params}), params=params
        )
        for i, (name, params) in enumerate(probes)
    ]
    return await runner.run_all(
        planned,
        registry=registry,
        target=target,
        clients=clients,
        limits=runner.Limits(probe_timeout_s=timeout),
    )


def shown(finding: incidents.Finding) -> str:
    """Everything a human or a CEL condition can read of a finding."""
    return finding.summary + finding.evidence + json.dumps(finding.facts)
