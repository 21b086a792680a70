"""The bundle stays typed: stored as JSON, loaded back into ``incidents.Bundle`` by the store
(``records.incidents.load_bundle``), changed by the lifecycle with typed values, sent and rendered as the
model — and its JSON, stored and shown, is what it was."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from service import keys
from service.app import create_app
from service.escalation.channels import base
from service.escalation.render import markdown, pagerduty, report, slack
from service.model import incidents
from service.records import incidents as incident_rows
from service.records import schema
from service.records.outbox import Delivery
from tests.escalation.test_render_markdown import (
    ACTIONS,
    EFFECT,
    HOLDERS,
    NOW,
    OPENED,
    STARTED,
    sample_bundle,
)
from tests.lifecycle.test_timers import ALICE, AUTH, escalated_at, open_incident, timers_of


def test_the_stored_text_round_trips_byte_for_byte() -> None:
    for bundle in (
        sample_bundle(),
        sample_bundle(state="mitigated", reason=None),
        sample_bundle(actions=ACTIONS),
    ):
        text = incident_rows.dump_bundle(bundle)
        assert text == orjson.dumps(bundle.model_dump(mode="json")).decode()  # as every version stored it
        loaded = incident_rows.load_bundle(text)
        assert loaded == bundle
        assert loaded is not None and incident_rows.dump_bundle(loaded) == text
        assert loaded.model_dump_json() == bundle.model_dump_json()
        assert isinstance(loaded.opened_at, datetime)  # typed again, not the JSON's strings
        assert isinstance(loaded.next_escalation_at, datetime) == (bundle.state == "escalated")


def test_no_bundle_or_a_partial_one_loads_as_none() -> None:
    assert incident_rows.load_bundle(None) is None
    assert incident_rows.load_bundle("") is None
    partial = orjson.dumps({"state": "resolved", "elapsed_s": 12.0}).decode()  # stored by an older version
    assert incident_rows.load_bundle(partial) is None


def test_a_sender_reads_the_outbox_bundle_as_the_model() -> None:
    bundle = sample_bundle()
    entry = Delivery(
        1, "d-1", bundle.incident_id, "log", "trigger", {"bundle": bundle.model_dump(mode="json")}, 1
    )
    assert base.bundle_of(entry) == bundle
    assert base.bundle_of(Delivery(1, "d-2", "x", "log", "resolve", {}, 1)) is None


async def stored(client: Any, incident_id: str) -> tuple[str, incidents.Bundle]:
    async with client.app[keys.STORE].read() as conn:
        text = await conn.scalar(
            sa.select(schema.incidents.c.bundle).where(schema.incidents.c.id == incident_id)
        )
    bundle = incident_rows.load_bundle(text)
    assert bundle is not None
    return text, bundle


async def test_a_raised_level_and_an_acknowledgement_change_the_typed_fields(
    aiohttp_client: Any, make_settings: Any
) -> None:
    client = await aiohttp_client(create_app(make_settings(approver_tokens="alice=alice-token")))
    incident = await open_incident(client)  # high-error-rate is critical: level 2 at 15 min, 3 at 30
    text, escalated = await stored(client, incident["id"])
    assert incident_rows.dump_bundle(escalated) == text
    assert (escalated.state, escalated.escalation_level, escalated.next_escalation_level) == (
        "escalated",
        1,
        2,
    )
    t0 = await escalated_at(client, incident["id"])
    assert escalated.next_escalation_at == datetime.fromtimestamp(t0 + 15 * 60, UTC)

    assert await timers_of(client).run_once(now=t0 + 15 * 60 + 1) == 1
    text, raised = await stored(client, incident["id"])
    assert incident_rows.dump_bundle(raised) == text
    assert (raised.escalation_level, raised.next_escalation_level) == (2, 3)
    assert raised.next_escalation_at == datetime.fromtimestamp(t0 + 30 * 60, UTC)
    assert raised.elapsed_s > escalated.elapsed_s
    assert (
        raised.model_copy(
            update={
                "escalation_level": 1,
                "next_escalation_level": 2,
                "next_escalation_at": escalated.next_escalation_at,
                "elapsed_s": escalated.elapsed_s,
            }
        )
        == escalated
    ), "nothing else changed"
    detail = await (await client.get(f"/v1/incidents/{incident['id']}", headers=AUTH)).json()
    assert detail["bundle"] == orjson.loads(text)  # the API shows the stored JSON
    assert detail["bundle"]["next_escalation_at"] == detail["next_escalation_at"]

    response = await client.post(f"/v1/incidents/{incident['id']}/ack", headers=ALICE)
    assert response.status == 200
    text, acked = await stored(client, incident["id"])
    assert (acked.escalation_level, acked.next_escalation_level, acked.next_escalation_at) == (2, None, None)
    assert (
        acked.model_copy(update={"next_escalation_level": 3, "next_escalation_at": raised.next_escalation_at})
        == raised
    )


def test_an_incident_never_handed_over_is_announced_without_a_bundle() -> None:
    assert slack.bare("inc-1", event="resolve")["text"] == "RESOLVED: incident inc-1"
    assert slack.bare("inc-1", event="escalate:2")["text"] == "ESCALATED to level 2: incident inc-1"
    assert pagerduty.bare("inc-1", event="acknowledge", routing_key="k") == {
        "routing_key": "k",
        "event_action": "acknowledge",
        "dedup_key": "inc-1",
    }


def test_the_new_facts_round_trip_and_the_clock_counts_from_the_alert_start() -> None:
    cause = incidents.LinkRef(
        incident_id="01JPBM0ROOT", rule="database-failure", target="StatefulSet/shop/postgresql", state="open"
    )
    bundle = sample_bundle(state="verifying", caused_by=cause, page_due_at=OPENED + 230)
    assert bundle.started_at == datetime.fromtimestamp(STARTED, UTC)
    assert bundle.detected_at == bundle.opened_at == datetime.fromtimestamp(OPENED, UTC)
    assert bundle.elapsed_s == NOW - STARTED  # 320 s from the alert's start, not 250 from detection
    assert bundle.page_due_at == datetime.fromtimestamp(OPENED + 230, UTC)
    assert (bundle.caused_by, bundle.effects, bundle.holders) == (cause, [EFFECT], HOLDERS)
    text = incident_rows.dump_bundle(bundle)
    loaded = incident_rows.load_bundle(text)
    assert loaded == bundle and loaded is not None and incident_rows.dump_bundle(loaded) == text
    assert loaded.checklist[0] == incidents.ChecklistEntry(
        id="service-fully-restored", band="immediate", text="Service fully restored"
    )
    without = sample_bundle(started_at=None)
    assert (without.started_at, without.elapsed_s) == (None, NOW - OPENED)


def test_a_bundle_stored_before_the_bands_shows_its_checklist_in_the_immediate_band() -> None:
    document = sample_bundle().model_dump(mode="json")
    for key in ("started_at", "detected_at", "caused_by", "effects", "holders", "page_due_at"):
        document.pop(key)
    document["checklist"] = ["Post-mortem scheduled", "Find the change that raised the error rate"]
    loaded = incident_rows.load_bundle(orjson.dumps(document).decode())
    assert loaded is not None and loaded.started_at is None and loaded.holders == []
    assert [(e.id, e.band) for e in loaded.checklist] == [
        ("post-mortem-scheduled", "immediate"),
        ("find-the-change-that-raised-the-error-rate", "immediate"),
    ]
    rendered = report.render({"id": loaded.incident_id}, loaded, checklist=[], now=OPENED + 60)
    assert "### Immediate (0-1 hour) — 0 of 2 done\n\n- [ ] Post-mortem scheduled\n" in rendered
    assert "- **Counted from** detection (2026-03-14 09:26:40 UTC)" in rendered
    fields = slack.render(loaded, event="trigger")["blocks"][1]["fields"]
    assert {"type": "mrkdwn", "text": "*Started*\n—", "verbatim": True} in fields


async def test_an_opened_incident_counts_from_its_alerts_start(
    aiohttp_client: Any, make_settings: Any
) -> None:
    client = await aiohttp_client(create_app(make_settings()))
    incident = await open_incident(client)
    _text, bundle = await stored(client, incident["id"])
    starts = [a.starts_at for a in bundle.alerts]
    assert bundle.started_at == min(starts)  # the alert's startsAt, before the service saw it
    assert bundle.detected_at == bundle.opened_at and bundle.started_at < bundle.opened_at
    assert bundle.elapsed_s >= (bundle.opened_at - bundle.started_at).total_seconds()
    shown = markdown.render(bundle)
    assert f"| **Started** | {bundle.started_at.strftime('%Y-%m-%d %H:%M:%S')} UTC |" in shown
    assert "| **MTTR (from the alert's start)** | open for " in shown
    assert bundle.checklist and {e.band for e in bundle.checklist} == {"immediate", "short_term", "long_term"}
