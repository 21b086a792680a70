"""``remediator replay FILE``: post a captured Alertmanager payload to a running service (webhook token)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from service.cli import client


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        body = Path(args.file).read_bytes()
    except OSError as exc:
        raise client.Usage(f"cannot read {args.file}: {exc.strerror}") from None
    print(json.dumps(client.Service.from_args(args).post("/v1/alerts", body)))
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = sub.add_parser(
        "replay",
        parents=[client.parent("webhook")],
        allow_abbrev=False,
        epilog=client.EXIT_CODES,
        help="post a captured Alertmanager payload (webhook token)",
    )
    replay.add_argument("file", metavar="FILE")
    replay.set_defaults(func=cmd_replay)
