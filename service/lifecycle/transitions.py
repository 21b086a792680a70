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

``Lifecycle`` is one object made of parts, each a module of this package over ``core`` (the settings and the
compare-and-set → event → notify step): ``linking`` (caused_by, held, stand alone), ``deadlines`` (announce,
the page deadline, restate), ``levels`` (raise_level, acknowledge) and ``checklist`` (tick).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from service.escalation import bundle as bundles
from service.escalation import links, matrix
from service.lifecycle.checklist import Checklist
from service.lifecycle.comms import Comms
from service.lifecycle.core import ESCALATE_FROM, UNRESOLVED, _changed, _clock, _handed, _stored
from service.lifecycle.deadlines import Deadlines
from service.lifecycle.levels import Levels
from service.lifecycle.linking import Linking
from service.lifecycle.warroom import WarRooms
from service.matching.loader import CompiledRule
from service.model import alerts, incidents, severity
from service.records import dependencies
from service.records import incidents as incident_rows
from service.records.incidents import IncidentRow
from service.records.sqlite_inline import Conn

__all__ = ["ESCALATE_FROM", "UNRESOLVED", "Episode", "Facts", "Lifecycle", "NoteKind"]

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


@dataclass(frozen=True)
class Episode:
    """One firing episode of an alert as the inbox stored it."""

    fingerprint: str
    starts_at: str
    payload: str


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
    started_at: float | None = None  # the earliest startsAt of its alerts (None: count from the opening)
    caused_by: incidents.LinkRef | None = None
    effects: Sequence[incidents.LinkRef] = ()
    holders: Sequence[str] = ()
    page_due_at: float | None = None
    severity: str | None = None  # the incident's (its most severe alert's); None: the rule's


