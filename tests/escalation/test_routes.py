"""The route table applied: which channels hear about an incident, the settings' table, the fallback channel."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from service import errors
from service.escalation import routes

ALL = ["log", "webhook", "slack", "pagerduty"]
TABLE = "critical=pagerduty+slack; warning=slack; rule:redis-failure=pagerduty; *=log"


def test_rule_entries_win_over_severity_entries_which_win_over_the_default() -> None:
    table = routes.compile_routes(TABLE, configured=ALL)
    assert table.channels_for("critical", "high-error-rate") == ["log", "pagerduty", "slack"]
    assert table.channels_for("warning", "high-error-rate") == ["log", "slack"]
    assert table.channels_for("warning", "redis-failure") == ["log", "pagerduty"]
    assert table.channels_for("critical", "redis-failure") == ["log", "pagerduty"]
    assert table.channels_for("info", "disk-full") == ["log"]
    assert table.rules == {"redis-failure"}


def test_log_is_always_included_and_listed_once() -> None:
    table = routes.compile_routes("critical=pagerduty+log+pagerduty;*=webhook", configured=ALL)
    assert table.channels_for("critical", "x") == ["log", "pagerduty"]
    assert table.channels_for("high", "x") == ["log", "webhook"]


def test_an_empty_table_or_no_default_sends_unrouted_incidents_to_every_channel_that_is_on() -> None:
    on = ["log", "slack", "pagerduty"]
    assert routes.compile_routes("", configured=on).channels_for("critical", "x") == on
    assert routes.compile_routes("  ;  ", configured=on).channels_for("info", "x") == on
    table = routes.compile_routes("critical=pagerduty", configured=on)
    assert table.channels_for("critical", "x") == ["log", "pagerduty"]
    assert table.channels_for("warning", "x") == on


def test_channels_that_are_not_configured_are_dropped_with_a_warning_at_start() -> None:
    with capture_logs() as logs:
        table = routes.compile_routes(TABLE, configured=["log", "slack"])
    assert table.channels_for("critical", "x") == ["log", "slack"]
    assert table.channels_for("warning", "redis-failure") == ["log"]
    dropped = [e for e in logs if e["event"] == "notify.route_dropped"]
    assert [(e["channel"], e["log_level"]) for e in dropped] == [("pagerduty", "warning")]
    with capture_logs() as logs:
        table.channels_for("critical", "redis-failure")
    assert logs == []  # asked per incident: no warning then


def test_the_settings_refuse_a_bad_table_or_fallback(make_settings: Any) -> None:
    with pytest.raises(errors.ConfigError, match=r"REMEDIATOR_NOTIFY_ROUTES: .*'pager'"):
        make_settings(notify_routes="critical=pager")
    with pytest.raises(errors.ConfigError, match=r"REMEDIATOR_NOTIFY_FALLBACK: unknown channel 'email'"):
        make_settings(notify_fallback="email")
    settings = make_settings(notify_routes=TABLE, notify_fallback="slack")
    assert settings.notify_routes == TABLE


def test_the_route_table_of_the_settings_knows_which_channels_are_on(make_settings: Any) -> None:
    settings = make_settings(
        notify_routes=TABLE,
        notify_fallback="slack",
        slack_webhook_url="http://127.0.0.1:9/hook",
        pagerduty_routing_key="k" * 32,
    )
    assert settings.notify_channels == ["log", "slack", "pagerduty"]
    table = routes.from_settings(settings)
    assert table.channels_for("critical", "x") == ["log", "pagerduty", "slack"]
    assert table.fallback_for("pagerduty") == "slack"


def test_the_fallback_is_one_hop_and_only_to_a_channel_that_is_on() -> None:
    table = routes.compile_routes("", configured=ALL, fallback="slack")
    assert table.fallback_for("pagerduty") == "slack"
    assert table.fallback_for("webhook") == "slack"
    assert table.fallback_for("slack") is None  # never back to itself
    assert routes.compile_routes("", configured=ALL).fallback_for("pagerduty") is None
    with capture_logs() as logs:
        off = routes.compile_routes("", configured=["log"], fallback="pagerduty")
    assert off.fallback_for("webhook") is None
    assert [e["event"] for e in logs] == ["notify.fallback_dropped"]
