"""Per-rule incident statistics for the monthly runbook review (``remediator rules list``).

Owns two bounded reads of the ``incidents`` table: for incidents opened in ``[since, now]``, only the columns
the counts and durations need — runbook drills (``drill = true``) excluded, they are rehearsals, not outages —
and, per rule, when it was last drilled (the newest drill incident, any age). Medians are computed here in
Python, so the queries are plain SQLAlchemy Core that run the same on SQLite and PostgreSQL. Reads only; never
writes.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import sqlalchemy as sa

from service.records import schema
from service.records.store import Store

T = schema.incidents


@dataclass
class RuleStats:
    """What one rule did in the window. ``mttr_s``: median of alert start → mitigated (else resolved)."""

    fired: int = 0
    mitigated: int = 0
    escalated: int = 0
    mttr_s: float | None = None
    mttr_target_s: float | None = None
    over_target: int = 0


async def rule_stats(store: Store, *, since: float, now: float) -> dict[str, RuleStats]:
    """Statistics by rule name of the incidents opened in ``[since, now]``, drills left out."""
    query = (
        sa.select(
            T.c.rule,
            sa.func.coalesce(T.c.started_at, T.c.opened_at),  # the MTTR clock starts with the alert
            T.c.mitigated_at,
            T.c.resolved_at,
            T.c.escalated_at,
            T.c.mttr_target_s,
        )
        .where(T.c.opened_at >= since, T.c.opened_at <= now, T.c.drill.is_(False))
        .order_by(T.c.rule, T.c.opened_at)
    )
    stats: dict[str, RuleStats] = {}
    durations: dict[str, list[float]] = {}
    async with store.read() as conn:
        rows = (await conn.execute(query)).all()
    for rule, started, mitigated, resolved, escalated, target in rows:
        entry = stats.setdefault(rule, RuleStats())
        entry.fired += 1
        entry.mttr_target_s = target  # the rule's target as of its latest incident
        if mitigated is not None:
            entry.mitigated += 1
        if escalated is not None:
            entry.escalated += 1
        ended = mitigated if mitigated is not None else resolved
        if ended is not None:
            duration = max(0.0, ended - started)
            durations.setdefault(rule, []).append(duration)
            if duration > target:
                entry.over_target += 1
    for rule, values in durations.items():
        stats[rule].mttr_s = statistics.median(values)
    return stats


async def last_drills(store: Store) -> dict[str, float]:
    """When each rule was last drilled: rule name → ``opened_at`` of its newest drill incident."""
    query = sa.select(T.c.rule, sa.func.max(T.c.opened_at)).where(T.c.drill.is_(True)).group_by(T.c.rule)
    async with store.read() as conn:
        rows = (await conn.execute(query)).all()
    return {rule: float(at) for rule, at in rows}
