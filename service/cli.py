"""The ``remediator`` command: serve, migrate, rules lint|test|list, replay, incidents list|show|report|check.

Every setting has a ``--flag`` mirroring its ``REMEDIATOR_*`` variable; flags win over the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from service import errors
from service.settings import Settings


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (each also REMEDIATOR_<NAME>)")
    for name, field in Settings.model_fields.items():
        env = f"REMEDIATOR_{name.upper()}"
        group.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"setting_{name}",
            default=None,
            metavar="VALUE",
            help=f"{field.description or name} [{env}]",
        )


def load_settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the flags given."""
    overrides = {
        key.removeprefix("setting_"): value
        for key, value in vars(args).items()
        if key.startswith("setting_") and value is not None
    }
    return Settings(**overrides)


def _settings_or_exit(args: argparse.Namespace) -> Settings:
    try:
        return load_settings(args)
    except errors.ConfigError as exc:
        raise SystemExit(f"remediator: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise SystemExit(f"remediator: invalid settings: {problems}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from service import app as application
    from service.matching import loader
    from service.observability import configure_logging

    settings = _settings_or_exit(args)
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    _migrate_in_child(settings)
    try:
        app = application.create_app(settings)
    except loader.RuleLoadError as exc:
        print(f"remediator: rules in {settings.rules_dir} are invalid:\n{exc}", file=sys.stderr)
        return 1
    app.on_startup.append(_freeze_heap)
    # the request-head timeout (aiohttp's keep-alive timer) travels with the app: app.server_options
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        shutdown_timeout=15.0,
        loop=_event_loop(),
    )
    return 0


def _migrate_in_child(settings: Settings) -> None:
    """Apply migrations in a forked child, so the serving process never imports Alembic (~12 MB it would
    hold for its lifetime). Best effort: if the child fails, start-up migrates in-process and reports the
    error there, with its reason."""
    if not hasattr(os, "fork"):  # pragma: no cover - platforms without fork migrate in-process
        return
    import multiprocessing

    child = multiprocessing.get_context("fork").Process(target=_migrate, args=(settings,), name="migrate")
    child.start()
    child.join()


def _migrate(settings: Settings) -> None:
    try:
        _apply_migrations(settings)
    except Exception:  # the parent migrates again and reports
        sys.exit(1)


def _apply_migrations(settings: Settings) -> None:
    from service.records.store import Store

    async def run() -> None:
        store = Store.open(settings.store_url, timeout_s=settings.store_timeout_s)
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(run())


async def _freeze_heap(_app: object) -> None:
    """Once started, move every object alive (modules, rules, clients) out of the collector's sight: a full
    collection then scans what requests allocate, not 100,000 long-lived objects (~40 ms of stalled loop)."""
    gc.collect()
    gc.freeze()


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (Linux, macOS): ~1.1× on a bare aiohttp app here (docs/performance.md)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop wheels
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings_or_exit(args)
    try:
        _apply_migrations(settings)
    except errors.StoreUnavailable as exc:
        print(f"remediator: store unavailable: {exc}", file=sys.stderr)
        return 1
    print("migrations applied")
    return 0


def cmd_rules_lint(args: argparse.Namespace) -> int:
    from service import registries
    from service.matching import loader

    directory = Path(args.directory)
    problems = loader.lint(directory, catalogue=registries.catalogue(), today=date.today())
    for problem in problems:
        print(problem)
    errors_found = [p for p in problems if p.severity == "error"]
    if errors_found:
        print(f"{len(errors_found)} error(s)", file=sys.stderr)
        return 1
    files = sorted(p for p in directory.glob("*.y*ml")) if directory.is_dir() else []
    print(f"ok: {len(files)} rule file(s), {len(problems)} warning(s)")
    return 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    from service import registries, ruletests
    from service.matching import loader

    directory = Path(args.rules_dir)
    try:
        rules = loader.load_rules(directory, catalogue=registries.catalogue())
    except loader.RuleLoadError as exc:
        print(f"remediator: rules in {directory} are invalid:\n{exc}", file=sys.stderr)
        return 2
    return ruletests.run([Path(f) for f in args.files], rules, out=sys.stdout, err=sys.stderr)


#: The window of ``rules list``: the monthly runbook review looks at the last 30 days.
_STATS_WINDOW_DAYS = 30


