"""Findings rounds on both stores: every round kept with its phase, the newest returned oldest first; and
rows stored before migration 0005 get their phase, their action's round and an empty inbox rule."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from service.model import incidents
from service.records import findings
from service.records import store as store_module
from service.records.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'findings.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(url: str) -> Any:
    store = Store.open(url)
    await store.migrate()
    yield store
    await store.close()


def finding(status: str, summary: str) -> incidents.Finding:
    return incidents.Finding(id="pods", probe="kube.pods", status=status, summary=summary, duration_ms=1.0)


async def test_every_round_is_kept_with_its_phase(store: Store) -> None:
    now = time.time()
    async with store.write() as conn:
        assert await findings.record(conn, "i1", [], phase="diagnosis", now=now) is None, "nothing ran"
        first = await findings.record(
            conn, "i1", [finding("failed", "0/3 ready")], phase="diagnosis", now=now
        )
        again = await findings.record(
            conn, "i1", [finding("failed", "0/3 ready")], phase="diagnosis", now=now
        )
        verified = await findings.record(
            conn, "i1", [finding("ok", "3/3 ready")], phase="verification", now=now + 1
        )
        await findings.record(conn, "other", [finding("ok", "elsewhere")], phase="diagnosis", now=now)
    async with store.read() as conn:
        kept = await findings.rounds(conn, "i1")
    assert (first, again, verified) == (1, 2, 3)
    assert [(r["round"], r["phase"]) for r in kept] == [
        (1, "diagnosis"),
        (2, "re-diagnosis"),  # the diagnosis ran again (the process died after storing the first)
        (3, "verification"),
    ]
    assert [[f["summary"] for f in r["findings"]] for r in kept] == [
        ["0/3 ready"],
        ["0/3 ready"],
        ["3/3 ready"],
    ]
    assert kept[0]["at"] < kept[2]["at"]


async def test_the_newest_rounds_are_returned_oldest_first(store: Store) -> None:
    async with store.write() as conn:
        for n in range(1, findings.MAX_ROUNDS + 6):
            await findings.record(conn, "i1", [finding("ok", f"check {n}")], phase="verification", now=n)
    async with store.read() as conn:
        kept = await findings.rounds(conn, "i1")
    assert [r["round"] for r in kept] == list(range(6, findings.MAX_ROUNDS + 6))
    assert kept[-1]["findings"][0]["summary"] == f"check {findings.MAX_ROUNDS + 5}"


async def test_rows_stored_before_rounds_get_their_phase_and_round(url: str) -> None:
    store = Store.open(url)
    try:
        async with store.write() as conn:
            await conn.run_sync(upgrade_to, "0004")
            for incident, round_ in (("i1", 1), ("i1", 2)):
                await conn.execute(
                    sa.text(
                        "INSERT INTO findings (incident_id, round, probe_id, probe, status, summary, facts,"
                        " evidence, duration_ms, at) VALUES (:i, :r, 'pods', 'kube.pods', 'ok', 's', '{}',"
                        " '', 1.0, 1.0)"
                    ),
                    {"i": incident, "r": round_},
                )
            for action_id, incident in (("a1", "i1"), ("a2", "i2")):  # i2: no probe ever ran
                await conn.execute(
                    sa.text(
                        "INSERT INTO actions (id, incident_id, idx, action, safety, status, params, dry_run,"
                        " requested_at) VALUES (:a, :i, 0, 'kube.rollout_restart', 'safe', 'succeeded', '{}',"
                        " false, 1.0)"
                    ),
                    {"a": action_id, "i": incident},
                )
            await conn.execute(
                sa.text(
                    "INSERT INTO inbox (fingerprint, starts_at, status, alertname, payload, receiver,"
                    " group_key, truncated, received_at, state, attempts) VALUES ('fp', 's', 'firing', 'A',"
                    " '{}', 'r', '', 0, 1.0, 'pending', 0)"
                )
            )
        await store.migrate()
        assert await store.at_head()
        async with store.read() as conn:
            phases = await conn.execute(sa.text("SELECT round, phase FROM findings ORDER BY round"))
            assert phases.all() == [(1, "diagnosis"), (2, "verification")]
            rounds = await conn.execute(sa.text("SELECT id, round FROM actions ORDER BY id"))
            assert rounds.all() == [("a1", 1), ("a2", None)]
            assert await conn.scalar(sa.text("SELECT rule FROM inbox")) is None
    finally:
        await store.close()


def upgrade_to(sync_conn: sa.Connection, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(store_module.MIGRATIONS))
    config.attributes["connection"] = sync_conn
    command.upgrade(config, revision)
