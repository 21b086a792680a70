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
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from service.escalation import bundle as bundles
from service.escalation import links, matrix, paging
from service.matching.loader import CompiledRule
from service.model import alerts, incidents, severity
from service.model.rules import ChecklistItem
from service.observability import Metrics
from service.records import dependencies, outbox, schema
from service.records import incidents as incident_rows
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
class Lifecycle:
    store: Store
    channels: Sequence[str]
    base_url: str
    metrics: Metrics | None = None
    #: (severity, rule) → channels; default: every channel that is on
    route: Callable[[str, str], Sequence[str]] | None = None
    #: which alert URLs become links (``REMEDIATOR_LINK_HOSTS``); default: only our own ``base_url`` host
    link_policy: links.Policy | None = None
    #: who hears each event (``REMEDIATOR_ESCALATION_LEVELS`` met with the routes); None: levels unset,
    #: every level notifies ``route``'s channels
    paging: paging.Paging | None = None
    #: an incident opened this long after an open incident of a rule it depends on is not linked to it
    link_window_s: float = 900.0
    #: a linked incident still firing this long after its cause resolved stands alone and pages
    link_grace_s: float = 120.0
    #: the runbooks' level-1 response time: while an action verifies, the page goes out by alert start + this
    first_response_s: float = 300.0

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

    # ---- opening, alerts ------------------------------------------------------------------------------

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

    async def _link(
        self,
        conn: Conn,
        created: IncidentRow,
        cause: dependencies.Cause,
        *,
        target: incidents.TargetRef,
        now: float,
    ) -> IncidentRow:
        """Link a new incident to the open incident of a rule it depends on, in both timelines; the cause's
        stored bundle lists it among its effects."""
        cause_key = f"{cause.target_kind}/{cause.target_namespace}/{cause.target_name}"
        await incident_rows.update(conn, created.id, caused_by=cause.id)
        await self._event(
            conn,
            created.id,
            now,
            "incident.linked",
            f"caused by {cause.rule} incident {cause.id} on {cause_key} (open since "
            f"{_clock(cause.opened_at)}): automation waits for it, and it pages for both",
            {"caused_by": cause.id, "rule": cause.rule},
        )
        await self._event(
            conn,
            cause.id,
            now,
            "incident.linked",
            f"{created.rule} incident {created.id} on {target.key} is linked to this one (caused by it)",
            {"effect": created.id, "rule": created.rule},
        )
        root = await incident_rows.get_row(conn, cause.id)
        stored = incident_rows.load_bundle(root["bundle"]) if root else None
        if stored is not None:
            effect = incidents.LinkRef(
                incident_id=created.id, rule=created.rule, target=target.key, state=created.state
            )
            await incident_rows.update(
                conn, cause.id, **_stored(_changed(stored, effects=[*stored.effects, effect]))
            )
        return replace(created, caused_by=cause.id)

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

    async def _sharpen(
        self, conn: Conn, incident: dict[str, Any], alert: alerts.Alert, *, now: float
    ) -> None:
        """A new alert of the incident: raise its severity to the alert's, move its clock's start earlier."""
        rule_severity = incident.get("root_severity") or incident["severity"]
        sharper = severity.highest([incident["severity"], severity.of_alert(alert.labels, rule_severity)])
        start = min(incident_rows.clock_start(incident), alert.starts_at.timestamp(), now)
        changes: dict[str, Any] = {}
        if sharper and sharper != incident["severity"]:
            changes["severity"] = sharper
        if start < incident_rows.clock_start(incident):
            changes["started_at"] = start
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
            values={
                "state": "escalated",
                "reason": reason,
                "escalated_at": now,
                **_stored(document),
                "escalation_level": 1,
                "next_escalation_at": following[1] if following else None,
                "page_due_at": None,
            },
            event=("incident.escalated", reason, {"level": 1, "channels": list(self._channels(document))}),
            notify=("trigger", document),
        )

    async def restate(
        self, conn: Conn, incident_id: str, *, document: incidents.Bundle | None, reason: str, now: float
    ) -> IncidentRow | None:
        """An incident already with humans (paged at the deadline while its action verified) learns more —
        the action failed, or its result is unknown: the reason and the stored bundle say so now."""
        return await self._move(
            conn,
            incident_id,
            now=now,
            from_states={"escalated"},
            values={"reason": reason, **_stored(document)},
            event=("incident.updated", reason, None),
        )

    async def _holding_cause(self, conn: Conn, incident_id: str) -> dict[str, Any] | None:
        """The unresolved cause this incident is linked to, when it is at least as severe (it pages)."""
        row = await incident_rows.get_row(conn, incident_id)
        if row is None or not row.get("caused_by"):
            return None
        cause = await incident_rows.get_row(conn, row["caused_by"])
        if cause is None or cause["resolved_at"] is not None:
            return None
        return cause if severity.rank(row["severity"]) <= severity.rank(cause["severity"]) else None

    async def _hold(
        self,
        conn: Conn,
        incident_id: str,
        cause: dict[str, Any],
        *,
        document: incidents.Bundle | None,
        reason: str,
        now: float,
    ) -> IncidentRow | None:
        message = (
            f"{reason} — not paged on its own: linked to {cause['rule']} incident {cause['id']}, which pages"
            " for both; it pages if it outlives that one"
        )
        held = _changed(
            document, reason=message, next_escalation_level=None, next_escalation_at=None, page_due_at=None
        )
        return await self._move(
            conn,
            incident_id,
            now=now,
            from_states=ESCALATE_FROM,
            values={
                "state": "escalated",
                "reason": reason,
                "escalated_at": now,
                **_stored(held),
                "escalation_level": 0,
                "next_escalation_at": None,
                "page_due_at": None,
            },
            event=("incident.escalated", message, {"level": 0, "held_by": cause["id"]}),
            notify=("linked", held),
        )

    @property
    def _top(self) -> int:
        """The last level of the matrix of people (the runbooks' 4 when levels are unset)."""
        return self.paging.top if self.paging else matrix.TOP

    def _holders(self, level: int, document: incidents.Bundle | None) -> list[str]:
        """Who is paged at ``level``: the paging plan's recipients, else the channels of the incident."""
        severity_, rule = (document.severity, document.rule) if document else ("", "")
        plan = self.paging or paging.unset(self.route or _all_channels(self.channels))
        return plan.holders(level, severity_, rule)

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
        """The next level of the matrix is due and nobody acknowledged: page it (with levels set, its own
        recipients; the bundle's ``holders`` say who already has it), set the following timer (or none).
        Compare-and-set on the level read, so two workers never skip or repeat a level. Level 4 only for a
        critical incident (its ``severity`` column); a held incident (level 0) is never raised."""
        level = int(incident["escalation_level"]) + 1
        if level < 2:  # held: linked to a cause that pages for it
            return None
        severity_, top = str(incident["severity"]), self.paging.top if self.paging else matrix.TOP
        escalated_at = float(incident["escalated_at"] or incident["opened_at"])
        if matrix.next_level(level - 1, severity_, escalated_at, top=top) is None:
            await incident_rows.update(conn, incident["id"], next_escalation_at=None)  # nothing further
            return None
        following = matrix.next_level(level, severity_, escalated_at, top=top)
        stored = incident_rows.load_bundle(incident["bundle"])
        document = _changed(
            stored,
            escalation_level=level,
            next_escalation_level=following[0] if following else None,
            next_escalation_at=datetime.fromtimestamp(following[1], UTC) if following else None,
            elapsed_s=round(now - incident_rows.clock_start(incident), 3),
            holders=[*(stored.holders if stored else ()), *self._holders(level, stored)],
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
                {"level": level, "channels": list(self._channels(document, f"escalate:{level}"))},
            ),
            notify=(f"escalate:{level}", document),
        )

    async def acknowledge(
        self, conn: Conn, incident: dict[str, Any], *, by: str, now: float
    ) -> IncidentRow | None:
        """A human has it: stop the escalation timers (and a pending page), tell the channels and every
        recipient paged at any level (each PagerDuty service acknowledges its alert). None when it is
        resolved or acknowledged already."""
        document = _changed(
            incident_rows.load_bundle(incident["bundle"]),
            next_escalation_level=None,
            next_escalation_at=None,
            page_due_at=None,
        )
        return await self._move(
            conn,
            incident["id"],
            now=now,
            from_states=UNRESOLVED,
            where=(T.c.acked_at.is_(None),),
            values={
                "acked_at": now,
                "acked_by": by,
                "next_escalation_at": None,
                "page_due_at": None,
                **_stored(document),
            },
            event=(
                "incident.acknowledged",
                f"acknowledged by {by}",
                {"by": by, "level": incident["escalation_level"]},
            ),
            notify=("acknowledge", document),
        )

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

    async def _release_effects(self, conn: Conn, cause: dict[str, Any], *, now: float) -> None:
        """The cause resolved: every linked incident held under it that still fires is due to stand alone
        after ``link_grace_s`` (its own alerts usually resolve within that; then it closes unpaged)."""
        due = now + self.link_grace_s
        for effect in await incident_rows.effects_of(conn, cause["id"]):
            if effect["resolved_at"] is not None:
                continue
            held = effect["state"] == "escalated" and effect["escalation_level"] == 0
            if held:
                await incident_rows.update(conn, effect["id"], next_escalation_at=due)
            await self._event(
                conn,
                effect["id"],
                now,
                "incident.cause_resolved",
                f"its cause, {cause['rule']} incident {cause['id']}, resolved"
                + (f"; if it still fires at {_clock(due)} it pages on its own" if held else ""),
                {"caused_by": cause["id"], "stands_alone_at": due if held else None},
            )

    async def stand_alone(self, conn: Conn, incident: dict[str, Any], *, now: float) -> IncidentRow | None:
        """A held linked incident outlived its cause: page it now at level 1 (its own escalation starts)."""
        if incident["escalation_level"] != 0:
            return None
        reason = (
            f"still firing after its cause, incident {incident.get('caused_by')}, resolved: it stands alone"
            + (f" — {incident['reason']}" if incident.get("reason") else "")
        )
        stored = incident_rows.load_bundle(incident["bundle"])
        following = matrix.next_level(1, str(incident["severity"]), now, top=self._top)
        document = _changed(
            stored,
            state="escalated",
            reason=reason,
            holders=self._holders(1, stored),
            next_escalation_level=following[0] if following else None,
            next_escalation_at=datetime.fromtimestamp(following[1], UTC) if following else None,
            elapsed_s=round(now - incident_rows.clock_start(incident), 3),
        )
        return await self._move(
            conn,
            incident["id"],
            now=now,
            from_states={"escalated"},
            where=(T.c.escalation_level == 0, T.c.resolved_at.is_(None)),
            values={
                "reason": reason,
                "escalated_at": now,
                "escalation_level": 1,
                "next_escalation_at": following[1] if following else None,
                **_stored(document),
            },
            event=("incident.unlinked", reason, {"level": 1, "caused_by": incident.get("caused_by")}),
            notify=("trigger", document),
        )

    # ---- automatic remediation in progress, the page deadline ------------------------------------------

    def page_deadline(self, started_at: float, mttr_target_s: float) -> float:
        """When a human must have been paged unless mitigated first: min(start + the level-1 response time,
        start + the MTTR target)."""
        return started_at + min(self.first_response_s, mttr_target_s)

    async def announce(
        self,
        conn: Conn,
        incident_id: str,
        *,
        document: incidents.Bundle,
        message: str,
        page_due_at: float,
        now: float,
    ) -> IncidentRow | None:
        """An automatic action starts (state ``remediating``): tell the information channels at once
        (``announce``), and set the page deadline the timers keep while it verifies."""
        announced = _changed(document, reason=message, page_due_at=datetime.fromtimestamp(page_due_at, UTC))
        return await self._move(
            conn,
            incident_id,
            now=now,
            from_states={"remediating"},
            values={"page_due_at": page_due_at, **_stored(announced)},
            event=(
                "incident.announced",
                f"{message}; paged at {_clock(page_due_at)} unless mitigated first",
                {"page_due_at": page_due_at},
            ),
            notify=("announce", announced),
        )

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

    # ---- the post-incident checklist --------------------------------------------------------------------

    async def tick(
        self, conn: Conn, incident: dict[str, Any], item: ChecklistItem, *, by: str, now: float
    ) -> IncidentRow | None:
        """A human ticked a post-incident checklist item (in any state: most are done after resolution).
        None when it was ticked already (the first tick stands)."""
        if item.id in await incident_rows.ticks_of(conn, incident["id"]):
            return None
        stored = incident_rows.load_bundle(incident["bundle"])
        if stored is not None:
            at = datetime.fromtimestamp(now, UTC)
            entries = [
                e.model_copy(update={"ticked_by": by, "ticked_at": at}) if e.id == item.id else e
                for e in stored.checklist
            ]
            stored = _changed(stored, checklist=entries)
        return await self._move(
            conn,
            incident["id"],
            now=now,
            from_states=UNRESOLVED | {"resolved"},
            values=_stored(stored),
            event=(
                "checklist.ticked",
                f"checklist: {item.text!r} done ({item.band.replace('_', '-')}), ticked by {by}",
                {"item": item.id, "band": item.band, "by": by},
            ),
        )

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

    def _channels(self, document: incidents.Bundle | None, event: str = "trigger") -> Sequence[str]:
        """The channel keys that hear ``event`` (level 1's page by default) of this incident."""
        plan = self.paging or paging.unset(self.route or _all_channels(self.channels))
        severity_, rule = (document.severity, document.rule) if document else ("", "")
        return [notice.channel for notice in plan.notices(event, severity_, rule)]

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
        """Queue ``event`` with the bundle for everyone who hears it (``paging``), in the caller's
        transaction; a Slack entry carries the level's ``mentions``.

        ``resolve`` and ``acknowledge`` also go to every channel that was paged (``trigger`` or
        ``escalate:N``), whatever the routes say now, and ``mitigated`` to every PagerDuty service paged.
        An incident never handed over (no bundle yet) is announced without one.
        """
        plan = self.paging or paging.unset(self.route or _all_channels(self.channels))
        severity_, rule = (document.severity, document.rule) if document else ("", "")
        paged = (
            await outbox.triggered_channels(conn, incident_id)
            if event in (*paging.TO_PAGED, "mitigated")
            else []
        )
        carried = {"bundle": document.model_dump(mode="json")} if document is not None else {}
        for notice in plan.notices(event, severity_, rule, paged=paged):
            await outbox.enqueue(
                self.store,
                conn,
                incident_id=incident_id,
                channel=notice.channel,
                event=event,
                payload={**carried, "mentions": list(notice.mentions)} if notice.mentions else carried,
                now=now,
            )


def _clock(at: float) -> str:
    """``12:04:05 UTC`` for timeline messages."""
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S UTC")


def _changed(bundle: incidents.Bundle | None, **changes: Any) -> incidents.Bundle | None:
    """The stored bundle with ``changes`` (typed values: datetimes stay datetimes); None stays None."""
    return bundle.model_copy(update=changes) if bundle is not None else None


def _stored(bundle: incidents.Bundle | None) -> dict[str, str]:
    """The ``bundle`` column's new value; nothing to write when the incident has no bundle yet."""
    return {"bundle": incident_rows.dump_bundle(bundle)} if bundle is not None else {}
