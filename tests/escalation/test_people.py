"""Done-when 4: the escalation matrix reaches people. Against local PagerDuty Events v2 and Slack
receivers, the running app pages level 1 at once and levels 2, 3, 4 at 15, 30, 60 min, each on its own
PagerDuty service; level 4 only when an alert of the incident is critical; an ack at level 2 acknowledges
both pages and no level 3 follows; Slack mentions the level's people."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from service import keys
from service.app import create_app
from tests.conftest import TOKEN, eventually, load_fixture
from tests.lifecycle.test_timers import escalated_at, timers_of
from tests.support import saas

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
ALICE = {"Authorization": "Bearer alice-token"}
KEYS = {
    "primary": "PR1MARYK3Y0123456789abcdefABCDEF",
    "secondary": "SEC0NDARYK3Y0123456789abcdefABCD",
    "managers": "MANAGERSK3Y0123456789abcdefABCDE",
    "cto": "CT0K3Y0123456789abcdefABCDEFGHIJ",
}
LEVELS = (
    "1=pagerduty:primary+slack@U0PRIMARY;"
    "2=pagerduty:secondary+slack@U0123ABC,S0456DEF;"
    "3=pagerduty:managers;"
    "4=pagerduty:cto"
)
RULE = """\
# A `high` rule with no automatic action: every incident is handed to humans at once.
name: people-paging
runbook: People Paging
mttr_target: 5m
severity: high
match:
  - alertname="PagingTest"
target:
  kind: Deployment
  namespace: default
  name: "{{ labels.service | default('checkout') }}"