@dataclass(frozen=True)
class Lifecycle(Linking, Deadlines, Levels, Checklist, WarRooms, Comms):
    """The one owner of the incident's life (its settings are ``core.Core``'s)."""

    def document(self, facts: Facts) -> incidents.Bundle:
        """The bundle of an incident, as stored and sent (pure)."""
        rule, now, state = facts.rule, facts.now, facts.state
        level = facts.severity or rule.rule.severity
        following = matrix.next_level(1, level, now, top=self._top) if state == "escalated" else None
        return bundles.build(
            incident_id=facts.incident_id,
            rule_name=rule.rule.name,
            runbook=rule.rule.runbook,
            severity=level,
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
            started_at=facts.started_at,
            runbook_url=rule.rule.runbook_url,
            caused_by=facts.caused_by,
            effects=facts.effects,
            holders=facts.holders,
            page_due_at=facts.page_due_at,
        )

    async def open(
        self,
        conn: Conn,
        values: dict[str, Any],
        *,
        alert: alerts.Alert,
        target: incidents.TargetRef,
        episode: Episode,
        now: float,
        depends_on: Sequence[str] = (),
    ) -> IncidentRow | None:
        """Open the incident (state ``diagnosing``) with its first alert; None when one with the same
        ``open_key`` is already open (another worker won the race). When an incident of a rule it
        ``depends_on`` is open in the same namespace (opened within ``link_window_s``), the new one is
        linked to it (``caused_by``): it pages through that one."""
        created = await incident_rows.create(self.store, conn, values)
        if created is None:
            return None
        incident_id = created.id
        fingerprint = episode.fingerprint
        await incident_rows.attach_alert(
            self.store,
            conn,
            incident_id,
            fingerprint=fingerprint,
            starts_at=episode.starts_at,
            payload=episode.payload,
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
        if depends_on and target.valid:
            causes = await dependencies.open_causes(
                conn, rules=depends_on, namespace=target.namespace, since=now - self.link_window_s
            )
            if causes:
                return await self._link(conn, created, causes[0], target=target, now=now)
        return created

    async def attach(
        self,
        conn: Conn,
        incident: dict[str, Any],
        *,
        alert: alerts.Alert,
        fingerprint: str,
        starts_at: str,
        payload: str,
        truncated: int,
        now: float,
    ) -> bool:
        """Attach a firing episode to the open incident; True when it was new to it. The incident becomes
        as severe as its most severe alert, and its clock starts with its earliest alert."""
        incident_id = incident["id"]
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
            await self._sharpen(conn, incident, alert, now=now)
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

    async def attach_many(
        self, conn: Conn, episodes: Sequence[tuple[str, alerts.Alert, Episode]], *, now: float
    ) -> bool:
        """SQLite: ``attach`` for several new firing episodes (incident id, alert, episode) in two statements,
        each with its ``alert.attached`` event. Only for episodes that ``sharpens`` nothing and of an
        untruncated group; False when one of them was attached already (the caller rolls back and attaches
        them one by one)."""
        rows = [
            {"incident_id": i, "fingerprint": e.fingerprint, "starts_at": e.starts_at, "payload": e.payload}
            for i, _alert, e in episodes
        ]
        if await incident_rows.attach_many(conn, rows, now=now) != len(rows):
            return False
        events = [
            {
                "incident_id": incident_id,
                "at": now,
                "kind": "alert.attached",
                "message": f"{alert.name} fired again (episode {e.starts_at}); attached to the open incident",
                "data": {"fingerprint": e.fingerprint, "starts_at": e.starts_at},
            }
            for incident_id, alert, e in episodes
        ]
        await incident_rows.add_events(conn, events)
        return True

    @staticmethod
    def sharpens(incident: dict[str, Any], alert: alerts.Alert, *, now: float) -> dict[str, Any]:
        """What a new alert changes in its incident (pure): a higher severity, an earlier clock start."""
        rule_severity = incident.get("root_severity") or incident["severity"]
        sharper = severity.highest([incident["severity"], severity.of_alert(alert.labels, rule_severity)])
        start = min(incident_rows.clock_start(incident), alert.starts_at.timestamp(), now)
        changes: dict[str, Any] = {}
        if sharper and sharper != incident["severity"]:
            changes["severity"] = sharper
        if start < incident_rows.clock_start(incident):
            changes["started_at"] = start
        return changes

    async def _sharpen(
        self, conn: Conn, incident: dict[str, Any], alert: alerts.Alert, *, now: float
    ) -> None:
        """A new alert of the incident: raise its severity to the alert's, move its clock's start earlier."""
        changes = self.sharpens(incident, alert, now=now)
        sharper = changes.get("severity")
        if changes:
            await incident_rows.update(conn, incident["id"], **changes)
            if "severity" in changes:
                await self._event(
                    conn,
                    incident["id"],
                    now,
                    "incident.severity",
                    f"{alert.name} is {sharper}: the incident is now {sharper}",
                    {"from": incident["severity"], "to": sharper},
                )

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
        started_at: float,
        summary: str,
        now: float,
        document: incidents.Bundle,
        rule: str = "",
    ) -> IncidentRow | None:
        """The fix worked and was verified: state ``mitigated``, time to mitigate (from the alert's start),
        an informational notice. From ``verifying``, or from ``escalated`` when the page deadline passed
        while it verified (the page is then resolved)."""
        elapsed = now - started_at
        row = await self._move(
            conn,
            incident_id,
            now=now,
            from_states={"verifying", "escalated"},
            values={
                "state": "mitigated",
                "mitigated_at": now,
                "next_escalation_at": None,
                "page_due_at": None,
                **_stored(document),
            },
            event=(
                "incident.mitigated",
                f"{summary} ({elapsed:.0f}s after the alert started)",
                {"time_to_mitigate_s": round(elapsed, 3)},
            ),
            notify=("mitigated", document),
        )
        if row is not None and self.metrics is not None:
            self.metrics.time_to_mitigate.labels(rule=rule or document.rule).observe(elapsed)
        return row

    async def escalate(
        self,
        conn: Conn,
        incident_id: str,
        *,
        document: incidents.Bundle | None,
        reason: str,
        now: float,
    ) -> IncidentRow | None:
        """Hand the incident to humans with its bundle ``document``: level 1 now, the level-2 timer set.

        An incident linked to an open cause no more severe than its cause is held instead: escalated at
        level 0, no page and no timer of its own (the cause's page covers it); the information channels
        hear that it is linked. It stands alone (``stand_alone``) if it outlives its cause."""
        cause = await self._holding_cause(conn, incident_id)
        if cause is not None:
            return await self._hold(conn, incident_id, cause, document=document, reason=reason, now=now)
        following = matrix.next_level(1, document.severity if document else "", now, top=self._top)
        holders = self._holders(1, document)
        document = _changed(document, holders=holders, page_due_at=None)
        return await self._move(
            conn,
            incident_id,
            now=now,
            from_states=ESCALATE_FROM,
            values=_handed(reason, now, document, level=1, next_at=following[1] if following else None),
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

    async def close(self, conn: Conn, incident: dict[str, Any], *, now: float) -> IncidentRow | None:
        """Resolve the incident: MTTR (from the alert's start) against its target, the resolve notification,
        timers stopped. Incidents linked to it that still fire get ``link_grace_s`` to resolve, then they
        stand alone and page."""
        incident_id = incident["id"]
        mttr = now - incident_rows.clock_start(incident)
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
                "page_due_at": None,
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
        if row is not None:
            await self._release_effects(conn, incident, now=now)
        if row is not None and self.metrics is not None:
            self.metrics.time_to_resolve.labels(rule=incident["rule"]).observe(mttr)
            counter = self.metrics.within_target if within else self.metrics.over_target
            counter.labels(rule=incident["rule"]).inc()
        return row

    async def page_due(self, conn: Conn, incident: dict[str, Any], *, now: float) -> IncidentRow | None:
        """The page deadline passed while an automatic action still runs or verifies: page now (level 1);
        verification goes on, and a later success still mitigates and resolves the page."""
        due = float(incident["page_due_at"] or now)
        reason = (
            f"automatic remediation still running at the page deadline ({_clock(due)}: "
            f"{due - incident_rows.clock_start(incident):.0f}s after the alert started); a human is paged"
            " while verification goes on"
        )
        document = _changed(
            incident_rows.load_bundle(incident["bundle"]),
            state="escalated",
            elapsed_s=round(now - incident_rows.clock_start(incident), 3),
        )
        return await self.escalate(conn, incident["id"], document=document, reason=reason, now=now)
