"""Customer communication on the runbooks' clock (issue 16, Done-when 2): reminders 5/15/30 minutes after
the alert's start naming what is due, publishing to a Statuspage stand-in once, the Resolved update proposed
on resolve, and ``REMEDIATOR_STATUSPAGE_AUTO`` publishing Investigating and Resolved without a click."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.app import create_app
from service.escalation.render import slack
from service.model import incidents
from tests.comms import comms_support as s
from tests.support.saas import Statuspage, serving


async def test_reminders_name_the_due_step_at_5_15_30_minutes(
    aiohttp_client: Any, make_settings: Any
) -> None:
    client = await aiohttp_client(create_app(make_settings(approver_tokens="alice=alice-token")))
    incident = await s.escalated(client)
    t0 = await s.started_at(client, incident["id"])
    timers = s.timers(client)
    await timers.run_once(now=t0 + 60)
    await timers.run_once(now=t0 + 3 * 60)
    assert not [e for e in await s.notified(client, incident["id"]) if ":" in e and "escalate" not in e]
    expected = []
    for minute, event in [
        (4, "remind:statuspage"),
        (5, "overdue:statuspage"),
        (14, "remind:email"),
        (15, "overdue:email"),
        (29, "remind:social"),
        (30, "overdue:social"),
    ]:
        await timers.run_once(now=t0 + minute * 60 + 1)
        await timers.run_once(now=t0 + minute * 60 + 2)  # a second tick repeats nothing
        expected.append(event)
        sent = [e for e in await s.notified(client, incident["id"]) if e.startswith(("remind:", "overdue:"))]
        assert sent == expected
    timeline = (await s.detail(client, incident["id"]))["timeline"]
    reminders = [e["message"] for e in timeline if e["kind"] == "comms.reminder"]
    assert len(reminders) == 6
    assert "status page update due at" in reminders[0] and "5 min after the alert's start" in reminders[0]
    assert "email to stakeholders overdue since" in reminders[3]
    assert "social post" in reminders[5] and "by hand" in reminders[5]
    assert all(f"/ui/incidents/{incident['id']}#comms" in m for m in reminders)
    bundle = incidents.Bundle.model_validate((await s.detail(client, incident["id"]))["bundle"])
    assert slack.headline(bundle, "remind:statuspage") == "REMINDER: status page update due in 1 min"
    assert slack.headline(bundle, "overdue:email") == "OVERDUE: email to stakeholders"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "statuspage-key"
    path.write_text("sp-test-key\n")
    return path


async def test_publishing_creates_the_statuspage_incident_once_then_resolves_it(
    aiohttp_client: Any, make_settings: Any, key_file: Path
) -> None:
    page = Statuspage()
    async with serving(page.app(), "/") as url:
        settings = make_settings(
            approver_tokens="alice=alice-token",
            statuspage_url=url,
            statuspage_page_id="page123",
            statuspage_api_key_file=key_file,
            statuspage_component_id="cmp1",
        )
        client = await aiohttp_client(create_app(settings))
        incident = await s.escalated(client)
        t0 = await s.started_at(client, incident["id"])
        await s.timers(client).run_once(now=t0 + 30)
        first = await s.publish(client, incident["id"], "statuspage", "investigating")
        assert first.status == 200, await first.text()
        assert (await first.json())["published_by"] == "alice"
        again = await s.publish(client, incident["id"], "statuspage", "investigating")
        assert again.status == 409
        assert "already published by alice at" in (await again.json())["error"]
        assert [(m, f["status"]) for m, _id, f in page.calls] == [("POST", "investigating")]
        [(_m, page_incident, fields)] = page.calls
        assert fields["components"] == {"cmp1": "major_outage"} and "Investigating" in fields["name"]
        assert "redis" not in (fields["name"] + fields["body"]).lower(), "no internal names"
        await s.timers(client).run_once(now=t0 + 5 * 60 + 1)
        events = await s.notified(client, incident["id"])
        assert "overdue:statuspage" not in events and "remind:statuspage" not in events
        report = await (await client.get(f"/v1/incidents/{incident['id']}/report", headers=s.AUTH)).text()
        assert "Status page updated" in report and "alice" in report
        await s.resolve(client, incident["id"])
        await s.timers(client).run_once(now=t0 + 6 * 60)
        done = await s.publish(client, incident["id"], "statuspage", "resolved")
        assert done.status == 200, await done.text()
        assert [(m, i, f["status"]) for m, i, f in page.calls][1:] == [("PATCH", page_incident, "resolved")]
        assert page.incidents[page_incident]["components"] == {"cmp1": "operational"}
        timeline = (await s.detail(client, incident["id"]))["timeline"]
        assert [e["message"] for e in timeline if e["kind"] == "comms.published"] == [
            "status page update (investigating) published by alice",
            "status page update (resolved) published by alice",
        ]


async def test_auto_publishes_investigating_and_resolved_without_a_click(
    aiohttp_client: Any, make_settings: Any, key_file: Path
) -> None:
    page = Statuspage()
    async with serving(page.app(), "/") as url:
        settings = make_settings(
            statuspage_url=url,
            statuspage_page_id="page123",
            statuspage_api_key_file=key_file,
            statuspage_auto=True,
        )
        client = await aiohttp_client(create_app(settings))
        incident = await s.escalated(client)
        t0 = await s.started_at(client, incident["id"])
        timers = s.timers(client, auto=True)
        await timers.run_once(now=t0 + 30)
        await timers.run_once(now=t0 + 40)
        assert [(m, f["status"]) for m, _i, f in page.calls] == [("POST", "investigating")]
        await s.resolve(client, incident["id"])
        await timers.run_once(now=t0 + 120)
        await timers.run_once(now=t0 + 130)
        assert [(m, f["status"]) for m, _i, f in page.calls] == [
            ("POST", "investigating"),
            ("PATCH", "resolved"),
        ]
        timeline = (await s.detail(client, incident["id"]))["timeline"]
        assert "status page update (resolved) published by auto" in [e["message"] for e in timeline]


async def test_a_refused_key_leaves_the_draft_to_publish_again(
    aiohttp_client: Any, make_settings: Any, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong-key"
    wrong.write_text("not-the-key")
    page = Statuspage()
    async with serving(page.app(), "/") as url:
        settings = make_settings(
            approver_tokens="alice=alice-token",
            statuspage_url=url,
            statuspage_page_id="page123",
            statuspage_api_key_file=wrong,
        )
        client = await aiohttp_client(create_app(settings))
        incident = await s.escalated(client)
        await s.timers(client).run_once(now=await s.started_at(client, incident["id"]) + 30)
        failed = await s.publish(client, incident["id"], "statuspage", "investigating")
        assert failed.status == 502
        assert "refused" in (await failed.json())["error"] and "not-the-key" not in await failed.text()
        assert page.refused == [(401, "Could not authenticate")] and page.calls == []
        wrong.write_text("sp-test-key")
        assert (await s.publish(client, incident["id"], "statuspage", "investigating")).status == 200


async def test_a_drill_never_publishes_and_never_reminds(
    aiohttp_client: Any, make_settings: Any, key_file: Path
) -> None:
    page = Statuspage()
    async with serving(page.app(), "/") as url:
        settings = make_settings(
            approver_tokens="alice=alice-token",
            statuspage_url=url,
            statuspage_page_id="page123",
            statuspage_api_key_file=key_file,
        )
        client = await aiohttp_client(create_app(settings))
        incident = await s.escalated(client)
        t0 = await s.started_at(client, incident["id"])
        await s.timers(client).run_once(now=t0 + 30)
        await s.mark_drill(client, incident["id"])
        refused = await s.publish(client, incident["id"], "statuspage", "investigating")
        assert refused.status == 409 and "drills never publish" in (await refused.json())["error"]
        for minute in (4, 5, 15, 30):
            await s.timers(client).run_once(now=t0 + minute * 60 + 1)
        assert not [
            e for e in await s.notified(client, incident["id"]) if e.startswith(("remind", "overdue"))
        ]
        assert page.calls == []
