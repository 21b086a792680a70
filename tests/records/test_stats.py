"""Rule statistics for the monthly review, on a real SQLite store, and ``rules list`` showing them."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from service import cli
from service.records import schema, stats
from service.records.store import Store

DAY = 86400.0
RULE = """\
name: web-outage
runbook: Web Outage
owner: team-web
reviewed: {reviewed}
mttr_target: 2m
match: ['alertname="WebDown"']
target: {{kind: Deployment, namespace: default, name: web}}
"""


def incident(
    number: int,
    rule: str,
    *,
    opened: float,
    mitigated: float | None = None,
    resolved: float | None = None,
    escalated: float | None = None,
) -> dict[str, Any]:
    state = "mitigated" if mitigated else "resolved" if resolved else "escalated" if escalated else "open"
    return {
        "id": f"inc{number}",
        "rule": rule,
        "open_key": None,
        "target_kind": "Deployment",
        "target_namespace": "default",
        "target_name": "web",
        "target_valid": True,
        "state": state,
        "severity": "critical",
        "runbook": "Web Outage",
        "mttr_target_s": 120.0,
        "escalation_level": 1,
        "opened_at": opened,
        "escalated_at": escalated,
        "mitigated_at": mitigated,
        "resolved_at": resolved,
        "updated_at": opened,
    }


def seed(url: str, now: float) -> None:
    hour_ago = now - 3600
    rows = [
        incident(1, "web-outage", opened=hour_ago, mitigated=hour_ago + 60),  # within target
        incident(2, "web-outage", opened=hour_ago, mitigated=hour_ago + 90),  # within target
        # escalated, then resolved by a human after 10 min: over target
        incident(3, "web-outage", opened=hour_ago, escalated=hour_ago + 30, resolved=hour_ago + 600),
        incident(4, "web-outage", opened=now - 2 * DAY, escalated=now - 2 * DAY + 30),  # still open
        incident(5, "web-outage", opened=now - 40 * DAY, mitigated=now - 40 * DAY + 5000),  # too old
        incident(6, "db-outage", opened=now - DAY, resolved=now - DAY + 30),
    ]

    async def run() -> None:
        store = Store.open(url)
        try:
            await store.migrate()
            async with store.write() as conn:
                await conn.execute(sa.insert(schema.incidents), rows)
        finally:
            await store.close()

    asyncio.run(run())


@pytest.fixture
def store_url(tmp_path: Path) -> tuple[str, float]:
    now = time.time()
    url = f"sqlite:///{tmp_path / 'stats.db'}"
    seed(url, now)
    return url, now


def test_counts_and_median_time_to_mitigate_over_the_last_30_days(store_url: tuple[str, float]) -> None:
    url, now = store_url

    async def read() -> dict[str, stats.RuleStats]:
        store = Store.open(url)
        try:
            return await stats.rule_stats(store, since=now - 30 * DAY, now=now)
        finally:
            await store.close()

    result = asyncio.run(read())
    web = result["web-outage"]
    assert (web.fired, web.mitigated, web.escalated, web.over_target) == (4, 2, 2, 1)
    assert web.mttr_s == 90.0  # median of 60, 90 and 600 (the open one has no duration yet)
    assert web.mttr_target_s == 120.0
    db = result["db-outage"]
    assert (db.fired, db.mitigated, db.escalated, db.mttr_s, db.over_target) == (1, 0, 0, 30.0, 0)


async def test_an_empty_window_has_no_rules(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        await store.migrate()
        assert await stats.rule_stats(store, since=0.0, now=time.time()) == {}
    finally:
        await store.close()


def test_rules_list_shows_owner_review_and_stats(
    tmp_path: Path, store_url: tuple[str, float], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = store_url
    rules = tmp_path / "rules"
    rules.mkdir()
    reviewed = date.today() - timedelta(days=45)
    (rules / "web-outage.yaml").write_text(RULE.format(reviewed=reviewed.isoformat()))
    args = ["rules", "list", "--rules-dir", str(rules), "--store-url", url]

    assert cli.main([*args, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["window"]["days"] == 30
    assert listed["rules"] == [
        {
            "rule": "web-outage",
            "file": str(rules / "web-outage.yaml"),
            "owner": "team-web",
            "reviewed": reviewed.isoformat(),
            "review_age_days": 45,
            "review_due": True,
            "last_drill": None,
            "drill_age_days": None,
            "drill_due": True,
            "fired": 4,
            "mitigated": 2,
            "escalated": 2,
            "mttr_s": 90.0,
            "mttr_target_s": 120.0,
            "over_target": 1,
        }
    ]

    assert cli.main([*args, "-o", "table"]) == 0
    header, row, footer = capsys.readouterr().out.splitlines()
    assert header.split() == [
        "RULE", "OWNER", "REVIEWED", "AGE", "DRILLED", "FIRED", "MITIGATED", "ESCALATED", "MTTR", "TARGET", "OVER"
    ]  # fmt: skip
    assert row.split() == [
        "web-outage", "team-web", reviewed.isoformat(), "45d", "never", "4", "2", "2", "1m30s", "2m00s", "1",
        "REVIEW", "DUE,", "DRILL", "DUE",
    ]  # fmt: skip
    assert header.index("OVER") + len("OVER") == row.index(" 1  REVIEW") + 2  # columns aligned
    assert footer.startswith("window: last 30 days")


def test_rules_list_on_a_fresh_store_migrates_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "web-outage.yaml").write_text(RULE.format(reviewed=date.today().isoformat()))
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert cli.main(["rules", "list", "--rules-dir", str(rules), "--store-url", url, "--json"]) == 0
    (only,) = json.loads(capsys.readouterr().out)["rules"]
    assert (only["fired"], only["mttr_s"], only["review_due"]) == (0, None, False)
