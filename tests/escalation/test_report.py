"""The Markdown incident report: golden reports of a mitigated and of an escalated incident, MTTR wording."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from service.escalation.render import report
from service.model import incidents, rules
from service.records.store import iso
from tests.escalation.test_render_markdown import (
    CHECKLIST,
    EFFECT,
    FINDINGS,
    GRAPH,
    HOSTILE,
    HOSTILE_SETTINGS,
    INCIDENT_ID,
    OPENED,
    RESTART_REQUEST,
    RUNBOOK,
    TARGET,
    check_golden,
    sample_bundle,
    without_fences,
)

ALERT_PAYLOAD = {
    "status": "firing",
    "labels": {
        "alertname": "HighErrorRate",
        "namespace": "shop",
        "service": "coordinator",
        "severity": "critical",
    },
    "annotations": {"summary": "coordinator answers 38% of requests with 5xx", "runbook_url": RUNBOOK},
    "startsAt": "2026-03-14T09:25:30Z",
    "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": GRAPH,
    "fingerprint": "6f1c2e9a4b7d3c05",
}
RESTART = {
    "id": "01JPBM3R2B7H0Q5S8V1X4Z6C9E",
    "action": "kube.rollout_restart",
    "safety": "safe",
    "status": "succeeded",
    "guard": None,
    "reason": "restarted deployment/coordinator (generation 12, 3 replicas)",
    "index": 0,
    "dry_run": False,
    "requested_at": iso(OPENED + 7),
    "started_at": iso(OPENED + 7.5),
    "finished_at": iso(OPENED + 8),
    "approver": None,
    "params": {},
    "request": [RESTART_REQUEST],
    "result": {"generation": 12, "restarted_at": "2026-03-14T09:26:48Z", "replicas": 3},
}
OPENED_EVENTS = [
    (
        0,
        "incident.opened",
        "HighErrorRate matched rule high-error-rate on Deployment/shop/coordinator",
        {"rule": "high-error-rate", "target": TARGET.model_dump(), "fingerprint": "6f1c2e9a4b7d3c05"},
    ),
    (
        5,
        "diagnosis.finished",
        "3 probes: 2 failed, 1 ok",
        {"findings": {"pods": "failed", "health": "failed", "db": "ok"}},
    ),
]


def render_report(source: dict[str, Any], *, checklist: Sequence[rules.ChecklistItem], now: float) -> str:
    """The report as the API renders it: the detail, and its bundle (``source["bundle"]``) typed."""
    detail = {k: v for k, v in source.items() if k != "bundle"}
    return report.render(detail, source.get("bundle"), checklist=checklist, now=now)


def event(offset: float, kind: str, message: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"at": iso(OPENED + offset), "kind": kind, "message": message, "data": data or {}}


def detail(**fields: Any) -> dict[str, Any]:
    """An incident detail as ``GET /v1/incidents/{id}`` returns it (``records.incidents.get_incident``)."""
    base: dict[str, Any] = {
        "id": INCIDENT_ID,
        "rule": "high-error-rate",
        "state": "resolved",
        "severity": "critical",
        "runbook": "High HTTP Error Rate",
        "target": TARGET.model_dump(),
        "reason": None,
        "escalation_level": 1,
        "next_escalation_at": None,
        "acked_at": None,
        "acked_by": None,
        "opened_at": iso(OPENED),
        "escalated_at": None,
        "mitigated_at": None,
        "resolved_at": None,
        "mttr_target_s": 300.0,
        "elapsed_s": 0.0,
        "findings": [f.model_dump(mode="json") for f in FINDINGS],
        "actions": [RESTART],
    }
    base.update(fields)
    return base


def alert_episode(resolved_after: float) -> dict[str, Any]:
    return {
        "fingerprint": "6f1c2e9a4b7d3c05",
        "starts_at": "2026-03-14T09:25:30Z",
        "ends_at": iso(OPENED + resolved_after - 5),
        "status": "resolved",
        "alert": ALERT_PAYLOAD,
    }


def mitigated_detail() -> dict[str, Any]:
    """Restarted automatically, verified after 95 s, resolved after 3 min 10 s: within the 5 min target."""
    bundle = sample_bundle(
        state="mitigated",
        reason=None,
        findings=[FINDINGS[0].model_copy(update={"status": "ok", "summary": "3/3 ready, 0 crashlooping"})],
        actions=[],
        now=OPENED + 95,
        effects=[],
        holders=[],  # mitigated before anyone was paged
    ).model_copy(update={"state": "resolved", "elapsed_s": 190.0})
    verified = {**FINDINGS[0].model_dump(mode="json"), "status": "ok", "summary": "3/3 ready, 0 crashlooping"}
    return detail(
        mitigated_at=iso(OPENED + 95),
        resolved_at=iso(OPENED + 190),
        elapsed_s=95.0,
        alerts=[alert_episode(190)],
        findings=[verified],
        timeline=[
            *(event(*e) for e in OPENED_EVENTS),
            event(
                6,
                "decision",
                "crashlooping pods: a restart replaces them; guarded by cooldown and attempts",
                {
                    "steps": [
                        {"action": "kube.rollout_restart", "status": "planned", "guard": None, "reason": None}
                    ]
                },
            ),
            event(
                8,
                "action.succeeded",
                "kube.rollout_restart: restarted deployment/coordinator (generation 12, 3 replicas)",
            ),
            event(95, "verify.passed", "pods: 3/3 ready, 0 crashlooping"),
            event(
                95,
                "incident.mitigated",
                "mitigated by kube.rollout_restart (95s after opening)",
                {"time_to_mitigate_s": 95.0},
            ),
            event(190, "alert.resolved", "HighErrorRate resolved", {"still_firing": 0}),
            event(
                190,
                "incident.resolved",
                "resolved after 190s (within the 300s MTTR target)",
                {"mttr_s": 190.0, "mttr_target_s": 300.0, "within_target": True},
            ),
        ],
        bundle=bundle,
        notifications=[
            {"channel": "log", "event": "mitigated", "state": "delivered", "attempts": 1, "last_error": None},
            {
                "channel": "slack",
                "event": "mitigated",
                "state": "delivered",
                "attempts": 1,
                "last_error": None,
            },
            {"channel": "log", "event": "resolve", "state": "delivered", "attempts": 1, "last_error": None},
            {"channel": "slack", "event": "resolve", "state": "delivered", "attempts": 1, "last_error": None},
        ],
    )


def escalated_detail() -> dict[str, Any]:
    """The restart did not help: escalated, level 2 after 15 min, acked, rolled back by approval, resolved late."""
    reason = "kube.rollout_restart applied but verification failed: 0/3 ready, 3 crashlooping"
    undo = {
        **RESTART,
        "id": "01JPBM3R2C1K4N7Q0T3W6Y9B2D",
        "action": "kube.rollout_undo",
        "safety": "unsafe",
        "index": 1,
        "reason": "rolled deployment/coordinator back from revision 12 to 11",
        "requested_at": iso(OPENED + 7),
        "started_at": iso(OPENED + 1141),
        "finished_at": iso(OPENED + 1146),
        "approver": "alice@example.com",
        "request": [
            {
                "method": "PATCH",
                "path": "/apis/apps/v1/namespaces/shop/deployments/coordinator",
                "body": [{"op": "replace", "path": "/spec/template", "value": {}}],
                "content_type": "application/json-patch+json",
            }
        ],
        "result": {
            "to_revision": 11,
            "from_revision": 12,
            "generation": 14,
            "images": ["shop/coordinator:1.41.2"],
        },
    }
    bundle = sample_bundle(now=OPENED + 98).model_copy(
        update={
            "state": "resolved",
            "elapsed_s": 1420.0,
            "escalation_level": 2,
            "next_escalation_level": None,
            "next_escalation_at": None,
        }
    )
    return detail(
        reason=reason,
        escalation_level=2,
        acked_at=iso(OPENED + 1030),
        acked_by="alice@example.com",
        escalated_at=iso(OPENED + 98),
        resolved_at=iso(OPENED + 1420),
        elapsed_s=1420.0,
        alerts=[alert_episode(1420)],
        actions=[RESTART, undo],
        timeline=[
            *(event(*e) for e in OPENED_EVENTS),
            event(
                6,
                "decision",
                "crashlooping pods: a restart replaces them; a rollback needs a human",
                {
                    "steps": [
                        {
                            "action": "kube.rollout_restart",
                            "status": "planned",
                            "guard": None,
                            "reason": None,
                        },
                        {
                            "action": "kube.rollout_undo",
                            "status": "awaiting_approval",
                            "guard": None,
                            "reason": None,
                        },
                    ]
                },
            ),
            event(
                8,
                "action.succeeded",
                "kube.rollout_restart: restarted deployment/coordinator (generation 12, 3 replicas)",
            ),
            event(98, "incident.escalated", reason, {"level": 1, "channels": ["log", "slack", "pagerduty"]}),
            event(998, "incident.escalation_level", "not acknowledged: escalated to level 2", {"level": 2}),
            event(
                1030,
                "incident.acknowledged",
                "acknowledged by alice@example.com",
                {"by": "alice@example.com", "level": 2},
            ),
            event(
                1140,
                "action.approved",
                "kube.rollout_undo approved by alice@example.com",
                {"action_id": undo["id"], "approver": "alice@example.com"},
            ),
            event(1146, "action.succeeded", "kube.rollout_undo (approved by alice@example.com): succeeded"),
            event(1420, "alert.resolved", "HighErrorRate resolved", {"still_firing": 0}),
            event(
                1420,
                "incident.resolved",
                "resolved after 1420s (over the 300s MTTR target)",
                {"mttr_s": 1420.0, "mttr_target_s": 300.0, "within_target": False},
            ),
        ],
        bundle=bundle,
        notifications=[
            {"channel": "log", "event": "trigger", "state": "delivered", "attempts": 1, "last_error": None},
            {"channel": "slack", "event": "trigger", "state": "delivered", "attempts": 1, "last_error": None},
            {
                "channel": "pagerduty",
                "event": "trigger",
                "state": "delivered",
                "attempts": 2,
                "last_error": "pagerduty answered 503: upstream unavailable",
            },
            {
                "channel": "slack",
                "event": "escalate:2",
                "state": "delivered",
                "attempts": 1,
                "last_error": None,
            },
            {
                "channel": "pagerduty",
                "event": "escalate:2",
                "state": "delivered",
                "attempts": 1,
                "last_error": None,
            },
            {
                "channel": "slack",
                "event": "acknowledge",
                "state": "delivered",
                "attempts": 1,
                "last_error": None,
            },
            {
                "channel": "pagerduty",
                "event": "acknowledge",
                "state": "delivered",
                "attempts": 1,
                "last_error": None,
            },
            {"channel": "slack", "event": "resolve", "state": "delivered", "attempts": 1, "last_error": None},
            {
                "channel": "pagerduty",
                "event": "resolve",
                "state": "failed",
                "attempts": 5,
                "last_error": "pagerduty unreachable: ClientConnectorError",
            },
        ],
    )


def test_golden_report_of_a_mitigated_incident() -> None:
    check_golden(
        "report-mitigated.md", render_report(mitigated_detail(), checklist=CHECKLIST, now=OPENED + 3600)
    )


def test_golden_report_of_an_escalated_incident() -> None:
    check_golden(
        "report-escalated.md", render_report(escalated_detail(), checklist=CHECKLIST, now=OPENED + 3600)
    )


def test_mttr_is_stated_against_the_target() -> None:
    within = render_report(mitigated_detail(), checklist=[], now=OPENED + 3600)
    # counted from the alert's start, 70 s before the service detected it
    assert (
        "- **Counted from** the alert's start (2026-03-14 09:25:30 UTC); **detected** 1 min 10 s later"
        in within
    )
    assert "- **Resolved** in 4 min 20 s — within the 5 min target (40 s to spare)" in within
    assert "- **Mitigated** in 2 min 45 s — within the 5 min target (2 min 15 s to spare)" in within
    over = render_report(escalated_detail() | {"mttr_target_s": 120.0}, checklist=[], now=OPENED + 3600)
    assert "- **Resolved** in 24 min 50 s — over the 2 min target by 22 min 50 s" in over


def test_an_open_incident_counts_the_time_so_far() -> None:
    still_open = escalated_detail() | {"state": "escalated", "resolved_at": None}
    text = render_report(still_open, checklist=[], now=OPENED + 530)
    assert "- **Still open** after 10 min so far — over the 5 min target by 5 min" in text
    assert "Resolved" not in text.split("## Timeline")[0]


def test_the_checklist_falls_back_to_the_bundle_and_is_unticked() -> None:
    text = render_report(mitigated_detail(), checklist=[], now=OPENED + 3600)
    assert "### Short-term (1-24 hours) — 0 of 2 done" in text
    assert "- [ ] Find the change that raised the error rate \\(deploy, config, dependency\\)." in text
    bare = mitigated_detail() | {"bundle": None}
    assert "_The runbook has no post-incident checklist._" in render_report(bare, checklist=[], now=OPENED)


def test_the_report_is_deterministic_and_does_not_change_its_input() -> None:
    source = escalated_detail()
    kept = copy.deepcopy(source)
    first = render_report(source, checklist=CHECKLIST, now=OPENED + 3600)
    assert render_report(source, checklist=CHECKLIST, now=OPENED + 3600) == first
    assert source == kept


def test_an_incident_without_events_or_bundle_still_renders() -> None:
    text = render_report({"id": "x", "opened_at": iso(OPENED)}, checklist=[], now=OPENED + 30)
    assert text.startswith("# Incident report: Incident on \\(no target\\)\n")
    assert "_No events recorded._" in text and "- **Still open** after 30 s so far" in text


@HOSTILE_SETTINGS
@given(messages=st.lists(HOSTILE, min_size=1, max_size=4), approver=HOSTILE)
def test_hostile_timeline_messages_stay_text(messages: list[str], approver: str) -> None:
    source = escalated_detail()
    source["timeline"] = [event(i, m[:50] or "x", m) for i, m in enumerate(messages)]
    source["actions"] = [{**RESTART, "approver": approver, "reason": messages[0]}]
    source["acked_by"] = approver
    items = [rules.ChecklistItem(id=f"i{n}", band="long_term", text=m) for n, m in enumerate(messages)]
    source["timeline"].append(event(99, "checklist.ticked", messages[0], {"item": "i0", "by": approver}))
    prose = without_fences(render_report(source, checklist=items, now=OPENED + 3600))
    assert "<script" not in prose.lower() and "<!channel>" not in prose
    for line in prose.splitlines():
        if line.startswith("| 2026-"):  # a timeline row keeps its four cells
            assert line.replace("\\\\", "").replace("\\|", "").count("|") == 5, line


def test_the_kept_diagnosis_round_gives_the_opening_findings_their_summaries() -> None:
    """A verification round does not hide the diagnosis: with the rounds, the opening table says why."""
    mitigated = mitigated_detail()
    diagnosis = [f.model_dump(mode="json") for f in FINDINGS]
    mitigated["rounds"] = [
        {"round": 1, "phase": "diagnosis", "at": iso(OPENED + 5), "findings": diagnosis},
        {"round": 2, "phase": "verification", "at": iso(OPENED + 95), "findings": mitigated["findings"]},
    ]
    without = render_report(mitigated_detail(), checklist=[], now=OPENED + 3600)
    rendered = render_report(mitigated, checklist=[], now=OPENED + 3600)
    opening = rendered.split("## Findings at opening", 1)[1].split("### Latest check", 1)[0]
    crashlooping = "| FAILED | `pods` | `kube.pods` | 0/3 ready, 3 crashlooping |"
    assert crashlooping in opening and "accepted a connection in 4 ms" in opening
    assert crashlooping not in without, "without the rounds, only the opening statuses are known"
    assert "3/3 ready, 0 crashlooping" in rendered.split("### Latest check", 1)[1]


RUNBOOK_CHECKLIST = rules.DEFAULT_CHECKLIST.items()


def test_ticked_items_show_by_band_with_who_and_when_and_a_count() -> None:
    source = mitigated_detail()
    source["timeline"] += [
        event(
            200,
            "checklist.ticked",
            "checklist item ticked",
            {"item": "service-fully-restored", "by": "alice"},
        ),
        event(
            260, "checklist.ticked", "checklist item ticked", {"item": "root-cause-identified", "by": "bob"}
        ),
        event(
            900, "checklist.ticked", "checklist item ticked", {"item": "service-fully-restored", "by": "eve"}
        ),
        event(86_400 * 3, "checklist.ticked", "ticked", {"item": "post-mortem-completed", "by": "alice"}),
        event(300, "checklist.ticked", "ticked", {"item": "not-on-the-list", "by": "mallory"}),
    ]
    text = render_report(source, checklist=RUNBOOK_CHECKLIST, now=OPENED + 86_400 * 4)
    checklist = text.split("## Post-incident checklist\n\n", 1)[1]
    assert checklist.startswith("### Immediate (0-1 hour) — 1 of 4 done\n\n- [x] Service fully restored")
    assert (
        "- [x] Service fully restored — ticked by alice at 09:30 UTC\n- [ ] Monitoring normal\n" in checklist
    )
    assert "### Short-term (1-24 hours) — 1 of 4 done" in checklist
    assert "- [x] Root cause identified — ticked by bob at 09:31 UTC" in checklist
    assert "### Long-term (1-7 days) — 1 of 4 done" in checklist
    assert "- [x] Post-mortem completed — ticked by alice at 2026-03-17 09:26 UTC" in checklist
    assert checklist.count("- [ ] ") == 9 and "mallory" not in checklist
    timeline = text.split("## Timeline", 1)[1].split("## Findings", 1)[0]
    assert "| `checklist.ticked` | checklist item ticked |" in timeline


def test_the_bundles_ticks_count_when_the_timeline_has_none() -> None:
    source = mitigated_detail()
    bundle = source["bundle"]
    entries = [incidents.ChecklistEntry(id=i.id, band=i.band, text=i.text) for i in RUNBOOK_CHECKLIST]
    entries[1] = entries[1].model_copy(update={"ticked_by": "carol", "ticked_at": OPENED + 400})
    source["bundle"] = bundle.model_copy(update={"checklist": entries})
    text = render_report(source, checklist=[], now=OPENED + 3600)
    assert "- [x] Monitoring normal — ticked by carol at 09:33 UTC" in text
    assert "### Immediate (0-1 hour) — 1 of 4 done" in text


def test_an_alert_that_started_ten_minutes_before_detection_is_over_a_five_minute_target() -> None:
    """Done when 3: the clock starts at the alert, not when the service saw it."""
    source = mitigated_detail() | {"started_at": iso(OPENED - 600), "bundle": None}
    text = render_report(source, checklist=[], now=OPENED + 3600)
    assert "- **Counted from** the alert's start (2026-03-14 09:16:40 UTC); **detected** 10 min later" in text
    assert "- **Mitigated** in 11 min 35 s — over the 5 min target by 6 min 35 s" in text
    assert "| **Alert started** | 2026-03-14 09:16:40 UTC |" in text
    assert "| **Detected** | 2026-03-14 09:26:40 UTC |" in text
    assert "| Time (UTC) | Since alert start | Event | Details |" in text


def test_without_a_known_start_the_clock_counts_from_detection() -> None:
    source = mitigated_detail() | {"bundle": None}
    text = render_report(source, checklist=[], now=OPENED + 3600)
    assert "- **Counted from** detection (2026-03-14 09:26:40 UTC): the alert's start is unknown" in text
    assert "- **Mitigated** in 1 min 35 s — within the 5 min target (3 min 25 s to spare)" in text
    assert "| **Alert started** | — |" in text and "Since opening" in text


def test_linked_incidents_link_to_their_console_pages() -> None:
    source = escalated_detail()
    cause = incidents.LinkRef(
        incident_id="01JPBM0ROOT",
        rule="database-failure",
        target="StatefulSet/shop/postgresql",
        state="resolved",
    )
    source["bundle"] = source["bundle"].model_copy(update={"caused_by": cause})
    text = render_report(source, checklist=[], now=OPENED + 3600)
    base = "https://remediator.example.com/ui/incidents"
    assert (
        f"| **Caused by** | incident [01JPBM0ROOT]({base}/01JPBM0ROOT) "
        "(database-failure on StatefulSet/shop/postgresql, resolved) — paged through it |"
    ) in text
    assert (
        f"| **Linked incidents** | [{EFFECT.incident_id}]({base}/{EFFECT.incident_id}) "
        "(checkout-latency on Deployment/shop/checkout, escalated) |"
    ) in text
    assert "| **Paged** | L1 pagerduty:primary, L1 slack |" in text


def test_a_caused_by_id_of_the_detail_alone_still_shows() -> None:
    source = escalated_detail() | {"caused_by": "01JPBM0ROOT", "bundle": None}
    text = render_report(source, checklist=[], now=OPENED + 3600)
    assert "| **Caused by** | incident 01JPBM0ROOT — paged through it |" in text  # no base URL: no link


def test_the_new_timeline_events_read_as_sentences() -> None:
    """The lifecycle writes each message; an event without one still reads as a sentence from its data."""
    source = escalated_detail()
    source["timeline"] += [
        event(2, "incident.linked", "", {"caused_by": "01JPBM0ROOT", "rule": "database-failure"}),
        event(2, "incident.linked", "", {"effect": "01JPBM0LEAF", "rule": "coordinator-api-outage"}),
        event(
            3,
            "incident.announced",
            "",
            {"action": "kube.scale", "until": iso(OPENED + 300), "page_due_at": iso(OPENED + 230)},
        ),
        event(4, "incident.page_due", "", {"page_due_at": iso(OPENED + 230)}),
        event(1500, "incident.unlinked", "", {"caused_by": "01JPBM0ROOT"}),
        event(1501, "checklist.ticked", "", {"item": "runbooks-updated", "by": "alice"}),
        event(1502, "checklist.ticked", "checklist: 'Runbooks updated' done (short-term), ticked by bob", {}),
    ]
    timeline = render_report(source, checklist=CHECKLIST, now=OPENED + 3600).split("## Timeline", 1)[1]
    assert "linked: caused by incident 01JPBM0ROOT \\(database-failure\\), pages through it |" in timeline
    assert (
        "incident 01JPBM0LEAF \\(coordinator-api-outage\\) linked to this one: this one caused it, and pages"
        " for both |"
    ) in timeline
    assert (
        "automatic remediation in progress: kube.scale, verifying until 09:31 UTC,"
        " Paging at 09:30 UTC unless mitigated |"
    ) in timeline
    assert "| `incident.page_due` | Paging at 09:30 UTC unless mitigated |" in timeline
    assert "no longer paged through incident 01JPBM0ROOT: stands alone |" in timeline
    assert "checklist: “Runbooks updated” ticked by alice |" in timeline
    assert "| checklist: 'Runbooks updated' done \\(short-term\\), ticked by bob |" in timeline  # as written
