"""Remediation end to end in the service: a crashlooping Deployment on the Kubernetes stand-in is restarted
once, verified and mitigated; re-sends never restart more than the guards allow; dry-run writes nothing;
hostile labels never reach the API; a proposed unsafe action runs only when an approver says so."""

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
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"

RULE = """\
name: coordinator-api-outage
runbook: Coordinator API Outage
mttr_target: 2m
severity: critical
match:
  - alertname="CoordinatorDown"
target:
  kind: Deployment
  namespace: "{{ labels.namespace | default('default') }}"
  name: coordinator
diagnose:
  - {id: pods, probe: kube.pods}
remediate:
  - action: kube.rollout_restart
    safety: safe
    when: findings.pods.facts.crashlooping > 0
    cooldown: COOLDOWN
    max_attempts: {count: 2, per: 1h}
    verify: {probe: pods, within: 10s}
  - action: kube.delete_pods
    safety: unsafe
    reason: deleting pods by force skips graceful shutdown; a human decides
suggest:
  - kubectl -n {{ target.namespace }} rollout restart deployment/{{ target.name }}
"""


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[KubeStandin, Path]]:
    async with KubeStandin(rollout_delay=0.3) as kube:
        kube.add_deployment("shop", "coordinator", replicas=3)
        kube.set_deployment_pods_state("shop", "coordinator", "crashloop")
        kube.clear_requests()
        yield kube, kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")


def write_rule(rules_dir: Path, *, cooldown: str = "10m") -> None:
    (rules_dir / "coordinator-api-outage.yaml").write_text(RULE.replace("COOLDOWN", cooldown))


def alert(
    *,
    starts_at: str = "2026-11-27T10:00:00Z",
    namespace: str = "shop",
    resolved: bool = False,
    fingerprint: str = "coord",
) -> str:
    payload = load_fixture("am-0.25-resolved.json" if resolved else "am-0.25-firing.json")
    payload["alerts"][0].update(
        labels={"alertname": "CoordinatorDown", "namespace": namespace},
        startsAt=starts_at,
        fingerprint=fingerprint,
    )
    return json.dumps(payload)


