"""``remediator pause``, ``resume`` and ``status``: the kill switch for every automatic action, and
maintenance windows that pause automation for one namespace, rule or target until a time (approver token).

``--until`` takes an RFC 3339 time with its zone (``2026-12-06T18:00:00Z``) or a duration from now
(``90m``, ``2h``, ``1h30m``, ``1d``); it is sent to the service as RFC 3339 in UTC.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from typing import Any

from service.cli import client, output
from service.model import rules


def until(text: str, *, now: float) -> str:
    """``--until`` as RFC 3339 in UTC; raises ``client.Usage`` for anything else, or a time not ahead."""
    try:
        at = now + rules.parse_duration(text.strip()).total_seconds()
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text.strip())
        except ValueError:
            raise client.Usage(
                f"--until {text!r}: give an RFC 3339 time with its zone or a duration like 90m, 2h, 1h30m"
            ) from None
        if parsed.tzinfo is None:
            raise client.Usage(f"--until {text!r} has no time zone (add Z or +01:00)") from None
        at = parsed.timestamp()
    if at <= now:
        raise client.Usage(f"--until {text!r} is not in the future")
    return output.iso(at)


def cmd_pause(args: argparse.Namespace) -> int:
    if (args.scope is None) != (args.until is None):
        raise client.Usage("--scope and --until go together: a maintenance window has a scope and an end")
    if args.reason is not None and args.scope is None:
        raise client.Usage("--reason goes with --scope (the kill switch records who and when)")
    body = None
    if args.scope is not None:
        body = {"scope": args.scope, "until": until(args.until, now=time.time()), "reason": args.reason or ""}
    answer = client.Service.from_args(args).post("/v1/pause", body)
    window = _window(answer)
    if window is None:
        print(f"automation paused by {answer.get('by')}: no automatic action runs until `remediator resume`")
        return 0
    print(
        f"maintenance window {window.get('id')}: automation paused on {window.get('scope')} until "
        f"{window.get('until')} by {window.get('by')}; end it early with "
        f"`remediator resume --window {window.get('id')}`"
    )
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    service = client.Service.from_args(args)
    if args.window is None:
        answer = service.post("/v1/resume")
        print(f"automation resumed by {answer.get('by')}")
        return 0
    answer = service.post("/v1/resume", {"window": args.window})
    window = _window(answer) or {}
    ended_by = window.get("ended_by") or answer.get("by")
    print(f"maintenance window {args.window} ({window.get('scope', 'scope unknown')}) ended by {ended_by}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Whether automation is paused, and the maintenance windows in force."""
    state = client.Service.from_args(args).get("/v1/pause")
    if output.chosen(args) == "json":
        output.print_json(state)
        return 0
    if state.get("paused"):
        print(f"automation: PAUSED by {state.get('by')} since {output.short_time(state.get('since'))} UTC")
    else:
        print("automation: running")
    windows = state.get("windows") or []
    if not windows:
        print("maintenance windows: none")
        return 0
    print("maintenance windows:")
    output.print_table(
        ("ID", "SCOPE", "UNTIL", "BY", "REASON"),
        [
            (w["id"], w["scope"], output.short_time(w["until"]), w.get("by") or "-", w.get("reason") or "")
            for w in windows
        ],
    )
    return 0


def _window(answer: Any) -> dict[str, Any] | None:
    """The maintenance window an answer describes (as itself or under ``window``), if any."""
    if not isinstance(answer, dict):
        return None
    inner = answer.get("window")
    if isinstance(inner, dict):
        return inner
    return answer if "scope" in answer else None


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    approver = client.parent("approver")
    pause = sub.add_parser(
        "pause",
        parents=[approver],
        allow_abbrev=False,
        epilog=client.EXIT_CODES,
        help="stop automatic actions: all of them, or one scope until a time (approver token)",
        description="Without --scope: the kill switch, every automatic action stops until `remediator "
        "resume`. With --scope and --until: a maintenance window, automation paused for that scope only.",
    )
    pause.add_argument(
        "--scope", metavar="SCOPE", help="namespace:NAME, rule:NAME or target:KIND/NAMESPACE/NAME"
    )
    pause.add_argument("--until", metavar="WHEN", help="RFC 3339 time with zone, or a duration: 90m, 2h, 1d")
    pause.add_argument("--reason", metavar="TEXT", help="why (shown on the incidents it blocks)")
    pause.set_defaults(func=cmd_pause)
    resume = sub.add_parser(
        "resume",
        parents=[approver],
        allow_abbrev=False,
        epilog=client.EXIT_CODES,
        help="resume automatic actions, or end one maintenance window early (approver token)",
    )
    resume.add_argument("--window", metavar="ID", help="end this maintenance window (its id from pause)")
    resume.set_defaults(func=cmd_resume)
    status = sub.add_parser(
        "status",
        parents=[client.parent("read")],
        allow_abbrev=False,
        epilog=client.EXIT_CODES,
        help="is automation paused; the maintenance windows in force",
    )
    output.add_flag(status)
    status.set_defaults(func=cmd_status)