def cmd_rules_list(args: argparse.Namespace) -> int:
    import time

    from service import registries
    from service.matching import loader
    from service.records import stats
    from service.records.store import Store

    settings = _settings_or_exit(args)
    try:
        rules = loader.load_rules(settings.rules_dir, catalogue=registries.catalogue())
    except loader.RuleLoadError as exc:
        print(f"remediator: rules in {settings.rules_dir} are invalid:\n{exc}", file=sys.stderr)
        return 1
    now = time.time()
    since = now - _STATS_WINDOW_DAYS * 86400

    async def run() -> dict[str, stats.RuleStats]:
        store = Store.open(settings.store_url, timeout_s=settings.store_timeout_s)
        try:
            await store.migrate()
            return await stats.rule_stats(store, since=since, now=now)
        finally:
            await store.close()

    try:
        by_rule = asyncio.run(run())
    except errors.StoreUnavailable as exc:
        print(f"remediator: store unavailable: {exc}", file=sys.stderr)
        return 1
    today = date.today()
    rows: list[dict[str, Any]] = []
    for compiled in rules.rules:
        rule = compiled.rule
        age = (today - rule.reviewed).days if rule.reviewed is not None else None
        entry = by_rule.get(rule.name, stats.RuleStats())
        rows.append(
            {
                "rule": rule.name,
                "file": compiled.file,
                "owner": rule.owner,
                "reviewed": rule.reviewed.isoformat() if rule.reviewed is not None else None,
                "review_age_days": age,
                "review_due": age is None or age > loader.REVIEW_MAX_AGE_DAYS,
                "fired": entry.fired,
                "mitigated": entry.mitigated,
                "escalated": entry.escalated,
                "mttr_s": entry.mttr_s,
                "mttr_target_s": rule.mttr_target.total_seconds(),
                "over_target": entry.over_target,
            }
        )
    if args.json:
        window = {"days": _STATS_WINDOW_DAYS, "since": _iso(since), "now": _iso(now)}
        print(json.dumps({"window": window, "rules": rows}, indent=2))
        return 0
    _print_rules_table(rows)
    print(f"window: last {_STATS_WINDOW_DAYS} days; MTTR: median time to mitigate (else resolve)")
    return 0


