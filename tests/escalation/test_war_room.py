"""The war room against the Slack Web API stand-in: a critical incident gets exactly one Slack channel — two
replicas on one PostgreSQL racing on its notifications, a restart in between — with the configured people
invited, the bundle and the bridge link posted and pinned, each state change posted, the report posted on
resolve and the channel archived once the delay passed (timers driven with ``run_once(now=…)``); a warning
incident and a drill get none; Slack's name rules and errors."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from service import errors, keys
from service.app import create_app
from service.escalation import paging, routes
from service.escalation.channels import slack_app, warroom
from service.lifecycle.timers import EscalationTimers
from service.model import levels
from service.records import outbox, schema, war_rooms
from service.records.store import Store
from service.settings import Settings
from tests.conftest import TOKEN, eventually
from tests.console.console_helpers import page, sign_in
from tests.escalation.test_slack_app import alert, incident_of, post_alert
from tests.support.saas import SlackApi, serving

AUTH = {"Authorization": f"Bearer {TOKEN}"}
CAROL = {"Authorization": "Bearer carol-approves"}
BRIDGE = "https://meet.example.com/inc-{incident_id}"


@pytest.fixture
async def slack() -> AsyncIterator[tuple[SlackApi, str]]:
    api = SlackApi(groups={"S0SRE": ["U0SRE1", "U0SRE2"]})
    async with serving(api.app(), "/api") as url:
        yield api, url


def war_room_settings(make_settings: Any, api: SlackApi, url: str, **more: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": api.token,
        "slack_channel": "C0INCIDENTS",
        "slack_api_url": url,
        "warroom_invite": "S0SRE,U0CTO",
        "warroom_bridge_url": BRIDGE,
        "warroom_archive_after_s": 3600,
        "approver_tokens": "carol=carol-approves",
        "public_url": "https://remediator.example",
        **more,
    }
    settings: Settings = make_settings(**values)
    return settings


def warning_alert() -> str:
    payload = json.loads(alert())
    payload["alerts"][0]["labels"]["severity"] = "warning"
    return json.dumps(payload)


def texts(api: SlackApi, channel: str) -> list[str]:
    return [str(body.get("text")) for body in api.posted_in(channel)]


def timers_of(app: Any) -> EscalationTimers:
    """The app's escalation timers, driven by hand (``run_once(now=…)``)."""
    return EscalationTimers(app[keys.STORE], app[keys.LIFECYCLE], on_notify=app[keys.OUTBOX].wake)


