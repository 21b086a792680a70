"""The example configurations in ``examples/`` are valid for the real tools and agree with the shipped rules.

``amtool`` and ``promtool`` (Debian packages installed by ``scripts/install-system-deps.sh``) check them, as a
user following the README would; routing is checked with ``amtool config routes test``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"
DEMO = EXAMPLES / "demo"
AITBC_ALERTS = ROOT / "rules" / "alerts" / "aitbc.yaml"


def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in argv], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )


def alerts_of(path: Path) -> list[dict[str, Any]]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def route(config: Path, **labels: str) -> str:
    answer = run(
        "amtool",
        "config",
        "routes",
        "test",
        f"--config.file={config}",
        *(f"{k}={v}" for k, v in labels.items()),
    )
    assert answer.returncode == 0, answer.stderr
    return answer.stdout.strip()


def test_the_production_alertmanager_config_passes_amtool() -> None:
    checked = run("amtool", "check-config", EXAMPLES / "alertmanager.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


@pytest.mark.parametrize("alertname", sorted({rule["alert"] for rule in alerts_of(AITBC_ALERTS)}))
def test_every_aitbc_alert_is_routed_to_remediator(alertname: str) -> None:
    assert route(EXAMPLES / "alertmanager.yml", alertname=alertname, namespace="aitbc") == "remediator"


def test_other_alerts_and_opted_out_ones_go_to_the_usual_receiver() -> None:
    config = EXAMPLES / "alertmanager.yml"
    assert route(config, alertname="RemediatorKillSwitchOn") == "on-call"  # its own self-alerts: to humans
    assert route(config, alertname="Watchdog") == "on-call"
    assert route(config, alertname="RedisDown", remediator="off") == "on-call"


def test_the_remediator_receiver_sends_everything_it_needs() -> None:
    config = yaml.safe_load((EXAMPLES / "alertmanager.yml").read_text())
    (receiver,) = [r for r in config["receivers"] if r["name"] == "remediator"]
    (webhook,) = receiver["webhook_configs"]
    assert webhook["url"].endswith("/v1/alerts")
    assert webhook["send_resolved"] is True
    assert webhook["max_alerts"] == 0
    assert webhook["http_config"]["authorization"]["type"] == "Bearer"
    assert webhook["http_config"]["authorization"]["credentials_file"].startswith("/")


def test_the_production_prometheus_config_and_its_rules_pass_promtool() -> None:
    checked = run("promtool", "check", "config", EXAMPLES / "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (
        "18 rules found" in checked.stdout + checked.stderr
        or "rules found" in checked.stdout + checked.stderr
    )


def test_the_demo_alerts_pass_promtool_and_are_the_shipped_alerts() -> None:
    checked = run("promtool", "check", "rules", DEMO / "alerts.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    shipped = {rule["alert"]: rule for rule in alerts_of(AITBC_ALERTS)}
    for demo_rule in alerts_of(DEMO / "alerts.yaml"):
        name = demo_rule["alert"]
        assert name in shipped, (
            f"{name} is not an alert of {AITBC_ALERTS.name}: no shipped rule would match it"
        )
        assert demo_rule["labels"]["severity"] == shipped[name]["labels"]["severity"], name


def render(template: Path, out: Path, tmp_path: Path) -> Path:
    """What ``scripts/demo.sh`` does to a demo template: its placeholders replaced."""
    values = {
        "@SERVICE_PORT@": "18080",
        "@PROMETHEUS_PORT@": "19090",
        "@ALERTMANAGER_PORT@": "19093",
        "@EXPORTER_PORT@": "19100",
        "@ALERTS_FILE@": str(DEMO / "alerts.yaml"),
        "@TOKEN_FILE@": str(tmp_path / "webhook-token"),
    }
    text = template.read_text()
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    left = re.findall(r"@[A-Z_]+@", text)
    assert not left, f"placeholders scripts/demo.sh does not replace: {left}"
    out.write_text(text)
    return out


def test_the_demo_configs_pass_amtool_and_promtool(tmp_path: Path) -> None:
    alertmanager = render(DEMO / "alertmanager.yml", tmp_path / "alertmanager.yml", tmp_path)
    checked = run("amtool", "check-config", alertmanager)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    prometheus = render(DEMO / "prometheus.yml", tmp_path / "prometheus.yml", tmp_path)
    checked = run("promtool", "check", "config", prometheus)
    assert checked.returncode == 0, checked.stdout + checked.stderr
