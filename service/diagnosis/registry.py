"""Every probe, by the name rules use.

A probe is a ``ProbeDef`` in its family module's ``PROBES``; a new family module adds one line to
``FAMILIES``. Rule loading and ``rules lint`` read names and params models from here
(``service.registries``), so nothing else lists probes.
"""

from __future__ import annotations

from service.diagnosis import net, postgres, prometheus, redis, web
from service.diagnosis.base import ProbeDef
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
