"""Names of the probes and actions a rule may use (DESIGN §3.4), known to lint before they run.

The implementations live in ``service.diagnosis`` and ``service.remediation``; this catalog is the
I/O-free list of names so that ``matching`` can reject a misspelt probe or action when rules load.
"""

from __future__ import annotations

PROBES: frozenset[str] = frozenset(
    {
        "kube.pods",
        "kube.deployment",
        "kube.events",
        "kube.logs",
        "kube.resources",
        "kube.networkpolicies",
        "kube.pvc",
        "http.get",
        "http.json",
        "tcp.connect",
        "dns.resolve",
        "postgres.ping",
        "postgres.activity",
        "postgres.long_queries",
        "postgres.replication",
        "redis.ping",
        "redis.info",
        "prometheus.query",
    }
)

#: Actions that a rule may mark ``safety: safe`` (applied automatically under guards).
SAFE_CAPABLE_ACTIONS: frozenset[str] = frozenset(
    {"kube.rollout_restart", "kube.scale", "kube.evict_pod", "postgres.terminate_idle"}
)

#: Actions that only ever run after a human approved them.
APPROVAL_ONLY_ACTIONS: frozenset[str] = frozenset(
    {"kube.rollout_undo", "kube.delete_pods", "kube.expand_pvc", "postgres.promote_replica"}
)

ACTIONS: frozenset[str] = SAFE_CAPABLE_ACTIONS | APPROVAL_ONLY_ACTIONS
