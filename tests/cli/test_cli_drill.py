"""``remediator drill RULE`` against a running service: the scenario read from the rule's test file, the
drill incident followed until it is handed over and shown, and the refusals (no scenario, no such case, not
an approver, a token on the command line) with their exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aiohttp

from service.app import create_app
from tests.cli.oncall import ALICE, READER, running
from tests.conftest import ROOT, TOKEN

TESTS = str(ROOT / "rules" / "tests")


async def test_drill_shows_the_drill_incident_and_labels_it(make_settings: Any) -> None:
    app = create_app(make_settings(approver_tokens="alice=alice-approves"))
    async with running(app) as service:
        shown = await service.cli("drill", "high-error-rate", "--tests", TESTS, "-o", "table", env=ALICE)
        assert shown.returncode == 0, shown.stderr
        incident_id = re.search(r"incident (\w+) \[DRILL\]: escalated", shown.stdout)
        assert incident_id, shown.stdout
        async with aiohttp.ClientSession() as session:
            listed = await (
                await session.get(service.url + "v1/incidents", headers={"Authorization": f"Bearer {TOKEN}"})
            ).json()
    lines = shown.stdout.splitlines()
    assert lines[0] == "drill of high-error-rate: crashlooping service is restarted, rollback proposed"
    assert any(line.startswith("pods") and "skipped" in line for line in lines), "the probe it ran"
    assert any(line.startswith("kube.rollout_undo") and "awaiting_approval" in line for line in lines)
    assert lines[-1] == f"report: remediator incidents report {incident_id.group(1)}"
    [incident] = listed["incidents"]
    assert incident["drill"] is True and incident["target"]["namespace"] == "shop"


async def test_drill_runs_the_case_asked_for(make_settings: Any) -> None:
    app = create_app(make_settings(approver_tokens="alice=alice-approves"))
    async with running(app) as service:
        shown = await service.cli(
            "drill", "database-failure", "--tests", TESTS, "--case", "5", "-o", "json", env=ALICE
        )
    assert shown.returncode == 0, shown.stderr
    answer = json.loads(shown.stdout)
    assert answer["case"].startswith("primary down, replica streaming")
    assert answer["detail"]["alerts"][0]["alert"]["labels"]["alertname"] == "PostgresDown"
    assert answer["detail"]["drill"] is True and answer["fingerprint"].startswith("drill-")


async def test_drill_refuses_without_a_scenario_or_an_approver(make_settings: Any, tmp_path: Path) -> None:
    app = create_app(make_settings(approver_tokens="alice=alice-approves"))
    async with running(app) as service:
        missing = await service.cli("drill", "high-error-rate", "--tests", str(tmp_path), env=ALICE)
        no_case = await service.cli("drill", "high-error-rate", "--tests", TESTS, "--case", "nope", env=ALICE)
        reader = await service.cli("drill", "high-error-rate", "--tests", TESTS, env=READER)
        webhook_as_approver = await service.cli(
            "drill", "high-error-rate", "--tests", TESTS, env={"REMEDIATOR_APPROVER_TOKEN": TOKEN}
        )
        flag = await service.cli("drill", "high-error-rate", "--token", "alice-approves", env=ALICE)
        async with aiohttp.ClientSession() as session:
            listed = await (
                await session.get(service.url + "v1/incidents", headers={"Authorization": f"Bearer {TOKEN}"})
            ).json()
    assert missing.returncode == 2 and "cannot read the scenario of high-error-rate" in missing.stderr
    assert no_case.returncode == 2 and "no case 'nope'" in no_case.stderr
    assert reader.returncode == 1 and "401" in reader.stderr and "REMEDIATOR_APPROVER_TOKEN" in reader.stderr
    assert webhook_as_approver.returncode == 1 and "403" in webhook_as_approver.stderr
    assert flag.returncode == 2 and "--token is not accepted" in flag.stderr
    assert listed["incidents"] == [], "no drill started"
