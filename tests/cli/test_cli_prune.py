"""``remediator prune``: per-table counts of what it removed (or, ``--dry-run``, would remove), on the store
directly with the settings flags of ``migrate``; ``--vacuum`` switches an older SQLite file to incremental
auto-vacuum."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from service.cli import main
from service.records.store import Store
from tests.records.test_retention import expected_gone, per_table, seed


def printed_counts(text: str) -> dict[str, int]:
    """The TABLE/ROWS table the command printed, as a dict."""
    rows = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            rows[parts[0]] = int(parts[1])
    return rows


@pytest.fixture
def old_store(tmp_path: Path) -> tuple[str, dict[str, list[str]]]:
    """A migrated SQLite store with 200 incidents resolved 120 days ago, 10 open, and auto-vacuum off (as a
    database created before incremental auto-vacuum)."""
    url = f"sqlite:///{tmp_path / 'remediator.db'}"

    async def build() -> dict[str, list[str]]:
        store = Store.open(url)
        try:
            await store.migrate()
            return await seed(store, old_resolved=200, open_=10)
        finally:
            await store.close()

    ids = asyncio.run(build())
    with sqlite3.connect(tmp_path / "remediator.db") as conn:
        conn.executescript("PRAGMA auto_vacuum=NONE; VACUUM;")
    return url, ids


def counts(url: str, ids: list[str] | None = None) -> dict[str, int]:
    async def read() -> dict[str, int]:
        store = Store.open(url)
        try:
            return await per_table(store, ids)
        finally:
            await store.close()

    return asyncio.run(read())


def test_dry_run_prints_per_table_counts_and_deletes_nothing(old_store: Any, capsys: Any) -> None:
    url, _ids = old_store
    before = counts(url)
    assert main(["prune", "--dry-run", "--store-url", url]) == 0
    out = capsys.readouterr().out
    assert "would delete" in out
    assert printed_counts(out) == expected_gone(200)
    assert counts(url) == before


def test_prune_deletes_what_it_prints_and_vacuum_gives_the_space_back(old_store: Any, capsys: Any) -> None:
    url, ids = old_store
    path = Path(url.removeprefix("sqlite:///"))
    assert main(["prune", "--store-url", url]) == 0
    out = capsys.readouterr().out
    assert printed_counts(out) == expected_gone(200)
    assert "auto_vacuum is off: run with --vacuum" in out
    assert counts(url, ids["old"]) == dict.fromkeys(expected_gone(0), 0)
    assert counts(url, ids["open"])["incidents"] == 10  # the open ones stay

    size_before = path.stat().st_size
    assert main(["prune", "--vacuum", "--store-url", url]) == 0
    out = capsys.readouterr().out
    assert sum(printed_counts(out).values()) == 0  # nothing left to delete
    assert "auto_vacuum: switched to incremental (VACUUM)" in out
    assert path.stat().st_size < size_before
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)


def test_prune_with_retention_off_or_an_unmigrated_store(tmp_path: Path, capsys: Any) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["prune", "--retention-days", "0", "--store-url", url]) == 0
    assert "retention is off" in capsys.readouterr().out
    assert main(["prune", "--store-url", url]) == 1
    assert "run `remediator migrate`" in capsys.readouterr().err
