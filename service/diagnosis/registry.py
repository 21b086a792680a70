"""Every probe, by the name rules use. Adding a probe family touches its module and one line here."""

from __future__ import annotations

from service.diagnosis import net, postgres, prometheus, redis, web
from service.diagnosis.base import Params, ProbeDef
from service.diagnosis.kube import events, logs, network, pods, resources, storage, workload

FAMILIES: tuple[tuple[ProbeDef, ...], ...] = (
    pods.PROBES,
    workload.PROBES,
    events.PROBES,
    logs.PROBES,
    resources.PROBES,
    network.PROBES,
    storage.PROBES,
    web.PROBES,
    net.PROBES,
    postgres.PROBES,
    redis.PROBES,
    prometheus.PROBES,
)


def probes() -> dict[str, ProbeDef]:
    return {definition.name: definition for family in FAMILIES for definition in family}


def param_models() -> dict[str, type[Params]]:
    """Params model by probe name, for ``rules lint`` and rule loading."""
    return {name: definition.params for name, definition in probes().items()}
