"""Intake's group commit on PostgreSQL: one request whose rows PostgreSQL refuses fails alone, the requests
committed with it are stored; a store that is down fails them all with StoreUnavailable (a 503: retried)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from service import errors
from service.intake.committer import GroupCommitter
from service.records.store import Store
from tests.support import inbox_rows


def row(fingerprint: str, **values: Any) -> dict[str, Any]:
    return inbox_rows.inbox_row(fingerprint, **values)


@pytest.fixture
async def committer(postgres_url: str) -> AsyncIterator[GroupCommitter]:
    store = Store.open(postgres_url)
    await store.migrate()
    committer = GroupCommitter(store, on_commit=lambda: None, dsn=postgres_url)
    committer.start()
    try:
        yield committer
    finally:
        await committer.stop()
        await store.close()


@pytest.mark.parametrize(
    "bad",
    [{"truncated": 2**31}, {"truncated": 2**63}, {"group_key": "a\x00b"}, {"fingerprint": "f\x00"}],
)
async def test_a_request_whose_rows_postgresql_refuses_fails_alone(
    committer: GroupCommitter, bad: dict[str, Any]
) -> None:
    with capture_logs() as logs:
        results = await asyncio.gather(
            committer.submit([row("good-1")], timeout=10),
            committer.submit([row("good-2"), {**row("bad"), **bad}], timeout=10),
            committer.submit([row("good-3")], timeout=10),
            return_exceptions=True,
        )
    assert [e["event"] for e in logs if e["event"].startswith("intake.")] == [
        "intake.batch_split",
        "intake.rows_refused",
    ], "one batch, split once"
    assert [type(r).__name__ for r in results] == ["Committed", "Permanent", "Committed"]
    again = await committer.submit([row("good-1"), row("good-2"), row("good-3")], timeout=10)
    assert (again.accepted, again.duplicates) == (1, 2), "good-2 was not stored with the bad row"


async def test_a_store_that_is_down_fails_the_whole_batch_as_unavailable(postgres_url: str) -> None:
    missing = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    store = Store.open(missing, timeout_s=1)
    committer = GroupCommitter(store, on_commit=lambda: None, dsn=missing)
    committer.start()
    try:
        results = await asyncio.gather(
            committer.submit([row("a")], timeout=10),
            committer.submit([row("b")], timeout=10),
            return_exceptions=True,
        )
    finally:
        await committer.stop()
        await store.close()
    assert all(isinstance(r, errors.StoreUnavailable) for r in results), results
