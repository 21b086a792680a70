"""CPU per stored alert, the service's and PostgreSQL's: ``python -m bench.cpusplit STORE ALERTS SECONDS``.

STORE is ``sqlite`` or ``postgresql`` (a fresh server started like the benchmark's, on the server core with
the service). After a 3 s warm-up, wrk loads the service at its maximum rate for SECONDS; the CPU time its
process and every PostgreSQL process used meanwhile (``/proc``), divided by the alerts stored, tells which
side a change saved. Rates on these shared machines swing by ±20 % from minute to minute; CPU per alert
swings less.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import load, servers
from bench.__main__ import one_server


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of every thread of ``pids`` so far."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                    ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True, check=False).stdout
    return [int(pid) for pid in out.split()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", choices=("sqlite", "postgresql"))
    parser.add_argument("alerts", type=int, help="alerts per POST")
    parser.add_argument("seconds", type=float, help="seconds of load measured")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="remediator-cpusplit-") as tmp, contextlib.ExitStack() as stack:
        urls, template, pid = stack.enter_context(one_server(args.store, Path(tmp)))
        service = [pid]
        load.spread(urls, template, prefix="warm", alerts=args.alerts, seconds=3, token=servers.TOKEN)
        postgres = postgres_pids() if args.store == "postgresql" else []
        before = cpu_s(service), cpu_s(postgres)
        run = load.spread(
            urls, template, prefix="run", alerts=args.alerts, seconds=args.seconds, token=servers.TOKEN
        )
        after = cpu_s(service), cpu_s(postgres)
    alerts = run.alerts_per_s * args.seconds
    service_us, postgres_us = ((a - b) / alerts * 1e6 for a, b in zip(after, before, strict=True))
    print(
        f"{args.store} {args.alerts}/POST: {run.alerts_per_s:,.0f} alerts/s; CPU per alert: "
        f"service {service_us:.1f} µs, PostgreSQL {postgres_us:.1f} µs"
    )
    print("command: python -m bench.cpusplit " + " ".join(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
