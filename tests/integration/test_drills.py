"""Runbook drills (issue 16, Done-when 4): ``remediator drill RULE`` against a running service replays the
rule's scenario as a drill — the full diagnosis and decision of the scenario test, every action a dry run,
nothing written to the cluster, nothing paged, ``[DRILL]`` on every rendering, and a report that says what
would have been done and how long each step took.

The database drill reuses the setup of ``test_scenarios.test_database_down_is_escalated_with_a_restart_proposal``
(real PostgreSQL started then stopped, the Kubernetes stand-in, a local coordinator health endpoint), with a
recording PagerDuty stand-in that a real alert of the same rule does page."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

from service.app import create_app
from service.escalation.render import markdown, pagerduty, slack
from service.model import incidents
from tests.conftest import ROOT, eventually
from tests.integration.test_scenarios import (
    AUTH,
    findings,
    fire,
    http_server,
    localize,
    settings_for,
)
from tests.integration.test_scenarios import cluster as cluster  # noqa: PLC0414 — the fixture, reused
from tests.support import procs, saas
from tests.test_cli import run_cli

ALICE = {"Authorization": "Bearer alice-approves"}
ROUTING_KEY = "R" * 32
HANDED = ("escalated", "mitigated", "resolved")


async def handed_over(client: Any, incident_id: str) -> dict[str, Any]:
    """The incident once handed over and every notification of it delivered."""

    async def settled() -> dict[str, Any] | None:
        detail: dict[str, Any] = await (await client.get(f"/v1/incidents/{incident_id}", headers=AUTH)).json()
        delivered = all(n["state"] == "delivered" for n in detail["notifications"])
        return detail if detail["state"] in HANDED and detail["notifications"] and delivered else None

    found: dict[str, Any] = await eventually(settled, timeout=60, interval=0.1)
    return found


async def test_database_drill_has_the_scenarios_findings_and_decision_and_writes_and_pages_nothing(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any, tmp_path: Path
) -> None:
    kube, kubeconfig = cluster
    coordinator = await http_server({"/v1/health": lambda: (503, {"db": "unreachable"})})
    pg = procs.start_postgres(tmp_path)
    pg.stop()  # the database is down
    localize(
        rules_dir,
        "database-failure",
        {
            'host: "postgresql-replica.{{ target.namespace }}"': 'host: "127.0.0.1"',
            "http://coordinator.{{ target.namespace }}:8011/v1/health": str(
                coordinator.make_url("/v1/health")
            ),
        },
    )
    pd = saas.PagerDuty()
    async with saas.serving(pd.app(), "/v2/enqueue") as pd_url:
        settings = settings_for(
            make_settings,
            kubeconfig,
            monitor_postgres_dsn=f"postgresql://postgres@127.0.0.1:{pg.port}/postgres",
            pagerduty_routing_key=ROUTING_KEY,
            pagerduty_url=pd_url,
            dry_run=False,  # a drill is dry whatever the setting says
        )
        client = await aiohttp_client(create_app(settings))
        real = await fire(client, "PostgresDown")  # the same rule and target, for real: it pages
        await eventually(lambda: pd.actions(ROUTING_KEY) == ["trigger"], timeout=20)
        url = str(client.server.make_url("/"))
        command = ["drill", "database-failure", "--tests", str(ROOT / "rules" / "tests"), "--url", url]
        ran = await asyncio.to_thread(
            run_cli,
            *command,
            "-o",
            "json",
            env={"REMEDIATOR_APPROVER_TOKEN": "alice-approves", "REMEDIATOR_WEBHOOK_TOKEN": ""},
            timeout=90,
        )
        assert ran.returncode == 0, ran.stderr
        answer = json.loads(ran.stdout)
        drill = await handed_over(client, answer["incident"])
        report = await (await client.get(f"/v1/incidents/{drill['id']}/report", headers=AUTH)).text()
        listed = (await (await client.get("/v1/incidents", headers=AUTH)).json())["incidents"]
        real_now = await (await client.get(f"/v1/incidents/{real['id']}", headers=AUTH)).json()
        # a human approving the drill's proposal gets a dry run too: the restart is journaled, not sent
        [restart] = [a for a in drill["actions"] if a["status"] == "awaiting_approval"]
        approved = await client.post(
            f"/v1/incidents/{drill['id']}/actions/{restart['id']}/approve", headers=ALICE
        )
        after = await (await client.get(f"/v1/incidents/{drill['id']}", headers=AUTH)).json()
        await asyncio.sleep(0.5)  # a page would have gone out by now: the outbox delivers at once
    await coordinator.close()

    # the scenario's findings and decision (test_scenarios: ping failed, the restart proposed, no failover)
    assert answer["case"].startswith("connections near max") and answer["detail"]["drill"] is True
    found = findings(drill)
    assert drill["drill"] is True and drill["state"] == "escalated"
    assert found["ping"]["status"] == "failed" and found["ping"]["facts"]["reachable"] is False
    assert found["coordinator"]["status"] == "failed"
    proposals = [a["action"] for a in drill["actions"] if a["status"] == "awaiting_approval"]
    assert proposals == ["kube.rollout_restart"]
    # nothing written, nothing paged: PagerDuty only ever saw the real incident's trigger
    assert kube.writes() == []
    assert pd.actions(ROUTING_KEY) == ["trigger"] and pd.events[0]["dedup_key"] == real["id"]
    assert {n["channel"] for n in drill["notifications"]} == {"log"}
    assert approved.status == 200, "approving a drill's proposal runs it dry"
    [restarted] = [a for a in after["actions"] if a["id"] == restart["id"]]
    assert restarted["status"] == "skipped" and restarted["guard"] == "dry_run" and restarted["request"]
    # its own incident, labelled: the real one did not get the drill's alert, the list tells them apart
    assert drill["id"] != real["id"] and len(real_now["alerts"]) == 1
    assert {i["id"]: i["drill"] for i in listed} == {real["id"]: False, drill["id"]: True}
    # [DRILL] on every rendering of its bundle, and none on the real one's
    bundle = incidents.Bundle.model_validate(drill["bundle"])
    assert markdown.render(bundle).startswith("# \\[DRILL\\]")
    assert slack.render(bundle, event="trigger")["text"].startswith("[DRILL] TRIGGERED")
    assert pagerduty.render(bundle, event="trigger", routing_key=ROUTING_KEY, source="s")["payload"][
        "summary"
    ].startswith("[DRILL]")
    assert not markdown.render(incidents.Bundle.model_validate(real["bundle"])).startswith("# \\[DRILL")
    # the report says it was a drill, what would have been done, how long each step took
    assert report.startswith("# [DRILL] Incident report: Database Failure")
    assert "## Drill: what would have been done" in report and "Would have been proposed to a human" in report
    assert "## Drill: how long each step took" in report and "probe `ping` (`postgres.ping`)" in report


async def test_drill_of_a_safe_restart_journals_the_dry_run_request_and_writes_nothing(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any
) -> None:
    kube, kubeconfig = cluster
    kube.add_deployment(  # the first case of high-error-rate's tests: service checkout in namespace shop
        "shop", "checkout", replicas=2, containers=[{"name": "checkout", "image": "shop/checkout:1"}]
    )
    kube.set_deployment_pods_state("shop", "checkout", "crashloop")
    (rules_dir / "tests").mkdir()
    shutil.copy(ROOT / "rules" / "tests" / "high-error-rate.test.yaml", rules_dir / "tests")
    client = await aiohttp_client(create_app(settings_for(make_settings, kubeconfig, dry_run=False)))

    refused = await client.post("/v1/drills", json={"rule": "high-error-rate"}, headers=AUTH)
    assert refused.status == 403, "the webhook token cannot start a drill"
    unknown = await client.post("/v1/drills", json={"rule": "no-such-rule"}, headers=ALICE)
    assert unknown.status == 404 and (await unknown.json())["field"] == "rule"
    mismatch = await client.post(
        "/v1/drills",
        json={"rule": "high-error-rate", "alert": {"labels": {"alertname": "Other"}}},
        headers=ALICE,
    )
    assert (
        mismatch.status == 400 and "does not match rule high-error-rate" in (await mismatch.json())["error"]
    )

    started = await client.post("/v1/drills", json={"rule": "high-error-rate"}, headers=ALICE)
    assert started.status == 201, await started.text()
    answer = await started.json()
    assert answer["fingerprint"].startswith("drill-")
    drill = await handed_over(client, answer["incident"])
    report = await (await client.get(f"/v1/incidents/{drill['id']}/report", headers=AUTH)).text()

    [restart] = [a for a in drill["actions"] if a["action"] == "kube.rollout_restart"]
    assert restart["status"] == "skipped" and restart["guard"] == "dry_run" and restart["dry_run"] is True
    [request] = restart["request"]
    assert request["method"] == "PATCH" and "/namespaces/shop/deployments/checkout" in request["path"]
    assert "restartedAt" in json.dumps(request["body"])
    assert kube.writes() == [], "the drill wrote nothing to the cluster"
    assert drill["target"]["namespace"] == "shop" and drill["drill"] is True
    assert "dry-run: would apply kube.rollout_restart" in drill["reason"]
    assert "Would have been applied automatically" in report and "restartedAt" in report
    assert "action `kube.rollout_restart`" in report, "the action's own step is timed"
