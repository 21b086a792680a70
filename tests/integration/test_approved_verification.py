"""An approved action is verified like an automatic one: the approver gets the action's result at once, its
verify probe runs in the background, and a verified fix mitigates the incident (its page is resolved)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from service.app import create_app
from tests.conftest import TOKEN, eventually, load_fixture
from tests.support import kube_clients
from tests.support.kube_standin import KubeStandin

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ALICE = {"Authorization": "Bearer alice-approves"}
NS = "shop"


@pytest.fixture
async def released(tmp_path: Path) -> AsyncIterator[tuple[KubeStandin, Path]]:
    """``checkout`` at revision 2 (a new image), its pods healthy: a release a human may roll back."""
    async with KubeStandin(rollout_delay=0.1) as kube:
        kube.add_deployment(NS, "checkout", replicas=2, image="shop/checkout:1")
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
        await kube_clients.release(kubeconfig, NS, "checkout", "shop/checkout:2")
        await kube.settle()
        yield kube, kubeconfig


async def escalated(client: Any) -> dict[str, Any]:
    payload = load_fixture("am-0.25-firing.json")  # high-error-rate on checkout: no crashloop → a human
    payload["alerts"][0]["labels"]["namespace"] = NS
    response = await client.post(
        "/v1/alerts", data=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status == 200

    async def found() -> list[dict[str, Any]]:
        page = await (await client.get("/v1/incidents?state=escalated", headers=AUTH)).json()
        return list(page["incidents"])

    [incident] = await eventually(found, timeout=20)
    detail: dict[str, Any] = await (await client.get(f"/v1/incidents/{incident['id']}", headers=AUTH)).json()
    return detail


async def test_an_approved_rollback_that_verifies_mitigates_the_incident(
    aiohttp_client: Any, make_settings: Any, released: tuple[KubeStandin, Path]
) -> None:
    kube, kubeconfig = released
    settings = make_settings(
        kubeconfig=kubeconfig, approver_tokens="alice=alice-approves", verify_interval_s=0.2
    )
    client = await aiohttp_client(create_app(settings))
    incident = await escalated(client)
    [proposal] = [a for a in incident["actions"] if a["status"] == "awaiting_approval"]
    assert proposal["action"] == "kube.rollout_undo"

    url = f"/v1/incidents/{incident['id']}/actions/{proposal['id']}/approve"
    answer = await client.post(url, headers=ALICE)
    assert answer.status == 200 and (await answer.json())["status"] == "succeeded"

    async def mitigated() -> dict[str, Any] | None:
        detail: dict[str, Any] = await (
            await client.get(f"/v1/incidents/{incident['id']}", headers=AUTH)
        ).json()
        return detail if detail["state"] == "mitigated" else None

    detail = await eventually(mitigated, timeout=20)
    [event] = [e for e in detail["timeline"] if e["kind"] == "incident.mitigated"]
    assert "mitigated by kube.rollout_undo (approved by alice)" in event["message"]
    assert detail["findings"][0]["id"] == "pods" and detail["findings"][0]["status"] == "ok"
    assert ("log", "mitigated") in {(n["channel"], n["event"]) for n in detail["notifications"]}
    undo = [w for w in kube.writes() if w.method == "PATCH" and "shop/checkout:1" in json.dumps(w.body)]
    assert len(undo) == 1, "the rollback ran once"
