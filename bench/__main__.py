"""``python -m bench [--quick]``: intake (remediator on SQLite, on PostgreSQL, and as three replicas on one
PostgreSQL behind one load generator; the bare aiohttp baseline, ansible-rulebook), matching; prints the
table and writes docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from bench import load, matching, report, servers, storm, takeover


@dataclass
class Config:
    target: str  # baseline | sqlite | postgresql | postgresql-3 | ansible-rulebook
    alerts: int
    rounds: list[load.Round] = field(default_factory=list)
    rss_mb: float = float("nan")
    backlog: int | None = None  # alerts stored but not yet decided by the dispatcher when the load stopped
    left: int | None = None  # of the backlog, still undecided after the drain wait
    drain_s: float = float("nan")
    idle_rss_mb: float = float("nan")
    half_rate: dict[str, float] | None = None  # open-loop run at half the median rate
    stored: int | None = None  # alerts the service counted as stored (remediator_alerts_received)
    sent: int = 0  # alerts in 2xx answers, warm-up included

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.rounds)


@dataclass
class Plan:
    sizes: tuple[int, ...]
    warmup_s: float
    round_s: float
    rounds: int
    targets: tuple[str, ...]
    peer_warmup_s: float
    match_calls: int
    drain_timeout_s: float
    storm: tuple[int, int, int] | None  # alerts, targets, alerts per POST


FULL = Plan(
    (1, 10, 100),
    3,
    5,
    3,
    (
        "baseline",
        "baseline-uvloop",
        "sqlite",
        "postgresql",
        "postgresql-own-core",
        "postgresql-3",
        "ansible-rulebook",
    ),
    15,
    20000,
    20,
    (10000, 1000, 10),
)
QUICK = Plan((1,), 1, 1, 1, ("baseline", "sqlite"), 0, 500, 0.5, None)
#: Remediator targets, and how many replicas each runs (on PostgreSQL, several share one database).
REMEDIATOR = {"sqlite": 1, "postgresql": 1, "postgresql-own-core": 1, "postgresql-3": 3}
#: PostgreSQL on the load generator's core instead of the service's (informational: in production it has
#: a machine of its own; the goals are checked with it sharing the service's core)
OWN_CORE = "postgresql-own-core"


def counter(ports: list[int], name: str) -> int:
    """The sum of a counter over the replicas listening on ``ports``."""
    return counters(ports, name)[0]


def counters(ports: list[int], *names: str) -> list[int]:
    """The sums of counters over the replicas listening on ``ports``, each replica's read from one scrape (two
    scrapes let a commit land in between: received − unmatched once read −300)."""
    totals = [0] * len(names)
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                metric, _, value = line.partition(" ")
                if metric in names:
                    totals[names.index(metric)] += int(float(value.split()[0]))
    return totals


def drain(ports: list[int], timeout: float) -> tuple[int, int, float]:
    """When the load stops: the backlog (stored, undecided), what is left after waiting at most ``timeout``
    for the dispatcher to decide it, and how long that wait was."""
    started = time.monotonic()
    backlog = -1
    while True:
        received, unmatched = counters(
            ports, "remediator_alerts_received_total", "remediator_alerts_unmatched_total"
        )
        left = received - unmatched
        backlog = left if backlog < 0 else backlog
        if left <= 0 or time.monotonic() - started > timeout:
            return backlog, max(left, 0), time.monotonic() - started
        time.sleep(0.1)


def paced(
    urls: list[str], template: Path, *, prefix: str, alerts: int, rate: float, seconds: float
) -> dict[str, float]:
    """Open-loop load at ``rate`` requests/s in all, an equal share to each of ``urls`` at once; over
    replicas, the slowest one's p50 and p99 (never an average that hides it)."""
    procs = []
    for n, url in enumerate(urls):
        argv = [
            "taskset",
            "-c",
            servers.LOAD_CORE,
            sys.executable,
            "-m",
            "bench.paced",
            url,
            str(template),
            f"{prefix}-{n}-",
        ]
        argv += [str(alerts), f"{rate / len(urls):.1f}", f"{seconds:g}", servers.TOKEN]
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=servers.REPO))
    each: list[dict[str, float]] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 120)
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, proc.args, out)
        line = next(line for line in out.splitlines() if line.startswith("BENCH "))
        each.append(json.loads(line.removeprefix("BENCH ")))
    if len(each) == 1:
        return each[0]
    return {
        "requests": sum(f["requests"] for f in each),
        "errors": sum(f["errors"] for f in each),
        "offered_rps": sum(f["offered_rps"] for f in each),
        "achieved_rps": sum(f["achieved_rps"] for f in each),
        "p50_ms": max(f["p50_ms"] for f in each),
        "p99_ms": max(f["p99_ms"] for f in each),
    }


