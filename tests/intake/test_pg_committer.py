"""Intake's group commit on PostgreSQL through its own asyncpg connection, with replicas: an alert sent to two
replicas at once is stored once and counted once; a stopped PostgreSQL answers 503 and loses nothing once it
is back; a commit wakes the other replicas' dispatchers at once."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from service import errors
from service.intake.committer import GroupCommitter
from service.records import inbox, pg_intake, schema, wakeups
from service.records.store import Store
from tests.support import procs


def row(fingerprint: str, **values: Any) -> dict[str, Any]:
    return {
        "fingerprint": fingerprint,
        "starts_at": "2026-12-06T10:00:00.000000Z",
        "status": "firing",
        "alertname": "A",
        "payload": '{"labels": {"alertname": "A"}}',
        "receiver": "r",
        "group_key": "{}:{}",
        "truncated": 0,
        "received_at": time.time(),
        "state": inbox.PENDING,
        "attempts": 0,
        "outcome": None,
        "processed_at": None,
        "rule": "r1",
        **values,
    }


async def replica(url: str, on_commit: Any = lambda: None) -> tuple[Store, GroupCommitter]:
    store = Store.open(url, timeout_s=1)
    await store.migrate()
    committer = GroupCommitter(store, on_commit=on_commit, dsn=url)
    committer.start()
    return store, committer


async def close(store: Store, committer: GroupCommitter) -> None:
    await committer.stop()
    await store.close()


async def stored(store: Store) -> list[tuple[Any, ...]]:
    t = schema.inbox
    query = sa.select(t.c.fingerprint, t.c.state, t.c.rule, t.c.drill, t.c.payload).order_by(t.c.fingerprint)
    async with store.read() as conn:
        return [tuple(r) for r in (await conn.execute(query)).all()]


@pytest.fixture
async def two(postgres_url: str) -> AsyncIterator[tuple[GroupCommitter, GroupCommitter, Store]]:
    one, first = await replica(postgres_url)
    other, second = await replica(postgres_url)
    try:
        yield first, second, one
    finally:
        await close(one, first)
        await close(other, second)


async def test_alerts_sent_to_two_replicas_at_once_are_stored_and_counted_once(
    two: tuple[GroupCommitter, GroupCommitter, Store],
) -> None:
    first, second, store = two
    # Alertmanager's HA pair: every group sent to both replicas, each POST a few alerts, many POSTs at once
    posts = [[row(f"fp-{n}-{i}") for i in range(5)] for n in range(40)]
    sends = [c.submit(rows, timeout=10) for rows, c in itertools.product(posts, (first, second))]
    results = await asyncio.gather(*sends)
    assert sum(r.accepted for r in results) == 200, "every alert accepted by exactly one replica"
    assert sum(r.duplicates for r in results) == 200, "and counted as a duplicate by the other"
    rows = await stored(store)
    assert len(rows) == 200
    assert rows[0] == ("fp-0-0", inbox.PENDING, "r1", False, '{"labels": {"alertname": "A"}}')


async def test_a_duplicate_within_one_request_is_counted_and_an_unmatched_alert_is_stored_decided(
    two: tuple[GroupCommitter, GroupCommitter, Store],
) -> None:
    first, _, store = two
    unmatched = row("quiet", state=inbox.DONE, outcome="unmatched", processed_at=time.time(), rule=None)
    result = await first.submit([row("loud"), row("loud"), unmatched], timeout=10)
    assert (result.accepted, result.duplicates, result.decided) == (2, 1, 1)
    assert [(r[0], r[1], r[2]) for r in await stored(store)] == [
        ("loud", inbox.PENDING, "r1"),
        ("quiet", inbox.DONE, None),
    ]


async def test_a_stopped_postgresql_answers_unavailable_and_nothing_is_lost_once_it_is_back(
    tmp_path: Path,
) -> None:
    with procs.start_postgres(tmp_path / "pg") as pg:
        store, committer = await replica(pg.dsn)
        try:
            assert (await committer.submit([row("before")], timeout=5)).accepted == 1
            await asyncio.to_thread(pg.stop)
            with pytest.raises(errors.StoreUnavailable):
                await committer.submit([row("during-1"), row("during-2")], timeout=5)
            await asyncio.to_thread(pg.start)
            again = await committer.submit(
                [row("during-1"), row("during-2")], timeout=5
            )  # the sender retries
            assert (again.accepted, again.duplicates) == (2, 0)
            assert [r[0] for r in await stored(store)] == ["before", "during-1", "during-2"]
        finally:
            await close(store, committer)


async def test_a_commit_wakes_another_replicas_dispatcher_when_there_is_work(
    two: tuple[GroupCommitter, GroupCommitter, Store], postgres_url: str
) -> None:
    first, _, _ = two
    woken = asyncio.Event()
    listener = wakeups.InboxListener(postgres_url, woken.set)  # the second replica's
    listener.start()
    try:
        await asyncio.wait_for(woken.wait(), 10)  # connected (it catches up once on connecting)
        woken.clear()
        unmatched = row("quiet", state=inbox.DONE, outcome="unmatched", processed_at=time.time(), rule=None)
        await first.submit([unmatched], timeout=5)
        await asyncio.sleep(0.3)
        assert not woken.is_set(), "an alert decided at intake is no work for a dispatcher"
        await first.submit([row("work")], timeout=5)
        await asyncio.wait_for(woken.wait(), 2)
        woken.clear()
        await first.submit([row("work")], timeout=5)  # a duplicate: nothing new
        await asyncio.sleep(0.3)
        assert not woken.is_set()
    finally:
        await listener.stop()


async def test_one_batch_of_several_requests_stores_each_row_with_its_own_values_in_order(
    postgres_url: str,
) -> None:
    """The values a request's rows share travel once per batch (the row carries an index into them): every
    stored row must still hold its own request's receiver, time and state, in the order the rows came."""
    store = Store.open(postgres_url, timeout_s=1)
    await store.migrate()
    inserter = pg_intake.Inserter(postgres_url, connect_timeout_s=5, statement_timeout_s=5)
    try:
        rows = [
            row("a1", receiver="team-a", received_at=100.0),
            row("b1", receiver="team-b", received_at=200.5, truncated=3),
            row(
                "a2",
                receiver="team-a",
                received_at=100.0,
                state=inbox.DONE,
                outcome="unmatched",
                processed_at=100.0,
                rule=None,
            ),
            row("b2", receiver="team-b", received_at=200.5, truncated=3, drill=True),
            row("a3", receiver="team-a", received_at=100.0),
        ]
        assert await inserter.insert(rows) is None  # every row new: only the count comes back
        # again, with one new row: the keys of the new rows come back, not those already stored
        again = [row("a1", receiver="x"), row("c1", receiver="team-c", received_at=300.0)]
        assert await inserter.insert(again) == {("c1", "2026-12-06T10:00:00.000000Z", "firing")}
        t = schema.inbox
        columns = [t.c.fingerprint, t.c.receiver, t.c.received_at, t.c.truncated, t.c.state, t.c.outcome]
        columns += [t.c.processed_at, t.c.rule, t.c.drill]
        async with store.read() as conn:
            stored_rows = [tuple(r) for r in (await conn.execute(sa.select(*columns).order_by(t.c.id))).all()]
        assert stored_rows == [
            ("a1", "team-a", 100.0, 0, "pending", None, None, "r1", False),
            ("b1", "team-b", 200.5, 3, "pending", None, None, "r1", False),
            ("a2", "team-a", 100.0, 0, "done", "unmatched", 100.0, None, False),
            ("b2", "team-b", 200.5, 3, "pending", None, None, "r1", True),
            ("a3", "team-a", 100.0, 0, "pending", None, None, "r1", False),
            ("c1", "team-c", 300.0, 0, "pending", None, None, "r1", False),
        ]
    finally:
        await inserter.close()
        await store.close()
