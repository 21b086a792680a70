"""``REMEDIATOR_ESCALATION_LEVELS`` and the PagerDuty routing keys by service: parsed strictly when the
settings load; a mistake names the setting and the entry and never shows a routing key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service import errors
from service.model import levels

KEY = "PR1MARYK3Y0123456789abcdefABCDEF"
MATRIX = (
    "1=pagerduty:primary;2=pagerduty:secondary+slack@U0123ABC,S0456DEF;3=pagerduty:managers;4=pagerduty:cto"
)
SERVICES = {"primary", "secondary", "managers", "cto"}


def test_the_runbooks_matrix_parses_into_recipients_per_level() -> None:
    matrix = levels.parse(MATRIX, services=SERVICES, on={"log", "slack"})
    assert {n: [r.label for r in rs] for n, rs in matrix.levels.items()} == {
        1: ["pagerduty:primary"],
        2: ["pagerduty:secondary", "slack@U0123ABC,S0456DEF"],
        3: ["pagerduty:managers"],
        4: ["pagerduty:cto"],
    }
    [_, slack] = matrix.recipients(2)
    assert (slack.key, slack.mentions) == ("slack", ("U0123ABC", "S0456DEF"))
    assert matrix.top == 4


def test_unset_is_no_matrix_and_a_shorter_matrix_ends_at_its_last_level() -> None:
    assert levels.parse("", services=SERVICES).levels == {}
    assert levels.parse(" ; ").levels == {}
    short = levels.parse("1=pagerduty ; 2 = log+webhook", on={"pagerduty", "webhook"})
    assert short.top == 2
    assert [r.key for r in short.recipients(2)] == ["log", "webhook"]
    assert short.recipients(3) == ()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("5=log", r"'5=log': level '5' is not 1, 2, 3 or 4"),
        ("0=log", r"level '0' is not 1, 2, 3 or 4"),
        ("1=log;1=pagerduty:primary", r"'1=pagerduty:primary': level 1 appears twice"),
        ("1=email", r"'1=email': unknown recipient 'email'"),
        ("1=slack:ops", r"unknown recipient 'slack:ops'"),
        (
            "1=pagerduty:nobody",
            r"PagerDuty service 'nobody' has no routing key in REMEDIATOR_PAGERDUTY_ROUTING_KEYS",
        ),
        ("1=pagerduty:Primary", r"'Primary' is not a PagerDuty service name"),
        ("1=slack@u0123abc", r"'u0123abc' is not a Slack user \(U…, W…\) or user-group \(S…\) id"),
        ("1=slack@U0123ABC,<!channel>", r"'<!channel>' is not a Slack user"),
        ("1=slack@", r"'' is not a Slack user"),
        ("1=webhook@U0123ABC", r"only slack takes mentions"),
        ("1=log+log", r"recipient 'log' appears twice"),
        ("1=log+", r"expected one or more recipients"),
        ("2=pagerduty:primary", r"level 1 is missing"),
        ("1=log;3=log", r"level 2 is missing"),
        ("pagerduty:primary", r"expected level=recipient"),
    ],
)
def test_a_mistake_names_the_setting_and_the_entry(text: str, why: str) -> None:
    with pytest.raises(errors.ConfigError, match=r"^REMEDIATOR_ESCALATION_LEVELS: .*" + why):
        levels.parse(text, services={"primary"}, on={"log", "slack", "webhook"})


def test_a_recipient_nobody_configured_is_refused_with_what_to_set() -> None:
    with pytest.raises(
        errors.ConfigError, match=r"slack is not configured \(set REMEDIATOR_SLACK_WEBHOOK_URL"
    ):
        levels.parse("1=slack@U0123ABC")
    with pytest.raises(
        errors.ConfigError, match=r"pagerduty is not configured \(set REMEDIATOR_PAGERDUTY_ROUTING_KEY"
    ):
        levels.parse("1=pagerduty", services={"primary"})


def test_routing_keys_by_service_name_and_mistakes_that_never_show_a_key() -> None:
    assert levels.parse_routing_keys(f"primary={KEY}, cto_2={KEY[::-1]}\n") == {
        "primary": KEY,
        "cto_2": KEY[::-1],
    }
    for text, why in (
        (KEY, "entry 1 is not name=KEY"),  # a bare key: its text must not be quoted
        (f"primary={KEY},{KEY}", "entry 2 is not name=KEY"),
        (f"Primary={KEY}", "entry 1 is not name=KEY"),
        (f"{'x' * 21}={KEY}", "entry 1 is not name=KEY"),
        ("primary=", "service 'primary' has no routing key"),
        (f"primary={KEY},primary={KEY}", "service 'primary' appears twice"),
    ):
        with pytest.raises(errors.ConfigError, match=f"^REMEDIATOR_PAGERDUTY_ROUTING_KEYS: {why}") as caught:
            levels.parse_routing_keys(text)
        assert KEY not in str(caught.value) and KEY[::-1] not in str(caught.value)


def test_the_settings_parse_levels_and_keys_once_and_turn_pagerduty_on(make_settings: Any) -> None:
    settings = make_settings(
        pagerduty_routing_keys=f"primary={KEY},secondary={KEY.lower()}",
        escalation_levels="1=pagerduty:primary;2=pagerduty:secondary+slack@W0123ABC",
        slack_webhook_url="http://127.0.0.1:9/hooks",
    )
    assert settings.escalation_matrix.top == 2
    assert {n: s.get_secret_value() for n, s in settings.pagerduty_services.items()} == {
        "primary": KEY,
        "secondary": KEY.lower(),
    }
    assert settings.notify_channels == [
        "log",
        "slack",
        "pagerduty",
    ]  # named services page through "pagerduty"
    assert KEY not in repr(settings) and KEY not in str(settings.model_dump())


def test_unset_levels_keep_todays_settings(make_settings: Any) -> None:
    settings = make_settings()
    assert settings.escalation_matrix.levels == {} and settings.pagerduty_services == {}
    assert settings.notify_channels == ["log"]


def test_the_keys_file_adds_services_and_its_mistakes_name_the_file_setting(
    make_settings: Any, tmp_path: Path
) -> None:
    keys = tmp_path / "routing-keys"
    keys.write_text(f"managers={KEY}\ncto={KEY.lower()}\n")
    settings = make_settings(
        pagerduty_routing_keys=f"primary={KEY}",
        pagerduty_routing_keys_file=keys,
        escalation_levels="1=pagerduty:primary;2=pagerduty:managers;3=pagerduty:cto",
    )
    assert sorted(settings.pagerduty_services) == ["cto", "managers", "primary"]
    keys.write_text(f"primary={KEY}")
    with pytest.raises(
        errors.ConfigError, match="_FILE: service 'primary' is also in REMEDIATOR_PAGERDUTY_ROUTING_KEYS"
    ):
        make_settings(pagerduty_routing_keys=f"primary={KEY}", pagerduty_routing_keys_file=keys)
    keys.write_text(f"{KEY}\n")
    with pytest.raises(
        errors.ConfigError, match=r"^REMEDIATOR_PAGERDUTY_ROUTING_KEYS_FILE: entry 1"
    ) as caught:
        make_settings(pagerduty_routing_keys_file=keys)
    assert KEY not in str(caught.value)
    with pytest.raises(errors.ConfigError, match="REMEDIATOR_PAGERDUTY_ROUTING_KEYS_FILE: cannot read"):
        make_settings(pagerduty_routing_keys_file=tmp_path / "missing")


def test_a_level_naming_a_service_without_a_key_stops_the_settings(make_settings: Any) -> None:
    with pytest.raises(
        errors.ConfigError, match="REMEDIATOR_ESCALATION_LEVELS: invalid entry '1=pagerduty:cto'"
    ):
        make_settings(pagerduty_routing_keys=f"primary={KEY}", escalation_levels="1=pagerduty:cto")