@contextlib.contextmanager
def server(target: str, ports: list[int], work: Path, store_url: str, redis_url: str) -> Iterator[list[int]]:
    """The target's processes listening on ``ports`` (several: replicas); their PIDs."""
    if target in ("baseline", "baseline-uvloop"):
        with servers.baseline(ports[0], work, uvloop=target == "baseline-uvloop") as pid:
            yield [pid]
    elif target == "ansible-rulebook":
        with servers.peer(ports[0], work) as pid:
            yield [pid]
    elif len(ports) > 1:
        with servers.replicas(ports, store_url, work / "rules", work, redis_url) as pids:
            yield pids
    else:
        with servers.remediator(ports[0], store_url, work / "rules", work) as pid:
            yield [pid]


def measure(
    target: str, size: int, plan: Plan, work: Path, store_url: str, template: Path, redis_url: str = ""
) -> Config:
    """Closed-loop rounds (wrk), then, for remediator, the drain and an open-loop run at half the rate. Over
    replicas the load is spread (``load.spread``) and RSS is their sum."""
    ports = [free_port() for _ in range(REMEDIATOR.get(target, 1))]
    config = Config(target, size)
    token = servers.TOKEN if target in REMEDIATOR else None
    urls = [f"http://127.0.0.1:{port}/v1/alerts" for port in ports]
    with server(target, ports, work, store_url, redis_url) as pids:
        config.idle_rss_mb = sum(servers.peak_rss_mb(pid) for pid in pids)
        warmup = plan.peer_warmup_s if target == "ansible-rulebook" else plan.warmup_s
        first = load.spread(
            urls, template, prefix=f"{target}{size}w", alerts=size, seconds=warmup, token=token
        )
        config.sent += (first.requests - first.non2xx) * size
        for n in range(plan.rounds):
            one = load.spread(
                urls, template, prefix=f"{target}{size}r{n}", alerts=size, seconds=plan.round_s, token=token
            )
            config.rounds.append(one)
            config.sent += (one.requests - one.non2xx) * size
        config.rss_mb = (
            servers.tree_rss_mb(pids[0])
            if target == "ansible-rulebook"
            else sum(servers.peak_rss_mb(pid) for pid in pids)
        )
        if target in REMEDIATOR:
            config.stored = counter(ports, "remediator_alerts_received_total")
            config.backlog, config.left, config.drain_s = drain(ports, plan.drain_timeout_s)
            rate = config.median("alerts_per_s") / size / 2
            config.half_rate = paced(
                urls, template, prefix=f"{target}{size}h", alerts=size, rate=rate, seconds=plan.round_s
            )
            config.rss_mb = sum(servers.peak_rss_mb(pid) for pid in pids)
    r = config.rounds
    print(
        f"  {target:<17} {size:>3}/POST  {config.median('alerts_per_s'):>9.0f} alerts/s  "
        f"p50 {config.median('p50_ms'):.2f} ms  p99 {config.median('p99_ms'):.2f} ms  "
        f"non-2xx {sum(x.non2xx for x in r)}  rss {config.rss_mb:.0f} MB  backlog {config.backlog} "
        f"left {config.left} after {config.drain_s:.1f} s  half-rate {config.half_rate}",
        flush=True,
    )
    return config