async def test_a_critical_incident_gets_one_war_room_across_replicas_and_a_restart(
    aiohttp_client: Any, make_settings: Any, postgres_url: str, slack: Any
) -> None:
    api, url = slack
    api.delay_s = 0.05  # the replicas' workers overlap while the room opens
    settings = war_room_settings(make_settings, api, url, store_url=postgres_url)
    first = await aiohttp_client(create_app(settings))
    second = await aiohttp_client(create_app(settings))
    await post_alert(first, alert())
    incident = await incident_of(first, "escalated")
    incident_id = incident["id"]

    [room] = await eventually(lambda: [r for r in api.rooms.values() if len(r["pins"]) == 2], timeout=15)
    assert room["name"] == "inc-20261127-1000-high-error-rate"
    assert sorted(room["members"]) == ["U0CTO", "U0SRE1", "U0SRE2"]
    bundle_post, bridge_post = api.posted_in(room["id"])[:2]
    header = next(b for b in bundle_post["blocks"] if b["type"] == "header")
    assert header["text"]["text"].startswith("ESCALATED")
    assert f"https://meet.example.com/inc-{incident_id}" in bridge_post["text"]

    acked = await second.post(f"/v1/incidents/{incident_id}/ack", headers=CAROL)
    assert acked.status == 200
    await eventually(lambda: any("Acknowledged by carol" in t for t in texts(api, room["id"])), timeout=15)

    await first.close()  # a restart: a new instance on the same store carries on
    third = await aiohttp_client(create_app(settings))
    await post_alert(third, alert(resolved=True))
    await eventually(lambda: any(t.startswith("RESOLVED") for t in texts(api, room["id"])), timeout=15)
    report = await eventually(
        lambda: [b for b in api.posted_in(room["id"]) if b.get("blocks", [{}])[0].get("type") == "markdown"],
        timeout=15,
    )
    assert "Incident report" in report[0]["text"] and incident_id in report[0]["blocks"][0]["text"]
    assert [t for t in texts(api, room["id"]) if "state: resolved" in t]

    timers = timers_of(third.app)
    await timers.run_once(now=time.time())  # records the room in the incident
    detail = await (await third.get(f"/v1/incidents/{incident_id}", headers=AUTH)).json()
    assert detail["bundle"]["war_room"]["name"] == room["name"]
    assert detail["bundle"]["war_room"]["url"].endswith(room["id"])
    assert [e for e in detail["timeline"] if e["kind"] == "war_room.opened"]
    written = await (await third.get(f"/v1/incidents/{incident_id}/report", headers=AUTH)).text()
    assert f"War room** | [{room['name']}](https://slack.com/app_redirect?channel={room['id']})" in written
    await sign_in(third, "carol-approves")
    html = await page(third, f"/ui/incidents/{incident_id}")
    assert f">#{room['name']}</a>" in html.split('id="war-room"', 1)[1].split("</dd>", 1)[0]

    await timers.run_once(now=time.time() + 60)
    await asyncio.sleep(0.5)
    assert not room["archived"], "archived before the delay passed"
    later = time.time() + 3601
    await timers.run_once(now=later)
    await third.app[keys.OUTBOX].run_once(now=later)  # the archive is due at the timers' "now"
    assert room["archived"]
    assert len(api.of("conversations.create")) == 1
    assert len(api.of("conversations.archive")) == 1


async def test_a_warning_incident_gets_no_war_room(
    aiohttp_client: Any, make_settings: Any, slack: Any
) -> None:
    api, url = slack
    client = await aiohttp_client(create_app(war_room_settings(make_settings, api, url)))
    await post_alert(client, warning_alert())
    incident = await incident_of(client, "escalated")
    await eventually(api.posts, timeout=10)  # the Slack app heard of it: the notifications went out
    assert incident["severity"] == "warning"
    assert api.of("conversations.create") == [] and api.rooms == {}
    queued = await outbox.for_incident(client.app[keys.STORE], incident["id"])
    assert paging.WARROOM not in {n["channel"] for n in queued}


async def test_war_rooms_off_or_below_the_severity_queue_nothing_for_the_room() -> None:
    table = routes.compile_routes("", configured=["log", "slack_app"])
    on = paging.Paging(levels.Matrix(), table.channels_for, warroom="high")
    assert [n.channel for n in on.notices("trigger", "critical", "r")] == ["log", "slack_app", "warroom"]
    assert [n.channel for n in on.notices("resolve", "high", "r", paged=["warroom"])][-1] == "warroom"
    assert "warroom" not in [n.channel for n in on.notices("trigger", "warning", "r")]
    off = paging.Paging(levels.Matrix(), table.channels_for)
    assert "warroom" not in [n.channel for n in off.notices("trigger", "critical", "r", paged=["warroom"])]
    assert on.holders(1, "critical", "r") == ["L1 slack_app"]  # the room pages nobody


def test_the_room_hears_each_levels_slack_ids_to_invite_them() -> None:
    on = ["log", "slack", "pagerduty"]
    matrix = levels.parse(
        "1=pagerduty:primary+slack@U0PRIMARY;2=pagerduty:secondary+slack@U0LEAD,S0MANAGERS",
        services={"primary", "secondary"},
        on=on,
    )
    plan = paging.Paging(
        matrix, routes.compile_routes("*=pagerduty+slack", configured=on).channels_for, warroom="critical"
    )
    room = {e: plan.notices(e, "critical", "r")[-1] for e in ("trigger", "escalate:2", "acknowledge")}
    assert room["trigger"] == paging.Notice("warroom", ("U0PRIMARY",))
    assert room["escalate:2"] == paging.Notice("warroom", ("U0LEAD", "S0MANAGERS"))
    assert room["acknowledge"] == paging.Notice("warroom")


