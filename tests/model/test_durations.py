"""The one duration parser: Prometheus units (ms s m h d w y) and plain seconds, in rules and settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from service.matching import loader
from service.model import rules
from service.settings import Settings

RULE = """
name: slow-burn
runbook: Slow burn
mttr_target: 1h30m
match: ['alertname="SlowBurn"']
target: {{kind: Deployment, namespace: shop, name: api}}
diagnose:
  - {{id: pods, probe: kube.pods, timeout: 1500ms}}
remediate:
  - action: kube.rollout_restart
    safety: safe
    cooldown: {cooldown}
    max_attempts: {{count: 2, per: 1w}}
"""


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("90s", 90),
        ("2m", 120),
        ("1h30m", 5400),
        ("1d", 86_400),
        ("2w", 14 * 86_400),
        ("1y", 365 * 86_400),
        ("1d2h3m4s5ms", 93_784.005),
        ("1ms", 0.001),
        ("5m10ms", 300.01),
        ("90", 90),
        ("1.5", 1.5),
        (45, 45),
        (0.25, 0.25),
    ],
)
def test_prometheus_units_and_plain_seconds(text: Any, seconds: float) -> None:
    assert rules.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid duration"),
        ("1m1h", "invalid duration"),  # out of order, as Prometheus refuses it
        ("1h1h", "invalid duration"),
        ("1.5h", "invalid duration"),
        ("-5", "invalid duration"),
        ("5x", "invalid duration"),
        (-1, "must not be negative"),
        (float("inf"), "out of range"),
        ("200y", "out of range"),
        (True, "must be a string"),
    ],
)
def test_bad_durations_say_what_is_expected(text: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rules.parse_duration(text)


def test_rule_files_take_days_weeks_and_milliseconds() -> None:
    rule = loader.parse_rule(RULE.format(cooldown="1d"), file="slow.yaml").rule
    assert rule.mttr_target == timedelta(minutes=90)
    assert rule.diagnose[0].timeout == timedelta(milliseconds=1500)
    assert rule.remediate[0].cooldown == timedelta(days=1)
    assert rule.remediate[0].max_attempts.per == timedelta(weeks=1)


def test_a_bad_duration_in_a_rule_file_is_reported() -> None:
    with pytest.raises(loader.RuleLoadError) as raised:
        loader.parse_rule(RULE.format(cooldown="1 day"), file="slow.yaml")
    assert "slow.yaml" in str(raised.value) and "invalid duration '1 day'" in str(raised.value)


def test_second_settings_take_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMEDIATOR_FLAP_WINDOW_S", "45m")
    monkeypatch.setenv("REMEDIATOR_SESSION_TTL_S", "1d")
    settings = Settings(probe_timeout_s="1500ms", retention_interval_s="2h", first_response_s="300")
    assert settings.flap_window_s == 2700
    assert settings.session_ttl_s == 86_400
    assert settings.probe_timeout_s == 1.5
    assert settings.retention_interval_s == 7200
    assert settings.first_response_s == 300


def test_a_bad_second_setting_names_the_setting() -> None:
    with pytest.raises(ValidationError, match="flap_window_s") as raised:
        Settings(flap_window_s="half an hour")
    assert "invalid duration" in str(raised.value)
    with pytest.raises(ValidationError, match="session_ttl_s"):
        Settings(session_ttl_s="30d")  # parsed, then over its bound (a week)


@pytest.mark.parametrize(
    ("budget", "parsed"),
    [("10/10m", (10, 600.0)), ("50/1h", (50, 3600.0)), ("3/1d", (3, 86_400.0)), ("5/90s", (5, 90.0))],
)
def test_action_budget_windows_take_units(budget: str, parsed: tuple[int, float]) -> None:
    assert Settings(action_budget=budget).budget == parsed


@pytest.mark.parametrize("budget", ["10", "0/10m", "ten/10m", "10/0s", "10/soon", "10/"])
def test_a_bad_action_budget_says_the_form(budget: str) -> None:
    with pytest.raises(ValidationError, match="action_budget must be COUNT/DURATION"):
        Settings(action_budget=budget)
