"""``remediator drill RULE``: a runbook drill against a running service (approver token).

Reads the rule's scenario from its rule-test file (``<tests dir>/<rule>.test.yaml``, the format of
``remediator rules test``: the first case's ``alert``, or the one ``--case`` names), posts it to
``POST /v1/drills`` and follows the drill incident until it is handed over (``--wait``): its findings, what
would have been done (every action a dry run), and the command for its report. The service does the rest:
nothing is written to the cluster, nothing paged or published, every message marked ``[DRILL]``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from service import ruletests
from service.cli import client, output

#: states a drill incident passes through before it is handed over (or mitigated)
WORKING = ("open", "diagnosing", "remediating", "verifying")


def default_tests() -> str:
    """``$REMEDIATOR_RULES_DIR/tests``, else ``rules/tests``."""
    return str(Path(os.environ.get("REMEDIATOR_RULES_DIR") or "rules") / "tests")


def scenario(tests: Path, rule: str, case: str | None) -> tuple[str, dict[str, Any]]:
    """The chosen case's name and alert (``labels``, ``annotations``) in ``tests/<rule>.test.yaml``; a
    file that cannot be read or is not a rule-test file, or an unknown case, is a usage error."""
    path = tests / f"{rule}.test.yaml"
    try:
        spec = ruletests.TestFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError) as exc:
        raise client.Usage(f"cannot read the scenario of {rule}: {path}: {exc.__class__.__name__}") from None
    except (yaml.YAMLError, ValidationError) as exc:
        first = str(exc).splitlines()[0][:200]
        raise client.Usage(f"{path} is not a rule-test file ({first}); see remediator rules test") from None
    if spec.rule != rule:
        raise client.Usage(f"{path} tests rule {spec.rule!r}, not {rule!r}")
    cases = spec.tests
    if case is None:
        chosen = cases[0]
    elif case.isdigit() and 1 <= int(case) <= len(cases):
        chosen = cases[int(case) - 1]
    else:
        named = [c for c in cases if c.name == case]
        if not named:
            raise client.Usage(f"no case {case!r} in {path} (1-{len(cases)} or a case's name)")
        chosen = named[0]
    return chosen.name, chosen.alert.model_dump()


def cmd_drill(args: argparse.Namespace) -> int:
    name, alert = scenario(Path(args.tests), args.rule, args.case)
    service = client.Service.from_args(args)
    started = service.post("/v1/drills", {"rule": args.rule, "alert": alert})
    incident_id = started.get("incident")
    detail = _followed(service, incident_id, args.wait) if incident_id else None
    if output.chosen(args) == "json":
        output.print_json({"case": name, **started, "detail": detail})
        return 0
    print(f"drill of {args.rule}: {name}")
    if detail is None:
        stored = started.get("fingerprint")
        print(f"stored as {stored}; its incident is not open yet (see remediator incidents list)")
        return 0
    _show(detail)
    return 0


def _followed(service: client.Service, incident_id: str, wait_s: float) -> dict[str, Any]:
    """The drill incident once it has left the working states, or as it stands after ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        detail: dict[str, Any] = service.get(f"/v1/incidents/{client.quote(incident_id)}")
        if detail.get("state") not in WORKING or time.monotonic() >= deadline:
            return detail
        time.sleep(0.5)


def _show(detail: dict[str, Any]) -> None:
    print(
        f"incident {detail['id']} [DRILL]: {detail['state']}"
        + (f" — {detail['reason']}" if detail.get("reason") else "")
    )
    output.print_table(
        ("FINDING", "PROBE", "STATUS", "SUMMARY"),
        (
            [f["id"], f["probe"], f["status"], str(f.get("summary", ""))[:80]]
            for f in detail.get("findings", [])
        ),
    )
    actions = detail.get("actions", [])
    if actions:
        print()
        output.print_table(
            ("ACTION", "STATUS", "GUARD", "WOULD SEND"),
            ([a["action"], a["status"], a.get("guard") or "-", _requests(a.get("request"))] for a in actions),
        )
    print(f"\nreport: remediator incidents report {detail['id']}")


def _requests(request: Any) -> str:
    """The first request a dry run journaled, ``METHOD path`` (``-`` for none)."""
    items = request if isinstance(request, list) else []
    first = items[0] if items and isinstance(items[0], dict) else None
    if first is None:
        return "-"
    shown = f"{first.get('method', '')} {first.get('path') or first.get('url') or ''}".strip()
    return shown + (f" (+{len(items) - 1})" if len(items) > 1 else "")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0 and 3600 seconds")
    return value


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    drill = sub.add_parser(
        "drill",
        parents=[client.parent("approver")],
        allow_abbrev=False,
        epilog=client.EXIT_CODES,
        help="rehearse RULE's runbook on a running service: dry-run, [DRILL], no page (approver token)",
    )
    drill.add_argument("rule", metavar="RULE", help="the rule's name")
    drill.add_argument(
        "--tests",
        default=default_tests(),
        metavar="DIR",
        help="where RULE.test.yaml is (default: $REMEDIATOR_RULES_DIR/tests, else rules/tests)",
    )
    drill.add_argument("--case", help="the scenario: a case's name or number (default: the first case)")
    drill.add_argument(
        "--wait",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="how long to follow the drill incident until it is handed over (default: 60)",
    )
    output.add_flag(drill)
    drill.set_defaults(func=cmd_drill)
