"""Typed transitions of an incident, each in the caller's transaction: check the from-state (compare and
set), write the state, append the timeline event, queue the notifications it implies.

    (none) ─open→ diagnosing ─remediating→ remediating ─verifying→ verifying ─mitigate→ mitigated
                      │                          │                     │                   │
                      └──────────escalate────────┴─────────────────────┴────(flap)─────────┘→ escalated
    escalated ─raise_level→ escalated (level n+1) · any unresolved ─acknowledge→ (acked) ─close→ resolved

A transition whose from-state does not hold (the incident was resolved meanwhile, another worker raised the
level first) writes nothing and returns None. Events that change no state (``note``) have a fixed set of
kinds. Nothing else in ``service/`` writes the ``incidents`` or ``timeline`` tables (a test enforces it);
the notifications are delivered by the outbox worker after the commit. Never sends anything itself.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from service.escalation import bundle as bundles
from service.escalation import links, matrix
from service.matching.loader import CompiledRule
from service.model import alerts, incidents
from service.observability import Metrics
from service.records import incidents as incident_rows
from service.records import outbox, schema
from service.records.incidents import IncidentRow
from service.records.sqlite_inline import Conn
from service.records.store import Store

T = schema.incidents

UNRESOLVED = frozenset({"open", "diagnosing", "remediating", "verifying", "mitigated", "escalated"})
#: a human is handed the incident from any state short of resolved but escalated (a flap re-escalates)
ESCALATE_FROM = UNRESOLVED - {"escalated"}

#: Timeline events that change no state.
NoteKind = Literal[
    "diagnosis.finished",
    "decision",
    "verify.passed",
    "action.approved",
    "action.rejected",
    "action.succeeded",
    "action.failed",
    "action.blocked",
    "action.skipped",
    "action.unknown",
]


def _all_channels(channels: Sequence[str]) -> Callable[[str, str], Sequence[str]]:
    return lambda _severity, _rule: channels


@dataclass(frozen=True)
class Facts:
    """What an incident's bundle is built from, at ``now``."""

    incident_id: str
    opened_at: float
    rule: CompiledRule
    target: incidents.TargetRef
    alert: alerts.Alert
    suggested: Sequence[incidents.SuggestedCommand]
    found: Sequence[incidents.Finding]
    reason: str | None
    now: float
    actions: Sequence[incidents.ActionRecord] = ()
    state: incidents.IncidentState = "escalated"


