"""Open-loop latency of one remediator at a fixed rate, alone: ``python -m bench.halfrate STORE ALERTS RATE``.

STORE is ``sqlite`` or ``postgresql`` (a fresh PostgreSQL started like the benchmark's); the server is pinned
to the server core and ``bench.paced`` to the load core, as in ``python -m bench``. ``--fill SECONDS`` first
runs wrk at the max rate (as the benchmark's rounds do before its half-rate run), ``--runs N`` 5 s runs
follow a 3 s warm-up; ``--env NAME=VALUE`` sets the server's environment (``REMEDIATOR_WAL_CHECKPOINT_S``).
Prints p50/p99 per run and their medians.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from pathlib import Path

from bench import load, servers
from bench.__main__ import one_server, paced


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", choices=("sqlite", "postgresql"))
    parser.add_argument("alerts", type=int, help="alerts per POST")
    parser.add_argument("rate", type=float, help="POSTs per second")
    parser.add_argument("--fill", type=float, default=0.0, help="seconds of max-rate wrk load first")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="remediator-halfrate-") as tmp, contextlib.ExitStack() as stack:
        urls, template, _ = stack.enter_context(one_server(args.store, Path(tmp), extra))
        if args.fill:
            token = servers.TOKEN
            load.spread(urls, template, prefix="fill", alerts=args.alerts, seconds=args.fill, token=token)
        paced(urls, template, prefix="warm", alerts=args.alerts, rate=args.rate, seconds=3)
        runs = [
            paced(urls, template, prefix=f"run{n}", alerts=args.alerts, rate=args.rate, seconds=5)
            for n in range(args.runs)
        ]
    for n, run in enumerate(runs):
        print(f"run {n}: p50 {run['p50_ms']:.2f} ms  p99 {run['p99_ms']:.2f} ms  errors {run['errors']:.0f}")
    p50 = statistics.median(r["p50_ms"] for r in runs)
    p99 = statistics.median(r["p99_ms"] for r in runs)
    print(f"median: p50 {p50:.2f} ms  p99 {p99:.2f} ms")
    print("command: python -m bench.halfrate " + " ".join(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
