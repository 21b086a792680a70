"""The ``remediator`` command: ``serve``, ``migrate``, ``rules lint|test|list`` (local), and for the person on
call, against a running service: ``replay``, ``incidents list|show|report|approve|reject|ack|check``,
``pause``, ``resume`` and ``drill``.

One module per group of commands, each adding its own parsers: ``server`` (serve, migrate, the settings
flags), ``rules``, ``replay``, ``incidents``, ``automation`` (pause, resume), ``drill``; ``client`` is the
one way to the service (URL, token, exit codes) and ``output`` the one way to show what was read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import service
from service.cli import automation, client, drill, incidents, prune, replay, rules, server

load_settings = server.load_settings

EPILOG = """\
tokens: never on the command line (anyone can read it with ps). Reads use $REMEDIATOR_WEBHOOK_TOKEN (else
  $REMEDIATOR_APPROVER_TOKEN); approve, reject, ack, check, pause, resume and drill use
  $REMEDIATOR_APPROVER_TOKEN; --token-file PATH overrides either. The service is $REMEDIATOR_URL or --url
  (http://127.0.0.1:8080).
output: read commands take -o table|json: a table when stdout is a terminal, JSON otherwise.
exit codes: 0 ok; 1 failure (the service refused, could not be reached, or the action failed; the error is
  printed on stderr); 2 usage (a wrong command line, a refused --token, an unreadable --token-file).
"""


def _version() -> str:
    return service.__version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="remediator",
        description="Event-driven alert remediation: the service, its rules, and its incidents.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"remediator {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (server, rules, replay, incidents, automation, drill, prune):
        group.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except client.Usage as exc:
        parser.print_usage(sys.stderr)
        print(f"remediator: error: {exc}", file=sys.stderr)
        return exc.code
    except client.CliError as exc:
        print(f"remediator: {exc}", file=sys.stderr)
        return exc.code
