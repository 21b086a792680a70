"""Where a webhook request's time goes: the remediator on SQLite under cProfile, loaded by wrk as the intake
benchmark loads it (1 and 10 alerts per POST, alerts no rule matches), then the cumulative time of each
component of ``POST /v1/alerts`` divided by the requests served, in µs per request.

    python -m bench.profile_intake [--seconds 8] [--out /tmp/intake.prof]

cProfile slows every Python call down (by ~1.5–2× here): the figures are shares, not the speed.
"""

from __future__ import annotations

import argparse
import datetime
import pstats
import sys
import tempfile
from pathlib import Path

from bench import load, servers
from tests.support import procs

#: (label, pstats pattern): the components of the webhook path, outermost first
COMPONENTS = [
    ("aiohttp: parse + dispatch (whole request)", "web_protocol.py", "_handle_request"),
    ("middleware: the edge (request id, limits, errors, timing)", "intake/timing.py", "at_the_edge"),
    ("edge: limiter + control characters + handler", "intake/timing.py", "_guarded"),
    ("handler: post_alerts", "intake/webhook.py", "post_alerts"),
    ("read body", "intake/limits.py", "read_body"),
    ("JSON + pydantic validation", "intake/webhook.py", "_parse"),
    ("rows (match, startsAt key, payload)", "intake/webhook.py", "_rows"),
    ("commit wait (group commit)", "intake/committer.py", "submit"),
    ("response", "intake/responses.py", "json_response"),
    ("SQLite insert (group commit flush, on the loop)", "records/sqlite_writer.py", "_flush"),
]


def _cumtime(stats: pstats.Stats, path: str, name: str) -> float:
    table = stats.stats  # type: ignore[attr-defined]
    return sum(v[3] for (file, _line, func), v in table.items() if file.endswith(path) and func == name)


def _requests(stats: pstats.Stats) -> int:
    table = stats.stats  # type: ignore[attr-defined]
    return max(
        (
            v[1]
            for (file, _line, func), v in table.items()
            if file.endswith("webhook.py") and func == "_count"
        ),
        default=0,
    )


def run(work: Path, *, seconds: float, alerts: int, out: Path) -> str:
    rules = work / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    (rules / "none.yaml").write_text(servers.NO_MATCH_RULE.format(today=datetime.date.today()))
    port = procs.free_port()
    env = {
        "REMEDIATOR_LISTEN": f"127.0.0.1:{port}",
        "REMEDIATOR_STORE_URL": f"sqlite:///{work / 'intake.db'}",
        "REMEDIATOR_RULES_DIR": str(rules),
        "REMEDIATOR_WEBHOOK_TOKEN": servers.TOKEN,
        "REMEDIATOR_LOG_FORMAT": "json",
        "REMEDIATOR_LOG_LEVEL": "warning",
    }
    argv = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "service", "serve"]
    template = load.write_template(work / "template.txt")
    url = f"http://127.0.0.1:{port}/v1/alerts"
    with servers.running(argv, env=env, log=work / "remediator.log") as proc:
        servers.wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        load.wrk(url, template, prefix="warm", alerts=alerts, seconds=2, token=servers.TOKEN)
        measured = load.wrk(url, template, prefix="prof", alerts=alerts, seconds=seconds, token=servers.TOKEN)
    stats = pstats.Stats(str(out))
    served = _requests(stats) or 1
    lines = [
        f"### {alerts} alert(s)/POST: {measured.requests / measured.seconds:,.0f} req/s under cProfile,"
        f" {served:,} requests profiled (warm-up included)",
        "",
        "| component | µs per request (cumulative) |",
        "| --- | ---: |",
    ]
    for label, path, name in COMPONENTS:
        lines.append(f"| {label} | {_cumtime(stats, path, name) / served * 1e6:,.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "intake")
    args = parser.parse_args()
    for alerts in (1, 10):
        with tempfile.TemporaryDirectory() as tmp:
            print(run(Path(tmp), seconds=args.seconds, alerts=alerts, out=Path(f"{args.out}-{alerts}.prof")))
            print()


if __name__ == "__main__":
    main()
