"""Maintenance windows: automation paused for one namespace, rule or target until a time — a planned database
upgrade in ``shop`` does not trigger restarts there while everything else stays automated. Stored (a second
service on the same store sees and obeys it), shown on the incidents they block with guard ``paused``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from service.app import create_app
from tests.conftest import TOKEN, eventually, load_fixture
from tests.support.kube_standin import KubeStandin

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ALICE = {"Authorization": "Bearer alice-approves"}


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[tuple[KubeStandin, Path]]:
    async with KubeStandin(rollout_delay=0.1) as standin:
        for namespace in ("shop", "web"):
            standin.add_deployment(
                namespace,
                "checkout",
                replicas=2,
                containers=[{"name": "checkout", "image": "shop/checkout:1"}],
            )
            standin.set_deployment_pods_state(namespace, "checkout", "crashloop")
        yield standin, standin.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")


def settings(make_settings: Any, kubeconfig: Path) -> Any:
    return make_settings(kubeconfig=kubeconfig, approver_tokens="alice=alice-approves", verify_interval_s=0.2)


async def fire(client: Any, namespace: str) -> dict[str, Any]:
    payload = load_fixture("am-0.25-firing.json")  # high-error-rate: restart crashlooping pods
    [entry] = payload["alerts"]
    entry["labels"] = {**entry["labels"], "namespace": namespace}
    entry["fingerprint"] = f"checkout-{namespace}"
    response = await client.post(
        "/v1/alerts", data=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status == 200

    async def settled() -> dict[str, Any] | None:
        page = await (await client.get("/v1/incidents?limit=100", headers=AUTH)).json()
        mine = [i for i in page["incidents"] if i["target"]["namespace"] == namespace]
        if not mine or mine[0]["state"] in ("open", "diagnosing", "remediating", "verifying"):
            return None
        detail: dict[str, Any] = await (
            await client.get(f"/v1/incidents/{mine[0]['id']}", headers=AUTH)
        ).json()
        return detail

    result: dict[str, Any] = await eventually(settled, timeout=30)
    return result


async def test_a_window_on_one_namespace_blocks_it_and_leaves_the_others_automated(
    aiohttp_client: Any, make_settings: Any, kube: tuple[KubeStandin, Path]
) -> None:
    standin, kubeconfig = kube
    client = await aiohttp_client(create_app(settings(make_settings, kubeconfig)))
    opened = await client.post(
        "/v1/pause",
        json={"scope": "namespace:shop", "until": "2h", "reason": "PostgreSQL 16 upgrade"},
        headers=ALICE,
    )
    assert opened.status == 200, await opened.text()
    window = (await opened.json())["window"]
    assert window["scope"] == "namespace:shop" and window["by"] == "alice"
    listed = await (await client.get("/v1/pause", headers=AUTH)).json()
    assert listed["paused"] is False and [w["id"] for w in listed["windows"]] == [window["id"]]

    blocked = await fire(client, "shop")
    [restart] = [a for a in blocked["actions"] if a["action"] == "kube.rollout_restart"]
    assert restart["status"] == "blocked" and restart["guard"] == "paused"
    assert (
        "maintenance window on namespace:shop" in restart["reason"]
        and "PostgreSQL 16 upgrade" in restart["reason"]
    )
    assert blocked["state"] == "escalated"
    automated = await fire(client, "web")
    assert automated["state"] == "mitigated", automated["reason"]
    restarted = {w.path.split("/")[-3] for w in standin.writes() if "restartedAt" in json.dumps(w.body)}
    assert restarted == {"web"}, "only the namespace outside the window was restarted"


async def test_a_window_is_stored_seen_by_another_service_and_can_be_ended(
    aiohttp_client: Any, make_settings: Any, kube: tuple[KubeStandin, Path]
) -> None:
    standin, kubeconfig = kube
    shared = settings(make_settings, kubeconfig)
    first = await aiohttp_client(create_app(shared))
    opened = await first.post(
        "/v1/pause", json={"scope": "target:Deployment/shop/checkout", "until": "30m"}, headers=ALICE
    )
    window = (await opened.json())["window"]
    second = await aiohttp_client(create_app(shared))  # another replica (or a restart) on the same store
    assert [w["id"] for w in (await (await second.get("/v1/pause", headers=AUTH)).json())["windows"]] == [
        window["id"]
    ]
    blocked = await fire(second, "shop")
    assert [a["guard"] for a in blocked["actions"] if a["action"] == "kube.rollout_restart"] == ["paused"]

    ended = await second.post("/v1/resume", json={"window": window["id"]}, headers=ALICE)
    assert ended.status == 200 and (await ended.json())["window"]["ended_by"] == "alice"
    assert (await (await first.get("/v1/pause", headers=AUTH)).json())["windows"] == []
    again = await second.post("/v1/resume", json={"window": window["id"]}, headers=ALICE)
    assert again.status == 404 and (await again.json())["field"] == "window"
    assert not [w for w in standin.writes() if "restartedAt" in json.dumps(w.body)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "cluster:everything", "until": "1h"}, "scope"),
        ({"scope": "namespace:Shop Floor", "until": "1h"}, "scope"),
        ({"scope": "target:Deployment/shop", "until": "1h"}, "scope"),
        ({"scope": "namespace:shop", "until": "2020-01-01T00:00:00Z"}, "until"),
        ({"scope": "namespace:shop", "until": "8d"}, "until"),
        ({"scope": "namespace:shop", "until": "2026-12-06T18:00:00"}, "until"),
        ({"scope": "namespace:shop", "until": "soon"}, "until"),
        ({"scope": "namespace:shop"}, "until"),
        ({"until": "1h"}, "scope"),
        ({"scope": "namespace:shop", "until": "1h", "reason": "x" * 501}, "reason"),
    ],
)
async def test_a_bad_window_is_400_naming_the_field(
    aiohttp_client: Any, make_settings: Any, body: dict[str, Any], field: str
) -> None:
    client = await aiohttp_client(create_app(make_settings(approver_tokens="alice=alice-approves")))
    answer = await client.post("/v1/pause", json=body, headers=ALICE)
    assert answer.status == 400 and (await answer.json())["field"] == field
    assert (await (await client.get("/v1/pause", headers=AUTH)).json())["windows"] == []


async def test_only_approvers_open_windows_and_the_kill_switch_still_works(
    aiohttp_client: Any, make_settings: Any
) -> None:
    client = await aiohttp_client(create_app(make_settings(approver_tokens="alice=alice-approves")))
    body = {"scope": "rule:high-error-rate", "until": "1h"}
    assert (await client.post("/v1/pause", json=body, headers=AUTH)).status == 403
    assert (await client.post("/v1/pause", json=body)).status == 401
    assert (await client.get("/v1/pause")).status == 401
    paused = await client.post("/v1/pause", headers=ALICE)  # no body: every automatic action
    assert paused.status == 200 and (await paused.json())["paused"] is True
    state = await (await client.get("/v1/pause", headers=AUTH)).json()
    assert state["paused"] is True and state["by"] == "alice" and state["since"]
    assert (await client.post("/v1/resume", headers=ALICE)).status == 200
    assert (await (await client.get("/v1/pause", headers=AUTH)).json())["paused"] is False
