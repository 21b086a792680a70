"""Intake's group commit on SQLite: batches of requests in one transaction, never inside a store transaction."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from service import errors
from service.records import inbox, schema
from service.records.sqlite_writer import SqliteWriter
from service.records.store import Store
from tests.support import inbox_rows


def row(fingerprint: str, status: str = "firing") -> dict[str, Any]:
    return inbox_rows.inbox_row(fingerprint, status)


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    store = Store.open(f"sqlite:///{tmp_path / 'writer.db'}")
    await store.migrate()
    assert store.start_writer() is not None
    yield store
    await store.close()


def stored(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT fingerprint, status FROM inbox ORDER BY id").fetchall()


async def test_concurrent_requests_share_commits_and_each_learns_which_rows_were_new(
    store: Store, tmp_path: Path
) -> None:
    writer = store.writer
    assert writer is not None
    first = await writer.insert_inbox([row("a"), row("b")])
    assert first == [True, True]
    # sent together: a re-send of "a", a row twice in one request, the same new row in two requests
    results = await asyncio.gather(
        writer.insert_inbox([row("a"), row("c")]),
        writer.insert_inbox([row("d"), row("d")]),
        writer.insert_inbox([row("e")]),
        writer.insert_inbox([row("e"), row("a", status="resolved")]),
    )
    assert results == [[False, True], [True, False], [True], [False, True]]
    assert stored(tmp_path / "writer.db") == [
        ("a", "firing"),
        ("b", "firing"),
        ("c", "firing"),
        ("d", "firing"),
        ("e", "firing"),
        ("a", "resolved"),
    ]


async def test_a_thousand_concurrent_requests_are_all_stored_once(store: Store, tmp_path: Path) -> None:
    writer = store.writer
    assert writer is not None
    results = await asyncio.gather(*(writer.insert_inbox([row(f"fp-{n}")]) for n in range(1000)))
    assert all(flags == [True] for flags in results)
    assert len(stored(tmp_path / "writer.db")) == 1000


async def test_intake_waits_for_an_open_store_transaction(store: Store) -> None:
    writer = store.writer
    assert writer is not None
    async with store.write() as conn:
        await inbox.insert(store, conn, [row("held")])
        pending = writer.insert_inbox([row("behind")])
        await asyncio.sleep(0.2)
        assert not pending.done()  # SQLite's write lock is this transaction's until it ends
    assert await asyncio.wait_for(pending, 5) == [True]


async def test_store_writes_and_intake_interleave_without_lock_errors(store: Store, tmp_path: Path) -> None:
    writer = store.writer
    assert writer is not None

    async def update(n: int) -> None:
        async with store.write() as conn:
            await conn.execute(
                sa.update(schema.inbox)
                .where(schema.inbox.c.fingerprint == f"fp-{n}")
                .values(state=inbox.DONE, outcome="test")
            )
            await asyncio.sleep(0)  # a transaction that yields to the loop between statements

    intake = [writer.insert_inbox([row(f"fp-{n}")]) for n in range(200)]
    await asyncio.gather(*intake, *(update(n) for n in range(200)))
    with sqlite3.connect(tmp_path / "writer.db") as conn:
        assert conn.execute("SELECT count(*) FROM inbox").fetchone() == (200,)


async def test_a_request_that_gave_up_does_not_stall_the_others(store: Store) -> None:
    writer = store.writer
    assert writer is not None
    async with store.write():
        gone = writer.insert_inbox([row("gone")])
        gone.cancel()  # its sender timed out while the store was busy
        kept = writer.insert_inbox([row("kept")])
    assert await asyncio.wait_for(kept, 5) == [True]


async def test_a_broken_database_is_store_unavailable_not_a_crash(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "empty.db").close()  # no inbox table
    writer = SqliteWriter(str(tmp_path / "empty.db"), busy_timeout_s=1, busy=lambda: False)
    writer.start()
    try:
        with pytest.raises(errors.StoreUnavailable, match="no such table"):
            await writer.insert_inbox([row("a")])
        with pytest.raises(errors.Permanent, match="not inbox columns"):  # the rows, not the database
            await writer.insert_inbox([{**row("b"), "bogus": 1}])
    finally:
        await writer.stop()


@pytest.mark.parametrize(
    ("column", "value"),
    [("truncated", 2**63), ("truncated", 2**64), ("payload", object()), ("fingerprint", None)],
)
async def test_a_request_whose_rows_are_refused_fails_alone(
    store: Store, tmp_path: Path, column: str, value: object
) -> None:
    """One request holding a value the database refuses (an integer over 64 bits, a type it cannot bind,
    a NULL in a NOT NULL column) used to fail every request of its group commit; now only itself."""
    writer = store.writer
    assert writer is not None
    with capture_logs() as logs:
        results = await asyncio.gather(
            writer.insert_inbox([row("good-1")]),
            writer.insert_inbox([row("good-2"), {**row("bad"), column: value}]),
            writer.insert_inbox([row("good-3")]),
            return_exceptions=True,
        )
    assert [e["requests"] for e in logs if e["event"] == "intake.batch_split"] == [3], "one batch"
    assert results[0] == [True] and results[2] == [True]
    assert isinstance(results[1], errors.Permanent)
    assert sorted(stored(tmp_path / "writer.db")) == [
        ("good-1", "firing"),
        ("good-3", "firing"),
    ]
    assert await writer.insert_inbox([row("after")]) == [True], "the writer goes on"


async def test_after_stop_intake_is_refused_with_store_unavailable(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'stop.db'}")
    await store.migrate()
    writer = store.start_writer()
    assert writer is not None
    await store.close()
    with pytest.raises(errors.StoreUnavailable):
        writer.insert_inbox([row("late")])
