"""``remediator prune [--dry-run] [--vacuum]``: apply retention now, on the store directly (the settings flags
of ``migrate``), and print what it removed — or, with ``--dry-run``, would remove — per table.

The background task of ``serve`` does the same every ``retention_interval_s``; this is for an operator who
wants it now, or who switches an older, large SQLite database to incremental auto-vacuum (``--vacuum``: a
full ``VACUUM`` that rewrites the file; best while the service is stopped or quiet).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from service import errors
from service.cli import output, server
from service.records import retention
from service.records.store import Store
from service.settings import Settings


async def _prune(settings: Settings, *, dry_run: bool, vacuum: bool) -> tuple[retention.Report, list[str]]:
    store = Store.open(settings.store_url, timeout_s=settings.store_timeout_s)
    notes: list[str] = []
    try:
        if not await store.at_head():
            raise errors.ConfigError("the store is not migrated: run `remediator migrate` (or serve) first")
        path = retention.sqlite_path(settings.store_url)
        report = await retention.prune(
            store,
            cutoff=retention.cutoff_for(settings.retention_days, time.time()),
            batch=settings.retention_batch,
            dry_run=dry_run,
        )
        if not dry_run:
            notes.append(f"pages freed: {await retention.reclaim(store)}")
            if vacuum and await retention.switch_to_incremental(store):
                notes.append("auto_vacuum: switched to incremental (VACUUM)")
            elif store.dialect == "sqlite" and await retention.auto_vacuum_mode(store) != 2:
                notes.append("auto_vacuum is off: run with --vacuum once to give freed space back")
        notes.append(f"store size: {await retention.store_size(store, path)} bytes")
        return report, notes
    finally:
        await store.close()


def cmd_prune(args: argparse.Namespace) -> int:
    settings = server.settings_or_exit(args)
    if settings.retention_days == 0:
        print("retention is off (retention_days = 0): nothing to prune")
        return 0
    try:
        report, notes = asyncio.run(_prune(settings, dry_run=args.dry_run, vacuum=args.vacuum))
    except errors.StoreUnavailable as exc:
        print(f"remediator: store unavailable: {exc}", file=sys.stderr)
        return 1
    except errors.ConfigError as exc:
        print(f"remediator: {exc}", file=sys.stderr)
        return 1
    if report.skipped:
        print("another replica is pruning now (it holds the retention lock): nothing done")
        return 0
    verb = "would delete" if args.dry_run else "deleted"
    print(f"older than {settings.retention_days:g} days, {verb}:")
    output.print_table(
        ("TABLE", "ROWS"),
        ((name, str(rows)) for name, rows in report.deleted.items()),
        numeric=frozenset({1}),
    )
    for note in notes:
        print(note)
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prune = sub.add_parser(
        "prune", help="delete what is older than retention_days now, per table (the store directly)"
    )
    prune.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    prune.add_argument(
        "--vacuum",
        action="store_true",
        help="SQLite: also switch an older database to incremental auto-vacuum (a full VACUUM)",
    )
    server.add_settings_flags(prune)
    prune.set_defaults(func=cmd_prune)