def free_port() -> int:
    sys.path.insert(0, str(servers.REPO))
    from tests.support import procs

    return procs.free_port()


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout
    return {
        # `nproc --all`: this process is pinned to the load core, so plain `nproc` would say 1
        "nproc": subprocess.run(
            ["nproc", "--all"], capture_output=True, text=True, check=True
        ).stdout.strip(),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": (wrk_version.splitlines() or ["wrk"])[0].split(" [")[0],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny rounds, SQLite and baseline only (< 20 s)")
    parser.add_argument("--out", type=Path, default=servers.REPO / "docs" / "performance.md")
    parser.add_argument("--skip", action="append", default=[], help="a target to leave out (repeatable)")
    parser.add_argument(
        "--targets", help="the intake targets to run, comma-separated (default: all of the plan's)"
    )
    parser.add_argument("--sizes", help="alerts per POST, comma-separated (default: 1,10,100)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit)  # so that the servers and PostgreSQL are stopped
    os.sched_setaffinity(
        0, {int(servers.LOAD_CORE)}
    )  # this process (storm client, matching) stays off core 0
    plan = QUICK if args.quick else FULL
    if args.sizes:
        plan = dataclasses.replace(plan, sizes=tuple(int(n) for n in args.sizes.split(",")))
    chosen = args.targets.split(",") if args.targets else plan.targets
    targets = [t for t in chosen if t not in args.skip]
    if "ansible-rulebook" in targets and not (servers.PEER_VENV / "bin" / "ansible-rulebook").exists():
        print(f"ansible-rulebook not found in {servers.PEER_VENV}: peer left out", flush=True)
        targets.remove("ansible-rulebook")
    results: list[Config] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="remediator-bench-") as tmp:
        root = Path(tmp)
        template = load.write_template(root / "template.txt")
        redis = None
        if any(REMEDIATOR.get(t, 1) > 1 for t in targets):  # replicas coordinate through Redis, as in HA
            sys.path.insert(0, str(servers.REPO))
            from tests.support import procs

            redis = procs.start_redis(root)
            pin(redis.pid)
        try:
            for target in targets:
                for size in plan.sizes:
                    work = root / f"{target}-{size}"
                    (work / "rules").mkdir(parents=True)
                    (work / "rules" / "bench.yaml").write_text(
                        servers.NO_MATCH_RULE.format(today=date.today().isoformat())
                    )
                    try:
                        with store_for(target, work) as store_url:
                            redis_url = redis.url if redis is not None else ""
                            results.append(measure(target, size, plan, work, store_url, template, redis_url))
                    except Exception as exc:  # a target that fails is reported, not fatal
                        notes.append(f"{target} at {size} alerts/POST failed: {exc}")
                        print(f"  {target} {size}/POST FAILED: {exc}", flush=True)
                    else:
                        forget(work)
        finally:
            if redis is not None:
                redis.stop()
        storm_figures = None
        if plan.storm is not None and "storm" not in args.skip:
            alerts, targets_n, per_post = plan.storm
            storm_figures = storm.run(
                root / "storm", free_port(), alerts=alerts, targets=targets_n, per_post=per_post, timeout=600
            )
            print(f"  storm: {storm_figures}", flush=True)
        takeover_figures = None
        if not args.quick and "takeover" not in args.skip:
            takeover_figures = asyncio.run(takeover.run(takeover.defaults()))
            print(f"  takeover: {takeover_figures}", flush=True)
        match_figures = [
            matching.run(
                root / f"rules-{names}",
                1000 if not args.quick else 100,
                calls=plan.match_calls,
                alertnames=names,
            )
            for names in ((1000, 10) if not args.quick else (10,))
        ]
    for figures in match_figures:
        print(
            f"  matching {figures['rules']:.0f} rules / {figures['alertnames']:.0f} alertnames: "
            f"hit {figures['hit_last_us']:.1f} µs, miss {figures['miss_us']:.1f} µs, "
            f"load {figures['load_s']:.2f} s",
            flush=True,
        )
    text = report.render(
        machine(),
        plan,
        results,
        match_figures,
        storm_figures,
        notes,
        takeover_figures=takeover_figures,
        quick=args.quick,
        command=" ".join(["python -m bench", *sys.argv[1:]]),
    )
    print(report.table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


def _exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def pin(pid: int | None, core: str = servers.SERVER_CORE) -> None:
    """Every thread of ``pid`` onto ``core`` (the server core)."""
    assert pid is not None, "the server is not running"
    cmd = ["taskset", "-a", "-p", "-c", core, str(pid)]
    subprocess.run(cmd, check=True, capture_output=True)


@contextlib.contextmanager
def store_for(target: str, work: Path) -> Iterator[str]:
    """A fresh store per configuration, as SQLite gets a new file: for PostgreSQL a new server (``initdb``,
    ~1 s) on the server core (``OWN_CORE``: on the load core), stopped after. Kept across configurations,
    one server made each configuration start where the earlier ones left it (their tables in its shared
    buffers, dirty)."""
    if not target.startswith("postgresql"):
        yield f"sqlite:///{work}/remediator.db"
        return
    sys.path.insert(0, str(servers.REPO))
    from tests.support import procs

    pg = procs.start_postgres(work)
    try:
        pin(pg.pid, servers.LOAD_CORE if target == OWN_CORE else servers.SERVER_CORE)
        yield create_database(pg, "bench")
    finally:
        pg.stop()


@contextlib.contextmanager
def one_server(
    store: str, work: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[tuple[list[str], Path, int]]:
    """One remediator with the benchmark's rule on a fresh ``store`` (``store_for``): its URLs, the load
    template, its PID."""
    (work / "rules").mkdir()
    (work / "rules" / "bench.yaml").write_text(servers.NO_MATCH_RULE.format(today=date.today().isoformat()))
    template = load.write_template(work / "template.txt")
    with store_for(store, work) as store_url:
        port = free_port()
        with servers.remediator(port, store_url, work / "rules", work, extra_env=extra_env) as pid:
            yield [f"http://127.0.0.1:{port}/v1/alerts"], template, pid


def forget(work: Path) -> None:
    """Delete a finished configuration's files (its SQLite file, PostgreSQL's data directory). Kept, their
    gigabytes of dirty pages were written back by the kernel while the next configurations ran, at ~10 MB/s on
    this disk: with 2.3 GB dirty, PostgreSQL's p99 at half rate went 6 → 40 ms. Deleted, they are dropped."""
    shutil.rmtree(work, ignore_errors=True)


def create_database(pg: object, name: str) -> str:
    dsn: str = pg.dsn  # type: ignore[attr-defined]
    psql = "/usr/lib/postgresql/15/bin/psql"
    subprocess.run([psql, dsn, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return dsn.rsplit("/", 1)[0] + f"/{name}"


if __name__ == "__main__":
    raise SystemExit(main())
