"""``remediator rules lint|test|list``: rule files checked, their unit tests run, and per rule its owner,
review age, last drill and the last 30 days of incidents, drills left out (read from the store, not from a
running service).

``lint`` keeps the runbooks' maintenance clock: monthly review and yearly revision from each rule's
``reviewed:`` date, and the quarterly drill from the store's drill incidents when a store is named
(``--store-url`` or ``REMEDIATOR_STORE_URL``); without one it says that the drill check was skipped."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service import errors
from service.cli import output, server

if TYPE_CHECKING:
    from service.matching.compiled import CompiledRule
    from service.records import stats

#: The window of ``rules list``: the monthly runbook review looks at the last 30 days.
STATS_WINDOW_DAYS = 30


def cmd_lint(args: argparse.Namespace) -> int:
    from service import registries
    from service.matching import loader

    directory = Path(args.directory)
    drills: dict[str, date] | None = None
    if args.store_url:
        try:
            last = asyncio.run(_last_drills(args.store_url))
        except errors.StoreUnavailable as exc:
            print(f"remediator: cannot check drills, store unavailable: {exc}", file=sys.stderr)
            return 1
        drills = {rule: datetime.fromtimestamp(at, UTC).date() for rule, at in last.items()}
    problems = loader.lint(directory, catalogue=registries.catalogue(), today=date.today(), drills=drills)
    for problem in problems:
        print(problem)
    errors_found = [p for p in problems if p.severity == "error"]
    if errors_found:
        print(f"{len(errors_found)} error(s)", file=sys.stderr)
        return 1
    files = sorted(p for p in directory.glob("*.y*ml")) if directory.is_dir() else []
    drilled = (
        "drills checked against the store"
        if drills is not None
        else "drill check skipped: no store to read the drills from (--store-url or REMEDIATOR_STORE_URL)"
    )
    print(f"ok: {len(files)} rule file(s), {len(problems)} warning(s); {drilled}")
    return 0


async def _last_drills(url: str) -> dict[str, float]:
    from service.records import stats
    from service.records.store import Store

    store = Store.open(url)
    try:
        await store.migrate()
        return await stats.last_drills(store)
    finally:
        await store.close()


def cmd_test(args: argparse.Namespace) -> int:
    from service import registries, ruletests
    from service.matching import loader

    directory = Path(args.rules_dir)
    try:
        rules = loader.load_rules(directory, catalogue=registries.catalogue())
    except loader.RuleLoadError as exc:
        print(f"remediator: rules in {directory} are invalid:\n{exc}", file=sys.stderr)
        return 2
    return ruletests.run([Path(f) for f in args.files], rules, out=sys.stdout, err=sys.stderr)


def cmd_list(args: argparse.Namespace) -> int:
    from service import registries
    from service.matching import loader

    settings = server.settings_or_exit(args)
    try:
        rules = loader.load_rules(settings.rules_dir, catalogue=registries.catalogue())
    except loader.RuleLoadError as exc:
        print(f"remediator: rules in {settings.rules_dir} are invalid:\n{exc}", file=sys.stderr)
        return 1
    now = time.time()
    since = now - STATS_WINDOW_DAYS * 86400
    try:
        by_rule, drills = asyncio.run(
            _stats(settings.store_url, settings.store_timeout_s, since=since, now=now)
        )
    except errors.StoreUnavailable as exc:
        print(f"remediator: store unavailable: {exc}", file=sys.stderr)
        return 1
    rows = [_row(compiled, by_rule, drills, date.today()) for compiled in rules.rules]
    if output.chosen(args) == "json":
        window = {"days": STATS_WINDOW_DAYS, "since": output.iso(since), "now": output.iso(now)}
        output.print_json({"window": window, "rules": rows})
        return 0
    _print_table(rows)
    print(
        f"window: last {STATS_WINDOW_DAYS} days, drills left out; MTTR: median time to mitigate (else"
        " resolve); DRILLED: the last runbook drill"
    )
    return 0


async def _stats(
    url: str, timeout_s: float, *, since: float, now: float
) -> tuple[dict[str, stats.RuleStats], dict[str, float]]:
    from service.records import stats
    from service.records.store import Store

    store = Store.open(url, timeout_s=timeout_s)
    try:
        await store.migrate()
        return await stats.rule_stats(store, since=since, now=now), await stats.last_drills(store)
    finally:
        await store.close()


def _row(
    compiled: CompiledRule, by_rule: dict[str, stats.RuleStats], drills: dict[str, float], today: date
) -> dict[str, Any]:
    from service.matching import loader
    from service.records import stats

    rule = compiled.rule
    age = (today - rule.reviewed).days if rule.reviewed is not None else None
    entry = by_rule.get(rule.name, stats.RuleStats())
    drilled = drills.get(rule.name)
    drill_age = (today - datetime.fromtimestamp(drilled, UTC).date()).days if drilled is not None else None
    return {
        "rule": rule.name,
        "file": compiled.file,
        "owner": rule.owner,
        "reviewed": rule.reviewed.isoformat() if rule.reviewed is not None else None,
        "review_age_days": age,
        "review_due": age is None or age > loader.REVIEW_MAX_AGE_DAYS,
        "last_drill": output.iso(drilled) if drilled is not None else None,
        "drill_age_days": drill_age,
        "drill_due": drill_age is None or drill_age > loader.DRILL_MAX_AGE_DAYS,
        "fired": entry.fired,
        "mitigated": entry.mitigated,
        "escalated": entry.escalated,
        "mttr_s": entry.mttr_s,
        "mttr_target_s": rule.mttr_target.total_seconds(),
        "over_target": entry.over_target,
    }


_HEADER = (
    "RULE", "OWNER", "REVIEWED", "AGE", "DRILLED", "FIRED", "MITIGATED", "ESCALATED", "MTTR", "TARGET", "OVER"
)  # fmt: skip


def _print_table(rows: list[dict[str, Any]]) -> None:
    lines = []
    for row in rows:
        age = row["review_age_days"]
        lines.append(
            (
                row["rule"],
                row["owner"] or "-",
                row["reviewed"] or "never",
                f"{age}d" if age is not None else "-",
                row["last_drill"][:10] if row["last_drill"] else "never",
                str(row["fired"]),
                str(row["mitigated"]),
                str(row["escalated"]),
                output.duration(row["mttr_s"]),
                output.duration(row["mttr_target_s"]),
                str(row["over_target"]),
                _due(row),
            )
        )
    output.print_table((*_HEADER, ""), lines, numeric=frozenset({3, 5, 6, 7, 8, 9, 10}))


def _due(row: dict[str, Any]) -> str:
    """``REVIEW DUE`` (monthly review), ``DRILL DUE`` (quarterly drill), both, or nothing."""
    due = [name for name in ("review", "drill") if row[f"{name}_due"]]
    return ", ".join(f"{name.upper()} DUE" for name in due)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rules = sub.add_parser("rules", help="rule tools").add_subparsers(dest="rules_command", required=True)
    lint = rules.add_parser("lint", help="check rule files; prints file:line for every problem")
    lint.add_argument("directory", nargs="?", default=os.environ.get("REMEDIATOR_RULES_DIR", "rules"))
    lint.add_argument(
        "--store-url",
        default=os.environ.get("REMEDIATOR_STORE_URL") or None,
        help="read each rule's last drill from this store and warn after 92 days [REMEDIATOR_STORE_URL]",
    )
    lint.set_defaults(func=cmd_lint)
    rtest = rules.add_parser(
        "test", help="run rule unit tests (*.test.yaml): alert and findings → expected plan"
    )
    rtest.add_argument(
        "--rules-dir", default=os.environ.get("REMEDIATOR_RULES_DIR", "rules"), help="[REMEDIATOR_RULES_DIR]"
    )
    rtest.add_argument("files", nargs="+", metavar="FILE")
    rtest.set_defaults(func=cmd_test)
    rlist = rules.add_parser(
        "list", help="per rule: owner, review age, last drill, last 30 days of incidents and MTTR"
    )
    server.add_settings_flags(rlist)
    output.add_flag(rlist)
    rlist.set_defaults(func=cmd_list)
