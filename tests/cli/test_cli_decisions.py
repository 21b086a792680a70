"""The person on call decides from the command line against a running service: the kill switch, approve a
proposed unsafe action (it runs on the Kubernetes stand-in), ack, tick the checklist, reject, resume — with
the approver token from the environment or a file, never from a flag."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from service.app import create_app
from tests.cli.oncall import ALICE, ALICE_TOKEN, READER, running
from tests.conftest import TOKEN, load_fixture
from tests.support.kube_standin import KubeStandin

RULE = """\
name: coordinator-api-outage
runbook: Coordinator API Outage
mttr_target: 2m
severity: critical
match:
  - alertname="CoordinatorDown"
target: {kind: Deployment, namespace: shop, name: coordinator}
diagnose:
  - {id: pods, probe: kube.pods}
remediate:
  - action: kube.rollout_restart
    safety: safe
    when: findings.pods.facts.crashlooping > 0
    verify: {probe: pods, within: 10s}
  - action: kube.delete_pods
    safety: unsafe
    reason: deleting pods by force skips graceful shutdown; a human decides
"""


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[KubeStandin, Path]]:
    async with KubeStandin(rollout_delay=0.3) as kube:
        kube.add_deployment("shop", "coordinator", replicas=3)
        kube.set_deployment_pods_state("shop", "coordinator", "crashloop")
        kube.clear_requests()
        yield kube, kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")


def coordinator_down() -> dict[str, Any]:
    payload = load_fixture("am-0.25-firing.json")
    payload["alerts"][0].update(labels={"alertname": "CoordinatorDown"}, fingerprint="coord")
    return payload


async def test_pause_approve_ack_check_and_resume_from_the_command_line(
    make_settings: Any, rules_dir: Path, cluster: Any, tmp_path: Path
) -> None:
    kube, kubeconfig = cluster
    (rules_dir / "coordinator-api-outage.yaml").write_text(RULE)
    settings = make_settings(
        kubeconfig=kubeconfig, approver_tokens=f"alice={ALICE_TOKEN}", verify_interval_s=0.2
    )
    async with running(create_app(settings)) as service:
        paused = await service.cli("pause", env=ALICE)  # the kill switch: the restart will not run
        assert paused.returncode == 0, paused.stderr
        assert paused.stdout.startswith("automation paused by alice")
        assert (await service.json("status"))["paused"] is True

        await service.post_alert(coordinator_down())
        incident = await service.settled_incident()
        detail = await service.json("incidents", "show", incident["id"])
        [proposal] = [a for a in detail["actions"] if a["status"] == "awaiting_approval"]
        assert proposal["action"] == "kube.delete_pods"
        approve = ("incidents", "approve", incident["id"], proposal["id"])

        as_reader = await service.cli(*approve, env={"REMEDIATOR_APPROVER_TOKEN": TOKEN})
        assert as_reader.returncode == 1 and "403" in as_reader.stderr and "approver" in as_reader.stderr
        assert kube.writes() == [], "a refused approval runs nothing"

        token_file = tmp_path / "alice.token"
        token_file.write_text(ALICE_TOKEN + "\n")
        approved = await service.cli(*approve, "--token-file", str(token_file))
        assert approved.returncode == 0, approved.stderr
        assert approved.stdout.strip() == "kube.delete_pods succeeded (approved by alice)"
        assert {r.method for r in kube.writes()} == {"DELETE"}, "the approved action ran on the cluster"
        again = await service.cli(*approve, env=ALICE)
        assert again.returncode == 1 and "409" in again.stderr and "by alice" in again.stderr
        assert again.stdout == ""

        acked = await service.cli("incidents", "ack", incident["id"], env=ALICE)
        assert acked.returncode == 0, acked.stderr
        assert acked.stdout.strip() == f"acknowledged {incident['id']} as alice: escalation stopped"
        twice = await service.cli("incidents", "ack", incident["id"], env=ALICE)
        assert twice.returncode == 1 and "already acknowledged by alice" in twice.stderr

        ticked = await service.cli("incidents", "check", incident["id"], "1", env=ALICE)
        assert ticked.returncode == 0 and "as alice" in ticked.stdout

        timeline = [e["kind"] for e in (await service.json("incidents", "show", incident["id"]))["timeline"]]
        assert {"action.approved", "incident.acknowledged", "checklist.ticked"} <= set(timeline), timeline

        resumed = await service.cli("resume", env=ALICE)
        assert resumed.returncode == 0 and resumed.stdout.strip() == "automation resumed by alice"
        state = await service.cli("status", "-o", "table", env=READER)
        assert state.stdout.splitlines()[0] == "automation: running"


async def test_reject_a_proposal_and_read_the_incident_as_a_table(make_settings: Any) -> None:
    """No cluster configured: the captured alert's rollback is proposed; alice refuses it."""
    settings = make_settings(approver_tokens=f"alice={ALICE_TOKEN}")
    async with running(create_app(settings)) as service:
        await service.post_alert(load_fixture("am-0.25-firing.json"))
        incident = await service.settled_incident()
        [proposal] = (await service.json("incidents", "show", incident["id"]))["actions"]
        assert (proposal["action"], proposal["status"]) == ("kube.rollout_undo", "awaiting_approval")

        pending = await service.cli("incidents", "show", incident["id"], "-o", "table", env=READER)
        assert f"(decide: remediator incidents approve|reject {incident['id']} ACTION_ID)" in pending.stdout

        rejected = await service.cli("incidents", "reject", incident["id"], proposal["id"], env=ALICE)
        assert rejected.returncode == 0, rejected.stderr
        assert rejected.stdout.strip() == "kube.rollout_undo rejected by alice"
        late = await service.cli("incidents", "approve", incident["id"], proposal["id"], env=ALICE)
        assert late.returncode == 1 and "already rejected by alice" in late.stderr
        unknown = await service.cli("incidents", "reject", incident["id"], "no-such-action", env=ALICE)
        assert unknown.returncode == 1 and "404" in unknown.stderr

        # an approver token reads too: the person on call needs one token, not two
        table = await service.cli("incidents", "show", incident["id"], "-o", "table", env=ALICE)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[0].split() == ["incident:", incident["id"]]
        assert "target:    Deployment/default/checkout" in lines
        actions = lines[lines.index("ACTIONS") + 2]
        assert actions.split()[:5] == [proposal["id"], "kube.rollout_undo", "unsafe", "rejected", "alice"]
        assert "TIMELINE" in lines and any("action.rejected" in line for line in lines)