"""


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[saas.PagerDuty, str, saas.Slack, str]]:
    pagerduty, slack = saas.PagerDuty(known_keys=frozenset(KEYS.values())), saas.Slack()
    async with (
        saas.serving(pagerduty.app(), "/v2/enqueue") as pd_url,
        saas.serving(slack.app(), "/hooks") as slack_url,
    ):
        yield pagerduty, pd_url, slack, slack_url


@pytest.fixture
def app_settings(make_settings: Any, rules_dir: Path, receivers: Any) -> Any:
    (rules_dir / "people-paging.yaml").write_text(RULE)
    _pagerduty, pd_url, _slack, slack_url = receivers
    return make_settings(
        pagerduty_url=pd_url,
        pagerduty_routing_keys=",".join(f"{name}={key}" for name, key in KEYS.items()),
        slack_webhook_url=slack_url,
        escalation_levels=LEVELS,
        approver_tokens="alice=alice-token",
        outbox_backoff_s=0.05,
    )


def alert(severity: str | None) -> dict[str, Any]:
    document = copy.deepcopy(load_fixture("am-0.25-firing.json"))
    [firing] = document["alerts"]
    firing["labels"] = {"alertname": "PagingTest", "service": "checkout"}
    if severity is not None:
        firing["labels"]["severity"] = severity
    document["commonLabels"] = dict(firing["labels"])
    return document


async def open_incident(client: Any, severity: str | None) -> dict[str, Any]:
    response = await client.post("/v1/alerts", data=json.dumps(alert(severity)), headers=AUTH)
    assert response.status == 200

    async def escalated() -> list[dict[str, Any]]:
        answer = await client.get("/v1/incidents?state=escalated", headers=AUTH)
        return list((await answer.json())["incidents"])

    [incident] = await eventually(escalated)
    return incident


async def detail(client: Any, incident_id: str) -> dict[str, Any]:
    return dict(await (await client.get(f"/v1/incidents/{incident_id}", headers=AUTH)).json())


async def all_delivered(client: Any, incident_id: str) -> bool:
    notes = (await detail(client, incident_id))["notifications"]
    return bool(notes) and all(n["state"] == "delivered" for n in notes)


async def raise_at(client: Any, incident_id: str, *, now: float) -> int:
    """Run the escalation timers at ``now`` and deliver what they queued (due at ``now``, not at the wall
    clock). Deliveries in flight finish first: at a later ``now`` their leases would look expired."""
    await eventually(lambda: all_delivered(client, incident_id))
    raised = await timers_of(client).run_once(now=now)
    await client.app[keys.OUTBOX].run_once(now=now)
    return raised


def pages(pagerduty: saas.PagerDuty) -> dict[str, list[str]]:
    """Actions each named service received, by service name (services that got nothing left out)."""
    got = {name: pagerduty.actions(key) for name, key in KEYS.items()}
    return {name: actions for name, actions in got.items() if actions}


async def test_levels_1_to_4_page_four_services_at_0_15_30_60_minutes_for_a_critical_alert(
    aiohttp_client: Any, app_settings: Any, receivers: Any
) -> None:
    pagerduty, _url, slack, _slack_url = receivers
    client = await aiohttp_client(create_app(app_settings))
    incident = await open_incident(client, "critical")  # a critical alert on a `high` rule
    incident_id = incident["id"]
    await eventually(lambda: pages(pagerduty) == {"primary": ["trigger"]})
    t0 = await escalated_at(client, incident_id)
    for minutes, service in ((15, "secondary"), (30, "managers"), (60, "cto")):
        assert await raise_at(client, incident_id, now=t0 + minutes * 60 - 30) == 0, f"not before {minutes}"
        assert await raise_at(client, incident_id, now=t0 + minutes * 60 + 1) == 1
        await eventually(lambda service=service: service in pages(pagerduty))
    assert await raise_at(client, incident_id, now=t0 + 600 * 60) == 0, "the matrix ends at level 4"
    assert pages(pagerduty) == {name: ["trigger"] for name in KEYS}  # four pages, four services
    assert {e["dedup_key"] for e in pagerduty.events} == {incident_id}
    assert pagerduty.refused == []

    cto_page = next(e for e in pagerduty.events if e["routing_key"] == KEYS["cto"])
    assert cto_page["payload"]["severity"] == "critical"
    assert cto_page["payload"]["custom_details"]["holders"][:3] == [
        "L1 pagerduty:primary",
        "L1 slack@U0PRIMARY",
        "L2 pagerduty:secondary",
    ], "the CTO is told who already holds it"
    shown = (await detail(client, incident_id))["bundle"]
    assert "L4 pagerduty:cto" in shown["holders"] and shown["escalation_level"] == 4

    await eventually(lambda: all_delivered(client, incident_id))
    first, second = slack.texts()[:2]
    assert "<@U0PRIMARY>" in first and "<@U0123ABC>" not in first
    assert "<@U0123ABC>" in second and "<!subteam^S0456DEF>" in second
    assert slack.refused == []


async def test_a_warning_alert_on_a_high_rule_stops_at_level_3(
    aiohttp_client: Any, app_settings: Any, receivers: Any
) -> None:
    pagerduty, *_ = receivers
    client = await aiohttp_client(create_app(app_settings))
    incident = await open_incident(client, "warning")  # no critical alert in the incident
    t0 = await escalated_at(client, incident["id"])
    raised = [await raise_at(client, incident["id"], now=t0 + m * 60 + 1) for m in (15, 30, 60)]
    assert raised == [1, 1, 0]
    await eventually(lambda: all_delivered(client, incident["id"]))
    assert pages(pagerduty) == {"primary": ["trigger"], "secondary": ["trigger"], "managers": ["trigger"]}
    assert (await detail(client, incident["id"]))["next_escalation_at"] is None


async def test_an_ack_at_level_2_acknowledges_both_pages_and_no_level_3_follows(
    aiohttp_client: Any, app_settings: Any, receivers: Any
) -> None:
    pagerduty, _url, slack, _slack_url = receivers
    client = await aiohttp_client(create_app(app_settings))
    incident = await open_incident(client, "critical")
    incident_id = incident["id"]
    t0 = await escalated_at(client, incident_id)
    assert await raise_at(client, incident_id, now=t0 + 15 * 60 + 1) == 1
    await eventually(lambda: pages(pagerduty) == {"primary": ["trigger"], "secondary": ["trigger"]})

    acked = await client.post(f"/v1/incidents/{incident_id}/ack", headers=ALICE)
    assert acked.status == 200
    both = {"primary": ["trigger", "acknowledge"], "secondary": ["trigger", "acknowledge"]}
    await eventually(lambda: pages(pagerduty) == both)
    assert pagerduty.alerts == {
        (KEYS["primary"], incident_id): "acknowledged",
        (KEYS["secondary"], incident_id): "acknowledged",
    }
    raised = [await raise_at(client, incident_id, now=t0 + m * 60 + 1) for m in (30, 60)]
    assert raised == [0, 0], "no level 3 after an ack"
    await eventually(lambda: all_delivered(client, incident_id))
    assert pages(pagerduty) == both, "managers and CTO never paged"
    assert any("ACKNOWLEDGED" in text for text in slack.texts())