def test_war_room_settings_are_parsed_strictly(make_settings: Any) -> None:
    settings = make_settings(
        warroom_invite=" U0A1 , S0GRP ", warroom_severity="HIGH", warroom_bridge_url=BRIDGE
    )
    assert settings.warroom_invite == ["U0A1", "S0GRP"] and settings.warroom_severity == "high"
    assert not settings.warroom_on  # no Slack app: no war rooms
    assert make_settings(warroom_severity="off").warroom_severity == ""
    refused = {
        "warroom_invite": "alice",
        "warroom_severity": "urgent",
        "warroom_bridge_url": "javascript:alert(1)//{incident_id}",
    }
    for name, value in refused.items():
        with pytest.raises(errors.ConfigError, match=f"REMEDIATOR_{name.upper()}"):
            make_settings(**{name: value})
    with pytest.raises(errors.ConfigError, match="appears twice"):
        make_settings(warroom_invite="U0A1,U0A1")
    with pytest.raises(errors.ConfigError, match="no placeholder but"):
        make_settings(warroom_bridge_url="https://meet.example.com/{room}")


# -- the channel itself, on a store the app filled (war rooms off there: the test drives the notifiers) --


@pytest.fixture
async def handed(aiohttp_client: Any, make_settings: Any, slack: Any) -> AsyncIterator[tuple[Any, str]]:
    """An app whose critical incident was handed to humans, war rooms off (the test delivers by hand)."""
    api, url = slack
    client = await aiohttp_client(
        create_app(war_room_settings(make_settings, api, url, warroom_severity="off"))
    )
    await post_alert(client, alert())
    incident = await incident_of(client, "escalated")
    yield client, incident["id"]


def notifier(
    session: aiohttp.ClientSession, store: Store, url: str, *, token: str = "xoxb-test-token", **more: Any
) -> warroom.WarRoomNotifier:
    api = slack_app.WebApi(session, token, url)
    return warroom.WarRoomNotifier(api, store, invite=["U0CTO"], bridge=BRIDGE, **more)


def delivery(incident_id: str, event: str, *, row_id: int = 1, **payload: Any) -> outbox.Delivery:
    return outbox.Delivery(row_id, f"d-{row_id}", incident_id, paging.WARROOM, event, payload, 1)


async def test_two_replicas_racing_create_one_channel_and_the_loser_waits(handed: Any, slack: Any) -> None:
    client, incident_id = handed
    api, url = slack
    api.delay_s = 0.05
    store = client.app[keys.STORE]
    async with aiohttp.ClientSession() as one, aiohttp.ClientSession() as two:
        results = await asyncio.gather(
            notifier(one, store, url).send(delivery(incident_id, "trigger")),
            notifier(two, store, url).send(delivery(incident_id, "acknowledge", row_id=2)),
            return_exceptions=True,
        )
        waited = [r for r in results if isinstance(r, errors.Transient)]
        assert len(waited) == 1 and results.count(None) == 1
        assert "another worker" in str(waited[0])
        [room] = api.rooms.values()
        await notifier(two, store, url).send(delivery(incident_id, "acknowledge", row_id=2))  # the retry
    assert len(api.of("conversations.create")) == 1
    assert texts(api, room["id"])[-1].startswith("ACKNOWLEDGED") or "state:" in texts(api, room["id"])[-1]


async def test_a_claim_whose_worker_died_is_taken_over_after_the_lease(handed: Any, slack: Any) -> None:
    client, incident_id = handed
    api, url = slack
    store = client.app[keys.STORE]
    t0 = time.time()
    assert await war_rooms.claim(store, incident_id, name="inc-dead", now=t0, stale_s=warroom.CLAIM_S)
    async with aiohttp.ClientSession() as session:
        soon = notifier(session, store, url, clock=lambda: t0 + 10)
        with pytest.raises(errors.Transient):
            await soon.send(delivery(incident_id, "trigger"))
        assert api.rooms == {}
        later = notifier(session, store, url, clock=lambda: t0 + warroom.CLAIM_S + 1)
        await later.send(delivery(incident_id, "trigger"))
    [room] = api.rooms.values()
    assert room["name"] == "inc-dead" and room["members"] == ["U0CTO"] and len(room["pins"]) == 2

    lifecycle = dataclasses.replace(client.app[keys.LIFECYCLE], warroom_bridge=BRIDGE)
    opened = await war_rooms.get(store, incident_id)
    assert opened is not None
    async with store.write() as conn:
        await lifecycle.war_room_opened(conn, opened, now=time.time())
    detail = await (await client.get(f"/v1/incidents/{incident_id}", headers=AUTH)).json()
    assert detail["bundle"]["war_room"] == {
        "name": "inc-dead",
        "url": f"https://slack.com/app_redirect?channel={room['id']}",
        "bridge_url": f"https://meet.example.com/inc-{incident_id}",
    }


