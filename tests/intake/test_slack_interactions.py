"""``POST /v1/slack/interactions`` through the running service, with the Slack Web API stand-in and the
Kubernetes stand-in: forged, replayed and unlisted clicks change nothing; two clicks on one proposal run it
once; Slack hears back within its 3 seconds while the approved action takes longer; off without a secret."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from service.app import create_app
from service.clients.kube import KubeClient
from tests.conftest import TOKEN, eventually, load_fixture
from tests.support.kube_standin import KubeStandin
from tests.support.saas import SlackApi, serving, slack_click

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "0c5fa2d1e7b84f4b9a1d3c6e8f2b4a71"
NS = "default"
URL = "/v1/slack/interactions"


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
async def service(
    aiohttp_client: Any, make_settings: Any, cluster: Any
) -> AsyncIterator[tuple[Any, KubeStandin, SlackApi, dict[str, Any], dict[str, Any]]]:
    """The service with an escalated HighErrorRate incident on ``checkout`` proposing ``kube.rollout_undo``,
    whose Slack message is posted: (client, kube, slack, incident, proposal)."""
    kube, kubeconfig = cluster
    slack = SlackApi()
    async with serving(slack.app(), "/api") as url:
        settings = make_settings(
            kubeconfig=kubeconfig,
            verify_interval_s=0.2,
            slack_bot_token=slack.token,
            slack_channel="C0INCIDENTS",
            slack_signing_secret=SECRET,
            slack_approvers="U0ALICE=alice,U0BOB=bob",
            slack_api_url=url,
        )
        client = await aiohttp_client(create_app(settings))
        payload = load_fixture("am-0.25-firing.json")
        payload["alerts"][0]["labels"] = {
            "alertname": "HighErrorRate",
            "service": "checkout",
            "namespace": NS,
        }
        answer = await client.post(
            "/v1/alerts", data=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"}
        )
        assert answer.status == 200
        await eventually(slack.posts, timeout=30)
        incident = await detail(client, (await listed(client))[0]["id"])
        [proposal] = [a for a in incident["actions"] if a["status"] == "awaiting_approval"]
        assert proposal["action"] == "kube.rollout_undo"
        yield client, kube, slack, incident, proposal


async def listed(client: Any) -> list[dict[str, Any]]:
    return list((await (await client.get("/v1/incidents", headers=AUTH)).json())["incidents"])


async def detail(client: Any, incident_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await (await client.get(f"/v1/incidents/{incident_id}", headers=AUTH)).json()
    return found


def approve(incident: dict[str, Any], proposal: dict[str, Any], **more: Any) -> tuple[bytes, dict[str, str]]:
    return slack_click(
        SECRET, action_id=f"approve:{proposal['id']}", value=f"{incident['id']}:{proposal['id']}", **more
    )


async def unchanged(client: Any, kube: KubeStandin, slack: SlackApi, incident: dict[str, Any]) -> None:
    """Nothing happened: the proposal still waits, nothing was written to the cluster or the timeline,
    the Slack message was not touched."""
    await asyncio.sleep(0.3)  # anything started in the background would have shown by now
    now = await detail(client, incident["id"])
    assert [a["status"] for a in now["actions"] if a["action"] == "kube.rollout_undo"] == [
        "awaiting_approval"
    ]
    assert kube.writes() == []
    assert not any(e["kind"] in ("action.approved", "incident.acknowledged") for e in now["timeline"])
    assert slack.of("chat.update") == []


async def test_forged_replayed_and_unlisted_clicks_change_nothing(service: Any) -> None:
    client, kube, slack, incident, proposal = service
    body, headers = approve(incident, proposal, user="U0ALICE")
    forged = slack_click(
        "not-the-secret",
        user="U0ALICE",
        action_id=f"approve:{proposal['id']}",
        value=f"{incident['id']}:{proposal['id']}",
    )
    assert (await client.post(URL, data=forged[0], headers=forged[1])).status == 401
    tampered = body.replace(b"U0ALICE", b"U0BOB")
    assert (await client.post(URL, data=tampered, headers=headers)).status == 401, (
        "body changed after signing"
    )
    assert (await client.post(URL, data=body)).status == 401, "no signature"

    stale = approve(incident, proposal, user="U0ALICE", timestamp=int(time.time()) - 301)
    refused = await client.post(URL, data=stale[0], headers=stale[1])
    assert refused.status == 401 and "stale" in (await refused.json())["error"]

    for action_id, value in (
        (f"approve:{proposal['id']}", f"{incident['id']}:{proposal['id']}"),
        ("acknowledge", incident["id"]),
    ):
        mallory = slack_click(SECRET, user="U0MALLORY", action_id=action_id, value=value)
        answer = await client.post(URL, data=mallory[0], headers=mallory[1])
        assert answer.status == 200
        assert "not an approver" in (await answer.json())["text"]
    await unchanged(client, kube, slack, incident)
    told = await eventually(lambda: slack.of("chat.postEphemeral"), timeout=5)
    assert told[0]["user"] == "U0MALLORY" and "not an approver" in told[0]["text"]


async def test_two_clicks_on_one_proposal_run_it_once(service: Any) -> None:
    client, kube, _slack, incident, proposal = service
    alice = approve(incident, proposal, user="U0ALICE")
    bob = approve(incident, proposal, user="U0BOB")
    answers = await asyncio.gather(
        client.post(URL, data=alice[0], headers=alice[1]), client.post(URL, data=bob[0], headers=bob[1])
    )
    texts = sorted([(await a.json())["text"] for a in answers])
    assert [a.status for a in answers] == [200, 200]
    winner = "alice" if any("approved by alice; running" in t for t in texts) else "bob"
    assert any(f"already approved by {winner}" in t for t in texts), texts

    async def done() -> dict[str, Any] | None:
        now = await detail(client, incident["id"])
        [undo] = [a for a in now["actions"] if a["action"] == "kube.rollout_undo"]
        return now if undo["status"] == "succeeded" else None

    now = await eventually(done, timeout=20)
    await asyncio.sleep(0.3)
    assert [r.method for r in kube.writes()] == ["PATCH"], "the rollback ran once"
    assert [e["kind"] for e in now["timeline"]].count("action.approved") == 1
    again = await client.post(URL, data=alice[0], headers=alice[1])  # a replay within the window
    assert f"is already succeeded by {winner}" in (await again.json())["text"]
    assert [r.method for r in kube.writes()] == ["PATCH"]


async def test_slack_hears_back_within_3_s_while_the_action_takes_longer(service: Any) -> None:
    client, kube, slack, incident, proposal = service
    kube.delay(r"/deployments/checkout$", 4.0, method="PATCH")  # the rollback's write takes 4 s
    body, headers = approve(incident, proposal, user="U0ALICE")
    started = time.monotonic()
    answer = await client.post(URL, data=body, headers=headers)
    took = time.monotonic() - started
    assert answer.status == 200 and took < 3.0, took
    assert "approved by alice" in (await answer.json())["text"]
    [ts] = list(slack.messages)
    await eventually(lambda: any("succeeded" in r for r in slack.replies(ts)), timeout=20)
    assert time.monotonic() - started >= 4.0, "the message was updated when the action finished"
    actions = (await detail(client, incident["id"]))["actions"]
    assert [a["status"] for a in actions if a["action"] == "kube.rollout_undo"] == ["succeeded"]


async def test_off_without_a_signing_secret(aiohttp_client: Any, make_settings: Any) -> None:
    client = await aiohttp_client(create_app(make_settings()))
    body, headers = slack_click(SECRET, user="U0ALICE", action_id="acknowledge", value="abc")
    answer = await client.post(URL, data=body, headers=headers)
    assert answer.status == 404