def _print_rules_table(rows: list[dict[str, Any]]) -> None:
    header = (
        "RULE",
        "OWNER",
        "REVIEWED",
        "AGE",
        "FIRED",
        "MITIGATED",
        "ESCALATED",
        "MTTR",
        "TARGET",
        "OVER",
        "",
    )
    table = [header]
    for row in rows:
        age = row["review_age_days"]
        table.append(
            (
                row["rule"],
                row["owner"] or "-",
                row["reviewed"] or "never",
                f"{age}d" if age is not None else "-",
                str(row["fired"]),
                str(row["mitigated"]),
                str(row["escalated"]),
                _duration(row["mttr_s"]),
                _duration(row["mttr_target_s"]),
                str(row["over_target"]),
                "REVIEW DUE" if row["review_due"] else "",
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    numeric = {3, 4, 5, 6, 7, 8, 9}
    for line in table:
        cells = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _request(
    method: str, url: str, *, token: str | None, body: bytes | None = None, raw: bool = False
) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 — http(s) URL given by the operator
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            data = response.read()
            return response.status, data.decode("utf-8") if raw else json.loads(data or b"null")
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        try:
            return exc.code, json.loads(payload)
        except ValueError:
            return exc.code, payload.decode(errors="replace")
    except urllib.error.URLError as exc:
        raise SystemExit(f"remediator: cannot reach {url}: {exc.reason}") from None


def _token(args: argparse.Namespace) -> str | None:
    return args.token or os.environ.get("REMEDIATOR_WEBHOOK_TOKEN") or None


def cmd_replay(args: argparse.Namespace) -> int:
    body = Path(args.file).read_bytes()
    status, answer = _request("POST", args.url.rstrip("/") + "/v1/alerts", token=_token(args), body=body)
    print(json.dumps(answer))
    return 0 if status == 200 else 1


def cmd_incidents(args: argparse.Namespace) -> int:
    base = args.url.rstrip("/")
    if args.incidents_command == "list":
        query = "&".join(
            f"{k}={v}" for k, v in (("state", args.state), ("rule", args.rule), ("limit", args.limit)) if v
        )
        status, answer = _request(
            "GET", f"{base}/v1/incidents" + (f"?{query}" if query else ""), token=_token(args)
        )
        if status == 200 and not args.json:
            for item in answer["incidents"]:
                target = item["target"]
                print(
                    f"{item['id']}  {item['state']:<10} {item['severity']:<8} {item['rule']:<32} "
                    f"{target['kind']}/{target['namespace']}/{target['name']}  opened {item['opened_at']}"
                )
            return 0
    elif args.incidents_command == "report":
        status, answer = _request(
            "GET", f"{base}/v1/incidents/{args.id}/report", token=_token(args), raw=True
        )
        print(answer if status == 200 else json.dumps(answer))
        return 0 if status == 200 else 1
    elif args.incidents_command == "check":
        return _check(args, base)
    else:
        status, answer = _request("GET", f"{base}/v1/incidents/{args.id}", token=_token(args))
    print(json.dumps(answer, indent=2))
    return 0 if status == 200 else 1


def _check(args: argparse.Namespace, base: str) -> int:
    """``incidents check ID ITEM``: tick a checklist item with an approver token (``--token`` or
    ``REMEDIATOR_APPROVER_TOKEN``)."""
    token = args.token or os.environ.get("REMEDIATOR_APPROVER_TOKEN") or None
    incident, item = (urllib.parse.quote(v, safe="") for v in (args.id, args.item))
    path = f"/v1/incidents/{incident}/checklist/{item}"
    status, answer = _request("POST", base + path, token=token, body=b"")
    if status == 200:
        print(f"ticked {answer['text']!r} ({answer['band']}) on {args.id} as {answer['ticked_by']}")
        return 0
    print(json.dumps(answer), file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remediator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service")
    _add_settings_flags(serve)
    serve.set_defaults(func=cmd_serve)
    migrate = sub.add_parser("migrate", help="apply pending store migrations")
    _add_settings_flags(migrate)
    migrate.set_defaults(func=cmd_migrate)
    rules = sub.add_parser("rules", help="rule tools").add_subparsers(dest="rules_command", required=True)
    lint = rules.add_parser("lint", help="check rule files; prints file:line for every problem")
    lint.add_argument("directory", nargs="?", default=os.environ.get("REMEDIATOR_RULES_DIR", "rules"))
    lint.set_defaults(func=cmd_rules_lint)
    rtest = rules.add_parser(
        "test", help="run rule unit tests (*.test.yaml): alert and findings → expected plan"
    )
    rtest.add_argument(
        "--rules-dir", default=os.environ.get("REMEDIATOR_RULES_DIR", "rules"), help="[REMEDIATOR_RULES_DIR]"
    )
    rtest.add_argument("files", nargs="+", metavar="FILE")
    rtest.set_defaults(func=cmd_rules_test)
    rlist = rules.add_parser("list", help="per rule: owner, review age, last 30 days of incidents and MTTR")
    _add_settings_flags(rlist)
    rlist.add_argument("--json", action="store_true")
    rlist.set_defaults(func=cmd_rules_list)
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument("--url", default=os.environ.get("REMEDIATOR_URL", "http://127.0.0.1:8080"))
    client.add_argument("--token", default=None, help="bearer token (default: $REMEDIATOR_WEBHOOK_TOKEN)")
    replay = sub.add_parser("replay", parents=[client], help="post a captured Alertmanager payload")
    replay.add_argument("file")
    replay.set_defaults(func=cmd_replay)
    incidents = sub.add_parser("incidents", help="read incidents from a running service")
    isub = incidents.add_subparsers(dest="incidents_command", required=True)
    ilist = isub.add_parser("list", parents=[client])
    ilist.add_argument("--state")
    ilist.add_argument("--rule")
    ilist.add_argument("--limit", type=int)
    ilist.add_argument("--json", action="store_true")
    ishow = isub.add_parser("show", parents=[client])
    ishow.add_argument("id")
    ireport = isub.add_parser("report", parents=[client], help="the Markdown incident report")
    ireport.add_argument("id")
    icheck = isub.add_parser(
        "check", parents=[client], help="tick a post-incident checklist item (approver token)"
    )
    icheck.add_argument("id")
    icheck.add_argument("item", help="the item's id (e.g. root-cause-identified) or its number (1-12)")
    for p in (ilist, ishow, ireport, icheck):
        p.set_defaults(func=cmd_incidents)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
