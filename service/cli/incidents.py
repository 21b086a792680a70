"""``remediator incidents …`` against a running service: list (following the ``next`` cursor), show and
report (read token); approve, reject, ack and check (approver token). Every decision goes through the
service's API, so it takes the same path as the console's and Slack's (``intake.humans``)."""

from __future__ import annotations

import argparse
from typing import Any

from service.cli import client, output

#: The API's largest page; ``--all`` asks for pages this size unless ``--limit`` says otherwise.
MAX_PAGE = 1000


def _page_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= MAX_PAGE:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_PAGE} (the API's largest page)")
    return value


def cmd_list(args: argparse.Namespace) -> int:
    service = client.Service.from_args(args)
    query: dict[str, Any] = {
        "state": args.state,
        "rule": args.rule,
        "over_target": "true" if args.over_target else None,
        "limit": args.limit or (MAX_PAGE if args.all else None),
        "cursor": args.cursor,
    }
    found: list[dict[str, Any]] = []
    while True:
        page = service.get("/v1/incidents", query)
        found.extend(page["incidents"])
        more = page.get("next")
        if not (args.all and more):
            break
        if more == query["cursor"]:
            raise client.Failure("the service answered the same cursor twice; stopped")
        query["cursor"] = more
    if output.chosen(args) == "json":
        output.print_json({"incidents": found, **({"next": more} if more else {})})
        return 0
    output.print_table(_LIST_HEADER, (_list_row(item) for item in found))
    if more:
        print(f"(more: --cursor {more}, or --all)")
    return 0


_LIST_HEADER = ("ID", "STATE", "SEVERITY", "LEVEL", "RULE", "TARGET", "CLOCK", "OPENED", "NOTE")


def _target(target: dict[str, Any]) -> str:
    return f"{target['kind']}/{target['namespace']}/{target['name']}"


def _clock(item: dict[str, Any]) -> str:
    """Time since the alert started against the MTTR target (``3m09s/5m00s``, ``!`` when over)."""
    elapsed, goal = item.get("elapsed_s"), item.get("mttr_target_s")
    over = elapsed is not None and goal is not None and elapsed > goal
    return f"{output.duration(elapsed)}/{output.duration(goal)}{'!' if over else ''}"


def _note(item: dict[str, Any]) -> str:
    notes = []
    if item.get("acked_by"):
        notes.append(f"acked by {item['acked_by']}")
    if item.get("caused_by"):
        notes.append(f"caused by {item['caused_by']}")
    return "; ".join(notes)


def _list_row(item: dict[str, Any]) -> tuple[str, ...]:
    return (
        item["id"],
        item["state"],
        item["severity"],
        str(item.get("escalation_level", "-")),
        item["rule"],
        _target(item["target"]),
        _clock(item),
        output.short_time(item["opened_at"]),
        _note(item),
    )


def cmd_show(args: argparse.Namespace) -> int:
    detail = client.Service.from_args(args).get(f"/v1/incidents/{client.quote(args.id)}")
    if output.chosen(args) == "json":
        output.print_json(detail)
        return 0
    _print_detail(detail)
    return 0


def _print_detail(detail: dict[str, Any]) -> None:
    """The incident as a person on call reads it: who, what, how long; then findings, actions, timeline."""
    facts = [
        ("incident", detail["id"]),
        ("rule", f"{detail['rule']} (runbook: {detail.get('runbook', '-')})"),
        ("state", f"{detail['state']}, level {detail.get('escalation_level', '-')}"),
        ("reason", detail.get("reason") or "-"),
        ("severity", detail["severity"]),
        ("target", _target(detail["target"])),
        ("clock", f"{_clock(detail)} since {output.short_time(detail.get('started_at'))} UTC"),
        (
            "acked",
            f"by {detail['acked_by']} at {output.short_time(detail.get('acked_at'))}"
            if detail.get("acked_by")
            else "no",
        ),
    ]
    if detail.get("caused_by"):
        facts.append(("caused by", detail["caused_by"]))
    for key, value in facts:
        print(f"{key + ':':<11}{value}")
    sections: list[tuple[str, tuple[str, ...], list[tuple[str, ...]]]] = [
        (
            "FINDINGS",
            ("PROBE", "STATUS", "SUMMARY"),
            [(f["id"], f["status"], f["summary"]) for f in detail.get("findings", [])],
        ),
        (
            "ACTIONS",
            ("ID", "ACTION", "SAFETY", "STATUS", "BY", "REASON"),
            [_action_row(a) for a in detail.get("actions", [])],
        ),
        (
            "TIMELINE",
            ("AT", "KIND", "MESSAGE"),
            [(output.short_time(e["at"]), e["kind"], e["message"]) for e in detail.get("timeline", [])],
        ),
    ]
    for title, header, rows in sections:
        print(f"\n{title}")
        if rows:
            output.print_table(header, rows)
        else:
            print("(none)")
        if title == "ACTIONS" and any(a["status"] == "awaiting_approval" for a in detail.get("actions", [])):
            print(f"(decide: remediator incidents approve|reject {detail['id']} ACTION_ID)")


def _action_row(action: dict[str, Any]) -> tuple[str, ...]:
    return (
        action["id"],
        action["action"],
        action.get("safety") or "-",
        action["status"],
        action.get("approver") or "-",
        (action.get("reason") or "").splitlines()[0] if action.get("reason") else "",
    )


def cmd_report(args: argparse.Namespace) -> int:
    path = f"/v1/incidents/{client.quote(args.id)}/report"
    print(client.Service.from_args(args).get(path, text=True), end="")
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    """``approve`` runs the proposal now and says how it went; ``reject`` refuses it."""
    service = client.Service.from_args(args)
    path = f"/v1/incidents/{client.quote(args.id)}/actions/{client.quote(args.action_id)}/{args.verb}"
    answer = service.call("POST", path)
    record = answer.body if isinstance(answer.body, dict) else {}
    if (not answer.ok and "error" in record) or "status" not in record:
        raise client.Failure(service.refusal(answer))
    said = f"{record['action']} {record['status']}"
    if args.verb == "reject":
        said += f" by {record.get('approver')}"
    elif record.get("approver"):
        said += f" (approved by {record['approver']})"
    if not answer.ok:  # approved, but the action did not succeed (a guard, or it failed)
        raise client.Failure(f"{said}: {record.get('reason') or 'see incidents show ' + args.id}")
    print(said)
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    answer = client.Service.from_args(args).post(f"/v1/incidents/{client.quote(args.id)}/ack")
    print(f"acknowledged {answer['id']} as {answer['acknowledged_by']}: escalation stopped")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    path = f"/v1/incidents/{client.quote(args.id)}/checklist/{client.quote(args.item)}"
    answer = client.Service.from_args(args).post(path)
    print(f"ticked {answer['text']!r} ({answer['band']}) on {args.id} as {answer['ticked_by']}")
    return 0


def _command(
    isub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    parent: argparse.ArgumentParser,
    about: str,
    *,
    with_id: bool = True,
) -> argparse.ArgumentParser:
    command = isub.add_parser(
        name,
        parents=[parent],
        allow_abbrev=False,
        help=about,
        description=about,
        epilog=client.EXIT_CODES,
    )
    if with_id:
        command.add_argument("id", metavar="ID", help="the incident's id")
    return command


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    incidents = sub.add_parser("incidents", help="read incidents and decide on them (a running service)")
    isub = incidents.add_subparsers(dest="incidents_command", required=True)
    read, approver = client.parent("read"), client.parent("approver")
    ilist = _command(isub, "list", read, "incidents, newest first", with_id=False)
    ilist.add_argument("--state", help="only this state: open, diagnosing, …, escalated, resolved")
    ilist.add_argument("--rule", help="only this rule's incidents")
    ilist.add_argument("--over-target", action="store_true", help="only incidents over their MTTR target")
    ilist.add_argument(
        "--limit", type=_page_size, help=f"per page, 1-{MAX_PAGE} (default: 100; with --all: {MAX_PAGE})"
    )
    ilist.add_argument("--cursor", help="start at this page (the `next` of the previous one)")
    ilist.add_argument("--all", action="store_true", help="follow the `next` cursor to the last page")
    ilist.set_defaults(func=cmd_list)
    ishow = _command(isub, "show", read, "one incident: findings, actions, timeline")
    ishow.set_defaults(func=cmd_show)
    for command in (ilist, ishow):
        output.add_flag(command)
    report = _command(isub, "report", read, "the Markdown incident report (always Markdown)")
    report.set_defaults(func=cmd_report)
    for verb in ("approve", "reject"):
        decide = _command(isub, verb, approver, f"{verb} a proposed action (approver token)")
        decide.add_argument("action_id", metavar="ACTION_ID", help="the proposal's id (see incidents show)")
        decide.set_defaults(func=cmd_decide, verb=verb)
    _command(isub, "ack", approver, "acknowledge: stop the escalation (approver token)").set_defaults(
        func=cmd_ack
    )
    check = _command(isub, "check", approver, "tick a post-incident checklist item (approver token)")
    check.add_argument("item", metavar="ITEM", help="the item's id (root-cause-identified) or number (1-12)")
    check.set_defaults(func=cmd_check)
