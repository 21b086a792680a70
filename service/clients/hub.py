"""The set of client adapters handed to probes and actions; a missing one means "not configured"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.clients.http import HttpClient
    from service.clients.kube import KubeClient
    from service.clients.postgres import PostgresConnector
    from service.clients.prometheus import PrometheusClient
    from service.clients.redis import RedisConnector


@dataclass(frozen=True)
class Clients:
    http: HttpClient
    prometheus: PrometheusClient | None = None
    kube: KubeClient | None = None
    postgres: PostgresConnector | None = None
    redis: RedisConnector | None = None
    secrets: frozenset[str] = field(default_factory=frozenset)  # values to redact from evidence
    credential_hosts: frozenset[str] = field(default_factory=frozenset)  # REMEDIATOR_MONITOR_HOSTS
