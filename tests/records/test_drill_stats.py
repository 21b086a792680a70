"""Runbook drills in the monthly review: drill incidents count for nothing in ``rules list``'s statistics, the
last drill shows beside each rule, and ``rules lint --store-url`` warns about rules not drilled for a
quarter (and says when it could not check)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from service import cli
from service.records import schema, stats
from service.records.store import Store
from tests.records.test_stats import incident

DAY = 86400.0
RULE = """\
name: {name}
runbook: Web Outage
runbook_url: https://runbooks.example/{name}
owner: team-web
reviewed: {reviewed}
mttr_target: 2m
match: ['alertname="WebDown"']
target: {{kind: Deployment, namespace: default, name: web}}
"""


def drill(number: int, rule: str, *, opened: float) -> dict[str, Any]:
    """A drill incident as a drill leaves it: mitigated in a few seconds (nothing written), then resolved."""
    return {
        **incident(number, rule, opened=opened, mitigated=opened + 5, resolved=opened + 10),
        "drill": True,
    }


def seed(url: str, rows: list[dict[str, Any]]) -> None:
    async def run() -> None:
        store = Store.open(url)
        try:
            await store.migrate()
            async with store.write() as conn:
                await conn.execute(sa.insert(schema.incidents), rows)
        finally:
            await store.close()

    asyncio.run(run())


def rules_dir(tmp_path: Path, *names: str) -> Path:
    directory = tmp_path / "rules"
    directory.mkdir()
    for name in names:
        (directory / f"{name}.yaml").write_text(RULE.format(name=name, reviewed=date.today().isoformat()))
    return directory


@pytest.fixture
def drilled_store(tmp_path: Path) -> tuple[str, float]:
    """``web-outage``: one real incident escalated and resolved after 10 min, and two drills (10 and 3 days
    ago); ``db-outage``: a drill 100 days ago only."""
    now = time.time()
    url = f"sqlite:///{tmp_path / 'drills.db'}"
    hour_ago = now - 3600
    seed(
        url,
        [
            {  # every row names the same columns: one executemany
                **incident(
                    1, "web-outage", opened=hour_ago, escalated=hour_ago + 30, resolved=hour_ago + 600
                ),
                "drill": False,
            },
            drill(2, "web-outage", opened=now - 10 * DAY),
            drill(3, "web-outage", opened=now - 3 * DAY),
            drill(4, "db-outage", opened=now - 100 * DAY),
        ],
    )
    return url, now


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


async def read(url: str, now: float) -> tuple[dict[str, stats.RuleStats], dict[str, float]]:
    store = Store.open(url)
    try:
        return await stats.rule_stats(store, since=now - 30 * DAY, now=now), await stats.last_drills(store)
    finally:
        await store.close()


def test_drills_count_for_nothing_in_the_monthly_statistics(drilled_store: tuple[str, float]) -> None:
    url, now = drilled_store
    by_rule, drills = asyncio.run(read(url, now))
    web = by_rule["web-outage"]
    # only the real incident: the drills' quick "mitigations" would have hidden a 10-minute outage
    assert (web.fired, web.mitigated, web.escalated, web.mttr_s, web.over_target) == (1, 0, 1, 600.0, 1)
    assert "db-outage" not in by_rule
    assert drills == {"web-outage": pytest.approx(now - 3 * DAY), "db-outage": pytest.approx(now - 100 * DAY)}


def test_rules_list_shows_the_last_drill(
    tmp_path: Path, drilled_store: tuple[str, float], capsys: pytest.CaptureFixture[str]
) -> None:
    url, now = drilled_store
    directory = rules_dir(tmp_path, "db-outage", "web-outage", "cache-outage")
    args = ["rules", "list", "--rules-dir", str(directory), "--store-url", url]

    assert cli.main([*args, "-o", "json"]) == 0
    rows = {row["rule"]: row for row in json.loads(capsys.readouterr().out)["rules"]}
    assert rows["web-outage"]["last_drill"][:10] == day_of(now - 3 * DAY)
    assert (rows["web-outage"]["drill_age_days"], rows["web-outage"]["drill_due"]) == (3, False)
    assert (rows["web-outage"]["fired"], rows["web-outage"]["escalated"]) == (1, 1)
    assert (rows["db-outage"]["drill_age_days"], rows["db-outage"]["drill_due"]) == (100, True)
    assert rows["db-outage"]["fired"] == 0
    assert (rows["cache-outage"]["last_drill"], rows["cache-outage"]["drill_due"]) == (None, True)

    assert cli.main([*args, "-o", "table"]) == 0
    header, *lines, footer = capsys.readouterr().out.splitlines()
    table = {line.split()[0]: line.split() for line in lines}
    assert header.split()[4] == "DRILLED"
    assert table["web-outage"][4] == day_of(now - 3 * DAY) and table["web-outage"][11:] == []
    assert table["db-outage"][4] == day_of(now - 100 * DAY) and table["db-outage"][11:] == ["DRILL", "DUE"]
    assert table["cache-outage"][4] == "never"
    assert "drills left out" in footer


def test_lint_with_a_store_warns_about_rules_not_drilled_for_a_quarter(
    tmp_path: Path, drilled_store: tuple[str, float], capsys: pytest.CaptureFixture[str]
) -> None:
    url, now = drilled_store
    directory = rules_dir(tmp_path, "db-outage", "web-outage", "cache-outage")

    assert cli.main(["rules", "lint", str(directory), "--store-url", url]) == 0  # warnings only
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{directory / 'cache-outage.yaml'}:1: warning: rule 'cache-outage' was never drilled: the runbooks ask"
        " for a test every quarter; run remediator drill cache-outage",
        f"{directory / 'db-outage.yaml'}:1: warning: rule 'db-outage' last drilled on {day_of(now - 100 * DAY)},"
        " 100 days ago (more than 92: the runbooks ask for a test every quarter); run remediator drill db-outage",
        "ok: 3 rule file(s), 2 warning(s); drills checked against the store",
    ]


def test_lint_reads_the_store_named_by_the_environment(
    tmp_path: Path,
    drilled_store: tuple[str, float],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, _ = drilled_store
    directory = rules_dir(tmp_path, "web-outage")
    monkeypatch.setenv("REMEDIATOR_STORE_URL", url)
    assert cli.main(["rules", "lint", str(directory)]) == 0
    assert capsys.readouterr().out == "ok: 1 rule file(s), 0 warning(s); drills checked against the store\n"


def test_lint_without_a_store_says_the_drill_check_was_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REMEDIATOR_STORE_URL", raising=False)
    directory = rules_dir(tmp_path, "web-outage")
    assert cli.main(["rules", "lint", str(directory)]) == 0
    assert capsys.readouterr().out == (
        "ok: 1 rule file(s), 0 warning(s); drill check skipped: no store to read the drills from"
        " (--store-url or REMEDIATOR_STORE_URL)\n"
    )


def test_lint_fails_on_a_rule_not_revised_for_a_year(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REMEDIATOR_STORE_URL", raising=False)
    directory = rules_dir(tmp_path)
    reviewed = date.today() - timedelta(days=400)
    (directory / "old.yaml").write_text(RULE.format(name="old", reviewed=reviewed.isoformat()))
    assert cli.main(["rules", "lint", str(directory)]) == 1
    out, err = capsys.readouterr()
    assert (
        f"old.yaml:5: error: rule last reviewed on {reviewed.isoformat()}, 400 days ago (more than 366)"
        in out
    )
    assert err.strip() == "1 error(s)"