@dataclass(frozen=True)
class Lifecycle:
    store: Store
    channels: Sequence[str]
    base_url: str
    metrics: Metrics | None = None
    #: (severity, rule) → channels; default: every channel that is on
    route: Callable[[str, str], Sequence[str]] | None = None
    #: which alert URLs become links (``REMEDIATOR_LINK_HOSTS``); default: only our own ``base_url`` host
    link_policy: links.Policy | None = None

    def document(self, facts: Facts) -> incidents.Bundle:
        """The bundle of an incident, as stored and sent (pure)."""
        rule, now, state = facts.rule, facts.now, facts.state
        following = matrix.next_level(1, rule.rule.severity, now) if state == "escalated" else None
        return bundles.build(
            incident_id=facts.incident_id,
            rule_name=rule.rule.name,
            runbook=rule.rule.runbook,
            severity=rule.rule.severity,
            mttr_target_s=rule.rule.mttr_target.total_seconds(),
            state=state,
            reason=facts.reason,
            target=facts.target,
            opened_at=facts.opened_at,
            now=now,
            alert_list=[facts.alert],
            suggested=facts.suggested,
            base_url=self.base_url,
            link_policy=self.link_policy or links.policy((), self.base_url),
            findings=facts.found,
            actions=facts.actions,
            checklist=rule.rule.checklist.items(),
            next_level=following[0] if following else None,
            next_at=following[1] if following else None,
        )

    # ---- opening, alerts ------------------------------------------------------------------------------

    async def open(
        self,
        conn: Conn,
        values: dict[str, Any],
        *,
        alert: alerts.Alert,
        target: incidents.TargetRef,
        fingerprint: str,
        starts_at: str,
        payload: str,
        now: float,
    ) -> IncidentRow | None:
        """Open the incident (state ``diagnosing``) with its first alert; None when one with the same
        ``open_key`` is already open (another worker won the race)."""
        created = await incident_rows.create(self.store, conn, values)
        if created is None:
            return None
        incident_id = created.id
        await incident_rows.attach_alert(
            self.store,
            conn,
            incident_id,
            fingerprint=fingerprint,
            starts_at=starts_at,
            payload=payload,
            now=now,
        )
        await self._event(
            conn,
            incident_id,
            now,
            "incident.opened",
            f"{alert.name} matched rule {values['rule']} on {target.key}",
            {"rule": values["rule"], "target": target.model_dump(), "fingerprint": fingerprint},
        )
        if not target.valid:
            await self._event(conn, incident_id, now, "target.invalid", target.error or "invalid target")
        return created

    async def attach(
        self,
        conn: Conn,
        incident_id: str,
        *,
        alert: alerts.Alert,
        fingerprint: str,
        starts_at: str,
        payload: str,
        truncated: int,
        now: float,
    ) -> bool:
        """Attach a firing episode to the open incident; True when it was new to it."""
        new = await incident_rows.attach_alert(
            self.store,
            conn,
            incident_id,
            fingerprint=fingerprint,
            starts_at=starts_at,
            payload=payload,
            now=now,
        )
        if new:
            await self._event(
                conn,
                incident_id,
                now,
                "alert.attached",
                f"{alert.name} fired again (episode {starts_at}); attached to the open incident",
                {"fingerprint": fingerprint, "starts_at": starts_at},
            )
        if truncated:
            await self._event(
                conn,
                incident_id,
                now,
                "group.truncated",
                f"Alertmanager truncated the group: {truncated} alerts not delivered",
            )
        return new

    async def alert_resolved(
        self,
        conn: Conn,
        incident_id: str,
        *,
        alert: alerts.Alert,
        fingerprint: str,
        starts_at: str,
        now: float,
    ) -> int:
        """One episode of the incident resolved; returns how many of its episodes still fire."""
        ends_at = alert.ends_at.isoformat() if alert.ends_at else None
        firing = await incident_rows.resolve_alert(
            conn, incident_id, fingerprint=fingerprint, starts_at=starts_at, ends_at=ends_at
        )
        await self._event(
            conn, incident_id, now, "alert.resolved", f"{alert.name} resolved", {"still_firing": firing}
        )
        return firing

    # ---- automation -----------------------------------------------------------------------------------

    async def note(
        self,
        conn: Conn,
        incident_id: str,
        kind: NoteKind,
        message: str,
        *,
        now: float,
        data: dict[str, Any] | None = None,
    ) -> None:
        """A timeline event that changes no state (diagnosis finished, a decision, an action's result)."""
        await self._event(conn, incident_id, now, kind, message, data)

    async def remediating(self, conn: Conn, incident_id: str, *, now: float) -> IncidentRow | None:
        """A safe action is about to run (from ``diagnosing``)."""
        return await incident_rows.transition(
            conn,
            incident_id,
            from_states={"open", "diagnosing"},
            values={"state": "remediating", "updated_at": now},
        )

    async def verifying(
        self, conn: Conn, incident_id: str, *, message: str, now: float
    ) -> IncidentRow | None:
        """The action succeeded; its verify probe runs now (from ``remediating``)."""
        return await self._move(
            conn,
            incident_id,
            now=now,
            from_states={"remediating"},
            values={"state": "verifying"},
            event=("action.succeeded", message, None),
        )

    async def mitigate(
        self,
        conn: Conn,
        incident_id: str,
        *,
        opened_at: float,
        summary: str,
        now: float,
        document: incidents.Bundle,
        rule: str = "",
    ) -> IncidentRow | None:
        """The fix worked and was verified: state ``mitigated``, time to mitigate, an informational notice."""
        elapsed = now - opened_at
        row = await self._move(
            conn,
            incident_id,
            now=now,
            from_states={"verifying"},
            values={
                "state": "mitigated",
                "mitigated_at": now,
                "next_escalation_at": None,
                **_stored(document),
            },
            event=(
                "incident.mitigated",
                f"{summary} ({elapsed:.0f}s after opening)",
                {"time_to_mitigate_s": round(elapsed, 3)},
            ),
            notify=("mitigated", document),
        )
        if row is not None and self.metrics is not None:
            self.metrics.time_to_mitigate.labels(rule=rule or document.rule).observe(elapsed)
        return row

    # ---- humans ---------------------------------------------------------------------------------------

    async def escalate(
        self,
        conn: Conn,
        incident_id: str,
        *,
        document: incidents.Bundle | None,
        reason: str,
        now: float,
    ) -> IncidentRow | None:
        """Hand the incident to humans with its bundle ``document``: level 1 now, the level-2 timer set."""
        following = matrix.next_level(1, document.severity if document else "", now)
        return await self._move(
            conn,
            incident_id,
            now=now,
            from_states=ESCALATE_FROM,
            values={
                "state": "escalated",
                "reason": reason,
                "escalated_at": now,
                **_stored(document),
                "escalation_level": 1,
                "next_escalation_at": following[1] if following else None,
            },
            event=("incident.escalated", reason, {"level": 1, "channels": list(self._channels(document))}),
            notify=("trigger", document),
        )

    async def reescalate(
        self, conn: Conn, incident: dict[str, Any], *, reason: str, now: float
    ) -> IncidentRow | None:
        """Hand an open incident (e.g. a mitigated one that flaps) back to humans with its stored bundle."""
        document = _changed(
            incident_rows.load_bundle(incident["bundle"]),
            state="escalated",
            reason=reason,
            elapsed_s=round(now - incident["opened_at"], 3),
        )
        return await self.escalate(conn, incident["id"], document=document, reason=reason, now=now)

    async def raise_level(self, conn: Conn, incident: dict[str, Any], *, now: float) -> IncidentRow | None:
        """The next level of the matrix is due and nobody acknowledged: notify it, set the following timer
        (or none). Compare-and-set on the level read, so two workers never skip or repeat a level."""
        level = int(incident["escalation_level"]) + 1
        escalated_at = float(incident["escalated_at"] or incident["opened_at"])
        if matrix.next_level(level - 1, str(incident["severity"]), escalated_at) is None:
            await incident_rows.update(conn, incident["id"], next_escalation_at=None)  # nothing further
            return None
        following = matrix.next_level(level, str(incident["severity"]), escalated_at)
        document = _changed(
            incident_rows.load_bundle(incident["bundle"]),
            escalation_level=level,
            next_escalation_level=following[0] if following else None,
            next_escalation_at=datetime.fromtimestamp(following[1], UTC) if following else None,
            elapsed_s=round(now - incident["opened_at"], 3),
        )
        return await self._move(  # None: another worker raised it meanwhile, or a human took it
            conn,
            incident["id"],
            now=now,
            from_states={"escalated"},
            where=(T.c.escalation_level == level - 1, T.c.acked_at.is_(None), T.c.resolved_at.is_(None)),
            values={
                "escalation_level": level,
                **_stored(document),
                "next_escalation_at": following[1] if following else None,
            },
            event=(
                "incident.escalation_level",
                f"not acknowledged: escalated to level {level}",
                {"level": level},
            ),
            notify=(f"escalate:{level}", document),
        )

    async def acknowledge(
        self, conn: Conn, incident: dict[str, Any], *, by: str, now: float
    ) -> IncidentRow | None:
        """A human has it: stop the escalation timers, tell the channels (PagerDuty acknowledges). None when
        it is resolved or acknowledged already."""
        document = _changed(
            incident_rows.load_bundle(incident["bundle"]), next_escalation_level=None, next_escalation_at=None
        )
        return await self._move(
            conn,
            incident["id"],
            now=now,
            from_states=UNRESOLVED,
            where=(T.c.acked_at.is_(None),),
            values={"acked_at": now, "acked_by": by, "next_escalation_at": None, **_stored(document)},
            event=(
                "incident.acknowledged",
                f"acknowledged by {by}",
                {"by": by, "level": incident["escalation_level"]},
            ),
            notify=("acknowledge", document),
        )

    async def close(self, conn: Conn, incident: dict[str, Any], *, now: float) -> IncidentRow | None:
        """Resolve the incident: MTTR against its target, the resolve notification, timers stopped."""
        incident_id = incident["id"]
        mttr = now - incident["opened_at"]
        within = mttr <= incident["mttr_target_s"]
        document = _changed(
            incident_rows.load_bundle(incident["bundle"]),
            state="resolved",
            elapsed_s=round(mttr, 3),
            next_escalation_level=None,
            next_escalation_at=None,
        )
        row = await self._move(
            conn,
            incident_id,
            now=now,
            from_states=UNRESOLVED,
            values={
                "state": "resolved",
                "resolved_at": now,
                "open_key": None,
                "next_escalation_at": None,
                **_stored(document),
            },
            event=(
                "incident.resolved",
                f"resolved after {mttr:.0f}s ({'within' if within else 'over'} the "
                f"{incident['mttr_target_s']:.0f}s MTTR target)",
                {
                    "mttr_s": round(mttr, 3),
                    "mttr_target_s": incident["mttr_target_s"],
                    "within_target": within,
                },
            ),
            notify=("resolve", document),
        )
        if row is not None and self.metrics is not None:
            self.metrics.time_to_resolve.labels(rule=incident["rule"]).observe(mttr)
            counter = self.metrics.within_target if within else self.metrics.over_target
            counter.labels(rule=incident["rule"]).inc()
        return row

    # ---- internals ------------------------------------------------------------------------------------

    async def _move(
        self,
        conn: Conn,
        incident_id: str,
        *,
        now: float,
        from_states: Collection[str],
        values: dict[str, Any],
        event: tuple[str, str, dict[str, Any] | None],
        notify: tuple[str, incidents.Bundle | None] | None = None,
        where: Sequence[sa.ColumnElement[bool]] = (),
    ) -> IncidentRow | None:
        """Compare-and-set the incident (``updated_at`` = ``now``), then append its timeline event and queue
        the notification it implies; None, writing nothing more, when the from-state did not hold."""
        row = await incident_rows.transition(
            conn, incident_id, from_states=from_states, values={**values, "updated_at": now}, where=where
        )
        if row is None:
            return None
        await self._event(conn, incident_id, now, *event)
        if notify is not None:
            await self._notify(conn, incident_id, notify[0], notify[1], now)
        return row

    def _channels(self, document: incidents.Bundle | None) -> Sequence[str]:
        route = self.route or _all_channels(self.channels)
        return route(document.severity, document.rule) if document else route("", "")

    async def _event(
        self,
        conn: Conn,
        incident_id: str,
        now: float,
        kind: str,
        message: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        await incident_rows.add_event(conn, incident_id, at=now, kind=kind, message=message, data=data)

    async def _notify(
        self, conn: Conn, incident_id: str, event: str, document: incidents.Bundle | None, now: float
    ) -> None:
        """Queue ``event`` with the bundle for every channel of this incident, in the caller's transaction.

        ``resolve`` and ``acknowledge`` also go to every channel that was paged, whatever the routes say now.
        An incident never handed over (no bundle yet) is announced without one.
        """
        payload = {"bundle": document.model_dump(mode="json")} if document is not None else {}
        targets = list(self._channels(document))
        if event in ("resolve", "acknowledge"):
            targets += [c for c in await outbox.triggered_channels(conn, incident_id) if c not in targets]
        for channel in targets:
            await outbox.enqueue(
                self.store,
                conn,
                incident_id=incident_id,
                channel=channel,
                event=event,
                payload=payload,
                now=now,
            )


def _changed(bundle: incidents.Bundle | None, **changes: Any) -> incidents.Bundle | None:
    """The stored bundle with ``changes`` (typed values: datetimes stay datetimes); None stays None."""
    return bundle.model_copy(update=changes) if bundle is not None else None


def _stored(bundle: incidents.Bundle | None) -> dict[str, str]:
    """The ``bundle`` column's new value; nothing to write when the incident has no bundle yet."""
    return {"bundle": incident_rows.dump_bundle(bundle)} if bundle is not None else {}
