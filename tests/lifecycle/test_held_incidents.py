"""Linked incidents over time, with an injectable clock: an incident whose cause is open is held (no page of its
own); when the cause resolves it gets a grace period — it closes unpaged if its own alert resolves within it, it
stands alone and pages if it still fires after it; an effect more severe than its cause pages at once; an
incident opened outside the link window is not linked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from service import keys
from service.app import create_app
from service.lifecycle.timers import EscalationTimers
from tests.conftest import TOKEN, eventually, load_fixture

AUTH = {"Authorization": f"Bearer {TOKEN}"}

RULES = {
    "cause": """
name: cause
runbook: The cause
runbook_url: https://runbooks.example/cause
mttr_target: 5m
severity: {severity}
match: [alertname="CauseDown"]
target: {{kind: Deployment, namespace: "{{{{ labels.namespace }}}}", name: database}}
""",
    "effect": """
name: effect
runbook: The effect
runbook_url: https://runbooks.example/effect
mttr_target: 5m
severity: warning
depends_on: [cause]
match: [alertname="EffectDown"]
target: {kind: Deployment, namespace: "{{ labels.namespace }}", name: frontend}
""",
}


def rules(tmp_path: Path, *, cause_severity: str = "critical") -> Path:
    folder = tmp_path / "linked-rules"
    folder.mkdir(exist_ok=True)
    (folder / "cause.yaml").write_text(RULES["cause"].format(severity=cause_severity))
    (folder / "effect.yaml").write_text(RULES["effect"])
    return folder


async def send(client: Any, alertname: str, status: str = "firing", severity: str = "warning") -> None:
    payload = load_fixture("am-0.25-firing.json")
    [entry] = payload["alerts"]
    entry["status"] = payload["status"] = status
    entry["labels"] = {"alertname": alertname, "namespace": "shop", "severity": severity}
    entry["fingerprint"] = alertname.lower()
    if status == "resolved":
        entry["endsAt"] = "2026-11-27T10:30:00Z"
    response = await client.post(
        "/v1/alerts", data=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status == 200


async def incident(client: Any, rule: str, state: str = "escalated") -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        page = await (await client.get(f"/v1/incidents?rule={rule}&state={state}", headers=AUTH)).json()
        if not page["incidents"]:
            return None
        detail: dict[str, Any] = await (
            await client.get(f"/v1/incidents/{page['incidents'][0]['id']}", headers=AUTH)
        ).json()
        return detail

    result: dict[str, Any] = await eventually(found)
    return result


def events(detail: dict[str, Any]) -> list[str]:
    return [n["event"] for n in detail["notifications"]]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def timers_of(client: Any, clock: Clock) -> EscalationTimers:
    app = client.app
    return EscalationTimers(
        app[keys.STORE], app[keys.LIFECYCLE], on_notify=app[keys.OUTBOX].wake, clock=clock
    )


async def test_a_held_effect_stands_alone_and_pages_when_it_outlives_its_cause(
    aiohttp_client: Any, make_settings: Any, tmp_path: Path
) -> None:
    clock = Clock()
    client = await aiohttp_client(create_app(make_settings(rules_dir=rules(tmp_path)), clock=clock))
    await send(client, "CauseDown", severity="critical")
    cause = await incident(client, "cause")
    await send(client, "EffectDown")
    effect = await incident(client, "effect")
    assert effect["caused_by"] == cause["id"] and effect["escalation_level"] == 0
    assert events(effect) == ["linked"], "held: the cause's page covers it"
    cause = await incident(client, "cause")
    assert [e["incident_id"] for e in cause["bundle"]["effects"]] == [effect["id"]]

    clock.now += 60
    await send(client, "CauseDown", "resolved")
    await incident(client, "cause", "resolved")
    effect = await incident(client, "effect")
    assert any(e["kind"] == "incident.cause_resolved" for e in effect["timeline"])
    timers = timers_of(client, clock)
    assert await timers.run_once(now=clock.now + 60) == 0, "within the grace period it may still resolve"
    clock.now += 121
    assert await timers.run_once(now=clock.now) == 1
    effect = await incident(client, "effect")
    assert effect["escalation_level"] == 1 and events(effect) == ["linked", "trigger"]
    assert any(e["kind"] == "incident.unlinked" for e in effect["timeline"])
    assert await timers.run_once(now=clock.now + 10) == 0, "it pages once"


async def test_an_effect_that_resolves_within_the_grace_period_never_pages(
    aiohttp_client: Any, make_settings: Any, tmp_path: Path
) -> None:
    clock = Clock()
    client = await aiohttp_client(create_app(make_settings(rules_dir=rules(tmp_path)), clock=clock))
    await send(client, "CauseDown", severity="critical")
    await incident(client, "cause")
    await send(client, "EffectDown")
    effect = await incident(client, "effect")
    await send(client, "CauseDown", "resolved")
    await incident(client, "cause", "resolved")
    clock.now += 30
    await send(client, "EffectDown", "resolved")
    await incident(client, "effect", "resolved")
    assert await timers_of(client, clock).run_once(now=clock.now + 600) == 0
    detail = await (await client.get(f"/v1/incidents/{effect['id']}", headers=AUTH)).json()
    assert "trigger" not in events(detail) and detail["caused_by"] is not None


async def test_an_effect_more_severe_than_its_cause_pages_at_once(
    aiohttp_client: Any, make_settings: Any, tmp_path: Path
) -> None:
    client = await aiohttp_client(
        create_app(make_settings(rules_dir=rules(tmp_path, cause_severity="warning")))
    )
    await send(client, "CauseDown", severity="warning")
    cause = await incident(client, "cause")
    await send(client, "EffectDown", severity="critical")  # the alert is critical, the rule a warning
    effect = await incident(client, "effect")
    assert effect["caused_by"] == cause["id"], "still linked, shown in both bundles"
    assert effect["severity"] == "critical" and effect["escalation_level"] == 1
    assert events(effect) == ["trigger"]


async def test_no_link_outside_the_window(aiohttp_client: Any, make_settings: Any, tmp_path: Path) -> None:
    clock = Clock()
    settings = make_settings(rules_dir=rules(tmp_path), link_window_s=600)
    client = await aiohttp_client(create_app(settings, clock=clock))
    await send(client, "CauseDown", severity="critical")
    await incident(client, "cause")
    clock.now += 601
    await send(client, "EffectDown")
    effect = await incident(client, "effect")
    assert effect["caused_by"] is None and events(effect) == ["trigger"]


async def test_an_open_drill_never_holds_a_real_incident(
    aiohttp_client: Any, make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings(rules_dir=rules(tmp_path), approver_tokens="alice=alice-approves")
    client = await aiohttp_client(create_app(settings))
    drill = {"rule": "cause", "alert": {"labels": {"alertname": "CauseDown", "namespace": "shop"}}}
    answer = await client.post("/v1/drills", json=drill, headers={"Authorization": "Bearer alice-approves"})
    assert answer.status in (201, 202), await answer.text()
    drilled = await incident(client, "cause")
    assert drilled["drill"] is True
    await send(client, "EffectDown")
    effect = await incident(client, "effect")
    assert effect["caused_by"] is None and effect["escalation_level"] == 1, "the drill is no cause"
    assert events(effect) == ["trigger"]
