"""The Slack app channel against the Slack Web API stand-in: one message per incident, posted once and updated
in place through its life (escalated → approved from a button → mitigated once the rollback is verified →
acknowledged → resolved) with thread replies;
and how Slack's answers are translated (ratelimited, invalid_auth, channel_not_found) without the token
ever showing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from structlog.testing import capture_logs

from service import errors
from service.app import create_app
from service.clients.kube import KubeClient
from service.escalation.channels import slack_app
from service.escalation.render import slack as render
from service.model import incidents
from tests.conftest import TOKEN, eventually, load_fixture
from tests.escalation.test_render_markdown import HOSTILE_SETTINGS, hostile_bundles
from tests.escalation.test_render_slack import assert_within_limits
from tests.support.kube_standin import KubeStandin
from tests.support.saas import SlackApi, serving, slack_click

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NS = "default"


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[KubeStandin, Path]]:
    """``checkout`` with healthy pods and a previous revision to roll back to."""
    async with KubeStandin(rollout_delay=0.1) as kube:
        kube.add_deployment(NS, "checkout", replicas=2)
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
        client = await KubeClient.connect(kubeconfig)
        assert client is not None
        image = {
            "spec": {"template": {"spec": {"containers": [{"name": "checkout", "image": "example/app:2"}]}}}
        }
        await client.patch_deployment(NS, "checkout", image, timeout=5)
        await client.close()
        await kube.settle()
        kube.clear_requests()
        yield kube, kubeconfig


@pytest.fixture
async def slack() -> AsyncIterator[tuple[SlackApi, str]]:
    api = SlackApi()
    async with serving(api.app(), "/api") as url:
        yield api, url


def alert(*, resolved: bool = False) -> str:
    payload = load_fixture("am-0.25-resolved.json" if resolved else "am-0.25-firing.json")
    payload["alerts"][0].update(
        labels={"alertname": "HighErrorRate", "service": "checkout", "namespace": NS, "severity": "critical"},
        startsAt="2026-11-27T10:00:00Z",
        fingerprint="checkout-errors",
    )
    return json.dumps(payload)


async def post_alert(client: Any, body: str) -> None:
    answer = await client.post("/v1/alerts", data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status == 200


async def incident_of(client: Any, state: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        listed = (await (await client.get("/v1/incidents", headers=AUTH)).json())["incidents"]
        return listed[0] if listed and listed[0]["state"] == state else None

    incident: dict[str, Any] = await eventually(found, timeout=30)
    detail: dict[str, Any] = await (await client.get(f"/v1/incidents/{incident['id']}", headers=AUTH)).json()
    return detail


def buttons(message: dict[str, Any]) -> list[str]:
    """The labels of the buttons of a message."""
    return [
        element["text"]["text"]
        for block in message.get("blocks") or []
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def header(message: dict[str, Any]) -> str:
    return str(next(b["text"]["text"] for b in message["blocks"] if b["type"] == "header"))


async def test_one_message_per_incident_updated_in_place_through_its_life(
    aiohttp_client: Any, make_settings: Any, cluster: Any, slack: Any
) -> None:
    kube, kubeconfig = cluster
    api, url = slack
    settings = make_settings(
        kubeconfig=kubeconfig,
        verify_interval_s=0.2,
        approver_tokens="carol=carol-approves",
        slack_bot_token=api.token,
        slack_channel="C0INCIDENTS",
        slack_signing_secret=SECRET,
        slack_approvers="U0ALICE=alice",
        slack_api_url=url,
        public_url="https://remediator.example",
    )
    client = await aiohttp_client(create_app(settings))
    await post_alert(client, alert())
    incident = await incident_of(client, "escalated")
    [proposal] = [a for a in incident["actions"] if a["status"] == "awaiting_approval"]
    assert proposal["action"] == "kube.rollout_undo"

    [first] = await eventually(api.posts, timeout=10)
    [ts] = list(api.messages)
    assert first["channel"] == "C0INCIDENTS" and header(first).startswith("ESCALATED")
    assert buttons(first) == [
        "Approve kube.rollout_undo",
        "Reject kube.rollout_undo",
        "Acknowledge",
        "Open in console",
    ]
    [actions] = [b for b in first["blocks"] if b["type"] == "actions"]
    assert actions["elements"][0]["value"] == f"{incident['id']}:{proposal['id']}"
    assert actions["elements"][3]["url"] == f"https://remediator.example/ui/incidents/{incident['id']}"

    body, headers = slack_click(
        SECRET,
        user="U0ALICE",
        action_id=f"approve:{proposal['id']}",
        value=f"{incident['id']}:{proposal['id']}",
    )
    answer = await client.post("/v1/slack/interactions", data=body, headers=headers)
    assert answer.status == 200 and "approved by alice" in (await answer.json())["text"]

    async def undone() -> bool:
        return any(r.method == "PATCH" for r in kube.writes()) and any(
            "succeeded" in text for text in api.replies(ts)
        )

    await eventually(undone, timeout=20)
    # the approved rollback is verified (pods ready): the incident is mitigated, the message says so
    await eventually(lambda: header(api.messages[ts]).startswith("MITIGATED"), timeout=20)
    assert buttons(api.messages[ts]) == ["Acknowledge", "Open in console"], "decided: its buttons are gone"
    assert any("approved by alice" in text for text in api.replies(ts))
    timeline = (await (await client.get(f"/v1/incidents/{incident['id']}", headers=AUTH)).json())["timeline"]
    assert any(e["kind"] == "action.approved" and "alice" in e["message"] for e in timeline)

    body, headers = slack_click(SECRET, user="U0ALICE", action_id="acknowledge", value=incident["id"])
    answer = await client.post("/v1/slack/interactions", data=body, headers=headers)
    assert (await answer.json())["text"] == "acknowledged by alice"
    await eventually(lambda: "Acknowledged by alice" in api.replies(ts), timeout=10)
    assert buttons(api.messages[ts]) == ["Open in console"]
    assert header(api.messages[ts]).startswith("MITIGATED"), "acknowledged, and still mitigated"

    await post_alert(client, alert(resolved=True))
    await eventually(lambda: any(r.startswith("RESOLVED") for r in api.replies(ts)), timeout=20)
    assert header(api.messages[ts]).startswith("RESOLVED")
    assert len(api.posts()) == 1, "one message per incident"
    updates = api.of("chat.update")
    assert len(updates) >= 3 and {u["ts"] for u in updates} == {ts}


async def test_slack_answers_become_retries_or_failures_without_the_token(slack: Any) -> None:
    api, url = slack
    message = {"channel": "C0INCIDENTS", "text": "hello"}
    async with aiohttp.ClientSession() as session:
        good = slack_app.WebApi(session, api.token, url)
        api.ratelimit(1)
        with pytest.raises(errors.Transient) as limited:
            await good.call("chat.postMessage", message)
        assert limited.value.delay == 1.0 and "ratelimited" in str(limited.value)
        with pytest.raises(errors.Permanent, match="channel_not_found"):
            await good.call("chat.postMessage", {**message, "channel": "C0ELSEWHERE"})
        with pytest.raises(errors.Permanent, match="message_not_found"):
            await good.call("chat.update", {**message, "ts": "1.2"})
        wrong = slack_app.WebApi(session, "xoxb-revoked-secret", url)
        with capture_logs() as logs, pytest.raises(errors.Permanent, match="invalid_auth") as refused:
            await wrong.call("chat.postMessage", message)
        assert "xoxb-revoked-secret" not in str(refused.value) + repr(logs)
        answer = await good.call("chat.postMessage", message)
    assert answer["ok"] and answer["ts"] in api.messages


@HOSTILE_SETTINGS
@given(hostile_bundles())
def test_the_app_message_and_its_replies_keep_hostile_data_as_text(document: incidents.Bundle) -> None:
    payload = render.render(document, event="escalate", console_url="https://r.example/ui/incidents/x")
    assert_within_limits(payload)
    dumped = json.dumps(payload, ensure_ascii=False)
    for mention in ("<!channel>", "<!here", "<@U1>", "<@U123", "<http://x|y>", "<javascript:"):
        assert mention not in dumped
    [actions] = [b for b in payload["blocks"] if b["type"] == "actions"]
    assert len(actions["elements"]) <= 25
    assert all(
        e["text"]["type"] == "plain_text" and len(e["text"]["text"]) <= 75 for e in actions["elements"]
    )
    for event in ("escalate:2", "mitigated", "resolve", "announce", "linked", "acknowledge"):
        said = render.reply(document, event, acknowledged_by="<!channel>")
        assert "<" not in said and "\n" not in said.strip()
