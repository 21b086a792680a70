"""How the command line shows what it read: ``-o table|json`` (table on a terminal, JSON otherwise), aligned
tables, durations and times. Pure formatting: never talks to the service or the store."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

FORMATS = ("table", "json")
HELP = "table or json (default: table when stdout is a terminal, json otherwise)"


def add_flag(parser: argparse.ArgumentParser) -> None:
    """``-o table|json`` on a read command (``--json`` stays as an alias of ``-o json``)."""
    parser.add_argument("-o", "--output", choices=FORMATS, default=None, help=HELP)
    parser.add_argument("--json", dest="output", action="store_const", const="json", help=argparse.SUPPRESS)


def chosen(args: argparse.Namespace, out: TextIO | None = None) -> str:
    """The format asked for, else table on a terminal and JSON when piped or captured."""
    if args.output:
        return str(args.output)
    stream = out if out is not None else sys.stdout
    return "table" if stream.isatty() else "json"


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def print_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: frozenset[int] = frozenset()
) -> None:
    """Columns two spaces apart, each as wide as its widest cell; ``numeric`` columns right-aligned."""
    table = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        cells = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())


def duration(seconds: float | None) -> str:
    """``1h05m``, ``3m09s``, ``42s``; ``-`` for none."""
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


def iso(ts: float) -> str:
    """An epoch time as RFC 3339 in UTC, to the second."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def short_time(text: str | None) -> str:
    """An API time (RFC 3339) as ``2026-03-14 09:26:46`` (UTC), ``-`` for none."""
    if not text:
        return "-"
    return text.replace("T", " ").removesuffix("Z").split(".")[0].split("+")[0]
