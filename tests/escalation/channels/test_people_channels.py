"""The channels of the matrix of people: one PagerDuty notifier per named service, each with its own
routing key (never logged or recorded), and Slack messages that mention the level's people."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import ClientSession
from structlog.testing import capture_logs

from service import errors
from service.escalation.channels import registry, slack
from service.records.outbox import Delivery
from tests.escalation.test_render_markdown import sample_bundle
from tests.support import saas

PRIMARY = "PR1MARYK3Y0123456789abcdefABCDEF"
CTO = "CT0K3Y0123456789abcdefABCDEFGHIJ"


def delivery(channel: str, event: str, **payload: Any) -> Delivery:
    bundle = sample_bundle().model_dump(mode="json")
    return Delivery(1, f"d-{channel}-{event}", "inc-1", channel, event, {"bundle": bundle, **payload}, 1)


async def test_each_named_service_gets_its_own_notifier_and_routing_key(make_settings: Any) -> None:
    pagerduty = saas.PagerDuty(known_keys=frozenset({PRIMARY}))  # the CTO's key is unknown to this account
    async with saas.serving(pagerduty.app(), "/v2/enqueue") as url, ClientSession() as session:
        settings = make_settings(pagerduty_routing_keys=f"primary={PRIMARY},cto={CTO}", pagerduty_url=url)
        notifiers = registry.build(settings, session)
        assert sorted(notifiers) == ["log", "pagerduty:cto", "pagerduty:primary"]
        with capture_logs() as logs:
            await notifiers["pagerduty:primary"].send(delivery("pagerduty:primary", "escalate:2"))
            await notifiers["pagerduty:primary"].send(delivery("pagerduty:primary", "acknowledge"))
            with pytest.raises(errors.Permanent) as caught:
                await notifiers["pagerduty:cto"].send(delivery("pagerduty:cto", "trigger"))
    refused = str(caught.value)
    assert pagerduty.actions(PRIMARY) == ["trigger", "acknowledge"]
    assert pagerduty.alerts == {(PRIMARY, "inc-1"): "acknowledged"}
    assert refused.startswith("pagerduty:cto answered 400") and "Invalid routing key" in refused
    assert CTO not in refused and PRIMARY not in repr(logs) and CTO not in repr(logs)


async def test_information_events_are_not_sent_to_a_named_service(make_settings: Any) -> None:
    pagerduty = saas.PagerDuty()
    async with saas.serving(pagerduty.app(), "/v2/enqueue") as url, ClientSession() as session:
        notifier = registry.build(
            make_settings(pagerduty_routing_keys=f"primary={PRIMARY}", pagerduty_url=url), session
        )["pagerduty:primary"]
        with capture_logs() as logs:
            for event in ("announce", "linked"):
                await notifier.send(delivery("pagerduty:primary", event))
    assert pagerduty.events == [] and pagerduty.refused == []
    assert [(e["channel"], e["notification"]) for e in logs if e["event"] == "notify.skipped"] == [
        ("pagerduty:primary", "announce"),
        ("pagerduty:primary", "linked"),
    ]


async def test_a_slack_message_mentions_the_levels_people_and_nothing_else() -> None:
    receiver = saas.Slack()
    async with saas.serving(receiver.app(), "/hooks") as url, ClientSession() as session:
        notifier = slack.SlackNotifier(session, url, interval_s=0.0)
        await notifier.send(
            delivery("slack", "escalate:2", mentions=["U0123ABC", "S0456DEF", "<!channel>", 7])
        )
        await notifier.send(delivery("slack", "resolve"))
    mentioned, resolved = (json.dumps(m) for m in receiver.messages)
    assert "<@U0123ABC>" in mentioned and "<!subteam^S0456DEF>" in mentioned
    assert "<!channel>" not in mentioned  # not an id: dropped, never sent as markup
    assert "<@" not in resolved and "subteam" not in resolved
    assert receiver.refused == []
