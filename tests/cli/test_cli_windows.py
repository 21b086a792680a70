"""Maintenance windows from the command line: ``remediator pause --scope … --until … --reason …`` opens one
on the running service, ``remediator status`` shows it, ``remediator resume --window ID`` ends it early."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from service.app import create_app
from service.cli import automation, client
from tests.cli.oncall import ALICE, ALICE_TOKEN, READER, running


async def test_a_window_opened_listed_and_ended_from_the_command_line(make_settings: Any) -> None:
    settings = make_settings(approver_tokens=f"alice={ALICE_TOKEN}")
    async with running(create_app(settings)) as service:
        before = time.time()
        opened = await service.cli(
            "pause",
            "--scope",
            "namespace:shop",
            "--until",
            "2h",
            "--reason",
            "PostgreSQL 16 upgrade",
            env=ALICE,
        )
        assert opened.returncode == 0, opened.stderr
        found = re.search(
            r"maintenance window (\S+): automation paused on namespace:shop until (\S+) by alice",
            opened.stdout,
        )
        assert found, opened.stdout
        window_id = found.group(1)
        assert f"remediator resume --window {window_id}" in opened.stdout

        state = await service.json("status")
        assert state["paused"] is False, "a window pauses its scope, not everything"
        [window] = state["windows"]
        assert (window["id"], window["scope"], window["reason"]) == (
            window_id,
            "namespace:shop",
            "PostgreSQL 16 upgrade",
        )
        ends = automation.until(window["until"], now=before)  # RFC 3339, about two hours ahead
        assert ends == window["until"]
        table = (await service.cli("status", "-o", "table", env=READER)).stdout.splitlines()
        assert table[:2] == ["automation: running", "maintenance windows:"]
        assert table[3].split()[:2] == [window_id, "namespace:shop"] and "PostgreSQL 16 upgrade" in table[3]

        ended = await service.cli("resume", "--window", window_id, env=ALICE)
        assert ended.returncode == 0, ended.stderr
        assert ended.stdout.strip() == f"maintenance window {window_id} (namespace:shop) ended by alice"
        assert (await service.json("status"))["windows"] == []
        again = await service.cli("resume", "--window", window_id, env=ALICE)
        assert again.returncode == 1 and "404" in again.stderr

        bad_scope = await service.cli("pause", "--scope", "cluster:everything", "--until", "1h", env=ALICE)
        assert bad_scope.returncode == 1 and "scope" in bad_scope.stderr, "the service refuses: exit 1"
        assert (await service.json("status"))["windows"] == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--scope", "namespace:shop"], "--scope and --until go together"),
        (["--until", "1h"], "--scope and --until go together"),
        (["--reason", "upgrade"], "--reason goes with --scope"),
        (["--scope", "namespace:shop", "--until", "2020-01-01T00:00:00Z"], "not in the future"),
        (["--scope", "namespace:shop", "--until", "2030-01-01T00:00:00"], "no time zone"),
        (["--scope", "namespace:shop", "--until", "soon"], "RFC 3339"),
    ],
)
async def test_a_window_the_command_line_cannot_mean_is_a_usage_error(
    make_settings: Any, args: list[str], says: str
) -> None:
    settings = make_settings(approver_tokens=f"alice={ALICE_TOKEN}")
    async with running(create_app(settings)) as service:
        result = await service.cli("pause", *args, env=ALICE)
        assert result.returncode == 2 and says in result.stderr
        state = await service.json("status")
        assert state["paused"] is False and state["windows"] == [], "nothing was sent"


def test_until_takes_rfc3339_with_a_zone_or_a_duration() -> None:
    now = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    assert automation.until("90m", now=now) == "2027-01-15T09:30:00Z"
    assert automation.until("1h30m", now=now) == "2027-01-15T09:30:00Z"
    assert automation.until("1d", now=now) == "2027-01-16T08:00:00Z"
    assert automation.until("2027-01-15T10:00:00+01:00", now=now) == "2027-01-15T09:00:00Z"
    with pytest.raises(client.Usage):
        automation.until("0m", now=now)