async def post(client: Any, body: str) -> None:
    response = await client.post(
        "/v1/alerts", data=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status == 200


async def settled(client: Any) -> list[dict[str, Any]]:
    async def idle() -> bool:
        return "remediator_inbox_backlog 0.0" in await (await client.get("/metrics")).text()

    await eventually(idle, timeout=30)
    return list((await (await client.get("/v1/incidents", headers=AUTH)).json())["incidents"])


async def detail(client: Any, incident_id: str) -> dict[str, Any]:
    result: dict[str, Any] = await (await client.get(f"/v1/incidents/{incident_id}", headers=AUTH)).json()
    return result


def restarts(kube: KubeStandin) -> list[Any]:
    return [r for r in kube.writes() if r.method == "PATCH" and RESTARTED_AT in json.dumps(r.body)]


def app_for(make_settings: Any, kubeconfig: Path, **overrides: Any) -> Any:
    return create_app(
        make_settings(
            kubeconfig=kubeconfig, verify_interval_s=0.2, approver_tokens="alice=alice-approves", **overrides
        )
    )


async def test_crashloop_is_restarted_once_verified_and_mitigated(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any
) -> None:
    kube, kubeconfig = cluster
    write_rule(rules_dir)
    client = await aiohttp_client(app_for(make_settings, kubeconfig))
    await post(client, alert())
    [incident] = await settled(client)
    assert incident["state"] == "mitigated" and incident["mitigated_at"] is not None
    [patch] = restarts(kube)
    assert patch.content_type == "application/strategic-merge-patch+json"
    assert patch.path == "/apis/apps/v1/namespaces/shop/deployments/coordinator"
    full = await detail(client, incident["id"])
    kinds = [e["kind"] for e in full["timeline"]]
    for earlier, later in zip(
        [
            "incident.opened",
            "diagnosis.finished",
            "decision",
            "action.succeeded",
            "verify.passed",
            "incident.mitigated",
        ],
        ["diagnosis.finished", "decision", "action.succeeded", "verify.passed", "incident.mitigated", None],
    ):
        assert earlier in kinds and (later is None or kinds.index(earlier) < kinds.index(later)), kinds
    [action] = [a for a in full["actions"] if a["action"] == "kube.rollout_restart"]
    assert action["status"] == "succeeded" and action["request"][0]["method"] == "PATCH"
    assert full["findings"][0]["status"] == "ok", "the verify probe's finding is the latest"


async def test_a_verified_restart_keeps_the_diagnosis_that_caused_it(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any
) -> None:
    """The verification round does not hide why the action ran: both rounds are in the detail, in order,
    and the action record names the diagnosis round it acted on."""
    _kube, kubeconfig = cluster
    write_rule(rules_dir)
    client = await aiohttp_client(app_for(make_settings, kubeconfig))
    await post(client, alert())
    [incident] = await settled(client)
    assert incident["state"] == "mitigated"
    full = await detail(client, incident["id"])
    diagnosis, verification = full["rounds"]
    assert (diagnosis["round"], diagnosis["phase"]) == (1, "diagnosis")
    [pods] = diagnosis["findings"]
    assert (pods["id"], pods["status"], pods["facts"]["crashlooping"]) == ("pods", "failed", 3)
    assert (verification["round"], verification["phase"]) == (2, "verification")
    assert verification["findings"][0]["status"] == "ok"
    assert diagnosis["at"] <= verification["at"]
    assert full["findings"] == verification["findings"], "findings stay those of the latest round"
    [action] = [a for a in full["actions"] if a["action"] == "kube.rollout_restart"]
    assert action["status"] == "succeeded" and action["round"] == diagnosis["round"]


@pytest.mark.parametrize(
    ("cooldown", "expected_restarts", "guard"), [("10m", 1, "cooldown"), ("0s", 2, "max_attempts")]
)
async def test_twenty_resends_restart_at_most_what_the_guards_allow(
    aiohttp_client: Any,
    make_settings: Any,
    rules_dir: Path,
    cluster: Any,
    cooldown: str,
    expected_restarts: int,
    guard: str,
) -> None:
    kube, kubeconfig = cluster
    write_rule(rules_dir, cooldown=cooldown)
    client = await aiohttp_client(app_for(make_settings, kubeconfig, flap_window_s=0))
    sends = 0
    for episode in range(5):
        starts = f"2026-11-27T1{episode}:00:00Z"
        for _ in range(3):  # duplicates, as a second Alertmanager or a repeat_interval would send them
            await post(client, alert(starts_at=starts))
            sends += 1
        await settled(client)
        kube.set_deployment_pods_state("shop", "coordinator", "crashloop")  # it breaks again
        await post(client, alert(starts_at=starts, resolved=True))
        sends += 1
    assert sends == 20
    incidents = await settled(client)
    assert len(restarts(kube)) == expected_restarts
    # the episodes the guard stopped; those restarted may carry another reason (their alert started days
    # ago, so the page deadline passes while they verify on a slow machine)
    blocked = [i for i in incidents if "blocked" in (i["reason"] or "")]
    assert len(blocked) == 5 - expected_restarts, [i["reason"] for i in incidents]
    assert all(guard.replace("_", " ") in i["reason"] for i in blocked), [i["reason"] for i in blocked]


async def test_dry_run_records_the_plan_and_the_exact_request_and_writes_nothing(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any
) -> None:
    kube, kubeconfig = cluster
    write_rule(rules_dir)
    client = await aiohttp_client(app_for(make_settings, kubeconfig, dry_run=True))
    await post(client, alert())
    [incident] = await settled(client)
    assert incident["state"] == "escalated" and incident["reason"].startswith(
        "dry-run: would apply kube.rollout_restart"
    )
    assert kube.writes() == []
    full = await detail(client, incident["id"])
    [action] = [a for a in full["actions"] if a["action"] == "kube.rollout_restart"]
    assert (action["status"], action["guard"], action["dry_run"]) == ("skipped", "dry_run", True)
    [request] = action["request"]
    assert request["method"] == "PATCH" and request["path"].endswith(
        "/namespaces/shop/deployments/coordinator"
    )
    assert RESTARTED_AT in json.dumps(request["body"])
    decision = next(e for e in full["timeline"] if e["kind"] == "decision")
    assert decision["data"]["steps"][0] == {
        "action": "kube.rollout_restart",
        "status": "planned",
        "guard": None,
        "reason": "its condition holds",
    }


@pytest.mark.parametrize("namespace", ["default; rm -rf /", "../../x", "$(reboot)"])
async def test_hostile_label_values_never_reach_the_kubernetes_api(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any, namespace: str
) -> None:
    kube, kubeconfig = cluster
    write_rule(rules_dir)
    client = await aiohttp_client(app_for(make_settings, kubeconfig))
    await post(client, alert(namespace=namespace))
    [incident] = await settled(client)
    assert kube.requests == [], "not even a read reached the API"
    assert incident["state"] == "escalated" and incident["target"]["valid"] is False
    assert "target.namespace" in incident["reason"]
    full = await detail(client, incident["id"])
    assert all(a["status"] != "awaiting_approval" for a in full["actions"]), (
        "nothing is proposed on an invalid target"
    )


async def test_a_proposal_runs_only_when_an_approver_approves_it(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any
) -> None:
    kube, kubeconfig = cluster
    write_rule(rules_dir)
    client = await aiohttp_client(app_for(make_settings, kubeconfig))
    await client.post(
        "/v1/pause", headers=ALICE
    )  # the kill switch blocks the restart: escalated with a proposal
    await post(client, alert())
    [incident] = await settled(client)
    assert incident["state"] == "escalated" and "paused" in incident["reason"]
    full = await detail(client, incident["id"])
    [proposal] = [a for a in full["actions"] if a["status"] == "awaiting_approval"]
    assert proposal["action"] == "kube.delete_pods"
    assert full["bundle"]["proposals"][0]["id"] == proposal["id"]
    url = f"/v1/incidents/{incident['id']}/actions/{proposal['id']}/approve"
    assert (await client.post(url)).status == 401
    assert (await client.post(url, headers=AUTH)).status == 403, "the webhook token cannot approve"
    assert (await client.post(url.replace(proposal["id"], "nope"), headers=ALICE)).status == 404
    assert kube.writes() == []
    approved = await client.post(url, headers=ALICE)
    body = await approved.json()
    assert approved.status == 200, body
    assert (body["status"], body["approver"]) == ("succeeded", "alice")
    assert {r.method for r in kube.writes()} == {"DELETE"}
    assert (await client.post(url, headers=ALICE)).status == 409, "already decided"
    timeline = [e["kind"] for e in (await detail(client, incident["id"]))["timeline"]]
    assert "action.approved" in timeline


async def test_a_proposal_of_a_resolved_incident_cannot_be_approved(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any
) -> None:
    kube, kubeconfig = cluster
    write_rule(rules_dir)
    client = await aiohttp_client(app_for(make_settings, kubeconfig))
    await client.post("/v1/pause", headers=ALICE)
    await post(client, alert())
    [incident] = await settled(client)
    [proposal] = [
        a for a in (await detail(client, incident["id"]))["actions"] if a["status"] == "awaiting_approval"
    ]
    await post(client, alert(resolved=True))
    [incident] = await settled(client)
    assert incident["state"] == "resolved"
    url = f"/v1/incidents/{incident['id']}/actions/{proposal['id']}/approve"
    refused = await client.post(url, headers=ALICE)
    assert refused.status == 409
    assert "resolved" in (await refused.json())["error"]
    assert kube.writes() == [], "nothing ran on a resolved incident"
    still = [a for a in (await detail(client, incident["id"]))["actions"] if a["id"] == proposal["id"]]
    assert still[0]["status"] == "awaiting_approval" and still[0]["approver"] is None


async def test_the_kill_switch_survives_a_restart_of_the_service(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any
) -> None:
    kube, kubeconfig = cluster
    write_rule(rules_dir)
    first = await aiohttp_client(app_for(make_settings, kubeconfig))
    paused = await first.post("/v1/pause", headers=ALICE)
    assert (await paused.json()) == {"paused": True, "by": "alice"}
    await first.close()
    restarted = await aiohttp_client(app_for(make_settings, kubeconfig))  # same store, fresh in-process state
    await post(restarted, alert())
    [incident] = await settled(restarted)
    assert incident["state"] == "escalated" and "paused" in incident["reason"]
    assert kube.writes() == []
    await restarted.post("/v1/resume", headers=ALICE)
    await post(restarted, alert(fingerprint="other", starts_at="2026-11-27T11:00:00Z"))
    await settled(restarted)
    assert len(restarts(kube)) == 0, (
        "the open incident takes the new alert; nothing acts behind a human's back"
    )


SCALE_RULE = """\
name: coordinator-api-outage
runbook: Coordinator API Outage
mttr_target: 2m
severity: critical
match:
  - alertname="CoordinatorDown"
target:
  kind: Deployment
  namespace: "{{ labels.namespace | default('default') }}"
  name: coordinator
diagnose:
  - {id: pods, probe: kube.pods}
remediate:
  - action: kube.scale
    safety: SAFETY
    with: {replicas: 5, max: 5}
"""

#: fields of a journal record that say what was done, not when, by whom or under which id
SAME = ("action", "status", "guard", "params", "dry_run", "request", "result", "reason")


async def _scale_record(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, tmp_path: Path, safety: str
) -> Any:
    (rules_dir / "coordinator-api-outage.yaml").write_text(SCALE_RULE.replace("SAFETY", safety))
    async with KubeStandin() as kube:
        kube.add_deployment("shop", "coordinator", replicas=3)
        kubeconfig = kube.write_kubeconfig(tmp_path / f"kubeconfig-{safety}", namespace="shop")
        settings = make_settings(
            kubeconfig=kubeconfig,
            approver_tokens="alice=alice-approves",
            store_url=f"sqlite:///{tmp_path / f'{safety}.db'}",
        )
        client = await aiohttp_client(create_app(settings))
        await post(client, alert())
        [incident] = await settled(client)
        [record] = (await detail(client, incident["id"]))["actions"]
        if safety == "unsafe":
            assert record["status"] == "awaiting_approval"
            url = f"/v1/incidents/{incident['id']}/actions/{record['id']}/approve"
            assert (await client.post(url, headers=ALICE)).status == 200
            [record] = (await detail(client, incident["id"]))["actions"]
        deployment = kube.get("Deployment", "shop", "coordinator")
        assert deployment is not None and deployment["spec"]["replicas"] == 5
        await client.close()
        return record


async def test_an_approved_step_journals_like_an_automatic_one(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, tmp_path: Path
) -> None:
    automatic = await _scale_record(aiohttp_client, make_settings, rules_dir, tmp_path, "safe")
    approved = await _scale_record(aiohttp_client, make_settings, rules_dir, tmp_path, "unsafe")
    assert automatic["status"] == "succeeded" and automatic["request"]
    assert {k: automatic[k] for k in SAME} == {k: approved[k] for k in SAME}
    assert (automatic["approver"], approved["approver"]) == (None, "alice")


async def test_an_approval_outside_the_namespace_allow_list_is_refused_with_its_guard(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any
) -> None:
    kube, kubeconfig = cluster
    write_rule(rules_dir)
    client = await aiohttp_client(app_for(make_settings, kubeconfig, namespaces="billing"))
    await post(client, alert())
    [incident] = await settled(client)
    [proposal] = [
        a for a in (await detail(client, incident["id"]))["actions"] if a["status"] == "awaiting_approval"
    ]
    refused = await client.post(
        f"/v1/incidents/{incident['id']}/actions/{proposal['id']}/approve", headers=ALICE
    )
    body = await refused.json()
    assert refused.status == 409
    assert (body["status"], body["guard"], body["approver"]) == ("blocked", "namespace", "alice")
    assert "REMEDIATOR_NAMESPACES" in body["reason"]
    assert kube.writes() == []


async def test_an_approval_the_blast_radius_refuses_carries_its_guard(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, tmp_path: Path
) -> None:
    (rules_dir / "coordinator-api-outage.yaml").write_text(SCALE_RULE.replace("SAFETY", "unsafe"))
    async with KubeStandin() as kube:
        kube.add_deployment("shop", "coordinator", replicas=3)
        kube.add_hpa("shop", "coordinator", target_name="coordinator")  # an HPA owns the scale
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")
        client = await aiohttp_client(app_for(make_settings, kubeconfig))
        await post(client, alert())
        [incident] = await settled(client)
        [proposal] = (await detail(client, incident["id"]))["actions"]
        url = f"/v1/incidents/{incident['id']}/actions/{proposal['id']}/approve"
        refused = await client.post(url, headers=ALICE)
        body = await refused.json()
        assert refused.status == 409
        assert (body["status"], body["guard"]) == ("blocked", "blast_radius")
        assert "HPA" in body["reason"] or "autoscal" in body["reason"].lower(), body["reason"]
        assert kube.writes() == []