async def test_a_taken_name_gets_a_suffix_and_names_keep_slacks_rules(handed: Any, slack: Any) -> None:
    client, incident_id = handed
    api, url = slack
    api.taken.add("inc-20261127-1000-high-error-rate")
    async with aiohttp.ClientSession() as session:
        await notifier(session, client.app[keys.STORE], url).send(delivery(incident_id, "trigger"))
    [room] = api.rooms.values()
    assert room["name"] == f"inc-20261127-1000-high-error-rate-{incident_id[-6:].lower()}"
    long = warroom.room_name("a" * 63, t0 := 1_764_000_000.0)
    assert len(long) <= 80 and long.startswith("inc-20251124-")
    assert warroom.room_name("Odd Rule!", t0).endswith("-odd-rule")
    assert len(warroom.suffixed(long, "ABC123")) <= 80


async def test_a_rising_level_is_invited_and_each_event_is_one_line(handed: Any, slack: Any) -> None:
    client, incident_id = handed
    api, url = slack
    async with aiohttp.ClientSession() as session:
        worker = notifier(session, client.app[keys.STORE], url)
        await worker.send(delivery(incident_id, "trigger", mentions=["U0PRIMARY"]))
        await worker.send(delivery(incident_id, "escalate:2", row_id=2, mentions=["U0LEAD", "S0SRE"]))
        await worker.send(delivery(incident_id, "remind:statuspage", row_id=3))
    [room] = api.rooms.values()
    assert room["members"] == ["U0CTO", "U0PRIMARY", "U0LEAD", "U0SRE1", "U0SRE2"]
    lines = texts(api, room["id"])[2:]
    assert lines[0].startswith("ESCALATED to level 2 — ") and lines[0].endswith("· state: escalated")
    assert lines[1] == "REMINDER: status page update due in 1 min · state: escalated"


async def test_a_drill_gets_no_war_room(handed: Any, slack: Any) -> None:
    client, incident_id = handed
    api, url = slack
    store = client.app[keys.STORE]
    async with store.write() as conn:
        await conn.execute(
            sa.update(schema.incidents).where(schema.incidents.c.id == incident_id).values(drill=True)
        )
    async with aiohttp.ClientSession() as session:
        await notifier(session, store, url).send(delivery(incident_id, "trigger"))
    assert api.rooms == {} and api.of("conversations.create") == []


async def test_slack_errors_map_and_the_token_never_shows(handed: Any, slack: Any) -> None:
    client, incident_id = handed
    api, url = slack
    store = client.app[keys.STORE]
    async with aiohttp.ClientSession() as session:
        with capture_logs() as logs, pytest.raises(errors.Permanent) as refused:
            await notifier(session, store, url, token="xoxb-wrong-secret").send(
                delivery(incident_id, "trigger")
            )
        assert "invalid_auth" in str(refused.value)
        assert "xoxb-wrong-secret" not in str(refused.value) + repr(logs)
        assert await war_rooms.get(store, incident_id) is None  # the claim is given up: others may try
        worker = notifier(session, store, url)
        api.ratelimit(1)
        with pytest.raises(errors.Transient) as limited:
            await worker.send(delivery(incident_id, "trigger"))
        assert limited.value.delay == 1.0  # Retry-After
        await worker.send(delivery(incident_id, "trigger"))  # the outbox's retry, same worker
    [room] = api.rooms.values()
    assert len(room["pins"]) == 2 and len(api.of("conversations.create")) == 1
