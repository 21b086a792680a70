"""``python -m bench.takeover``: how fast work moves on when a replica dies or PostgreSQL goes away.

Three replicas (``python -m service serve``) on one PostgreSQL 15 and one Redis, every alert matching a rule
whose one probe (a stand-in Prometheus in this process) answers after ``--probe-s``, under a steady load
spread over the replicas (``--rate`` alerts/s, 10 per POST, every alert new):

- **takeover**: SIGKILL one replica; the rows it had claimed at that moment (``inbox.claimed_by`` = its
  worker) are timed until every one is ``done`` by another replica; a fresh replica replaces it; ``--kills``
  times, the median reported.
- **outage**: PostgreSQL stopped ``--outage-s`` under the load (fast shutdown), started again on the same
  data; the load stops at its return; timed until every alert a replica accepted (2xx) is decided.

``--repo DIR`` runs the replicas from another tree (an A/B against ``git worktree add /tmp/base HEAD``).
Every process is started here and stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from bench import servers
from tests.support import procs

RULE = """\
name: bench-takeover
runbook: Takeover
mttr_target: 2m
severity: critical
match: ['alertname="BenchTakeover"']
target: {kind: Deployment, namespace: shop, name: "{{ labels.target }}"}
diagnose:
  - {id: q, probe: prometheus.query, with: {query: up, timeout_s: 20}}
"""
PER_POST = 10
PINNED = ["setpriv", "--pdeathsig", "KILL", "taskset", "-c", servers.SERVER_CORE]


def stand_in_prometheus(delay_s: float) -> tuple[int, threading.Event]:
    """A Prometheus API answering every instant query after ``delay_s``, on its own thread; (port, stop)."""
    port, stop, ready = procs.free_port(), threading.Event(), threading.Event()

    async def query(_request: web.Request) -> web.Response:
        await asyncio.sleep(delay_s)
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": []}})

    async def serve() -> None:
        app = web.Application()
        app.router.add_get("/api/v1/query", query)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await asyncio.to_thread(stop.wait)
        await runner.cleanup()

    threading.Thread(target=lambda: asyncio.run(serve()), daemon=True).start()
    ready.wait(10)
    return port, stop


class Replicas:
    """The replicas of the run, each pinned to the server core, started and stopped by PID."""

    def __init__(self, repo: Path, env: dict[str, str], workdir: Path) -> None:
        self.repo, self.env, self.workdir = repo, env, workdir
        self.live: list[tuple[subprocess.Popen[bytes], int]] = []
        self._names = itertools.count()

    def start(self) -> tuple[subprocess.Popen[bytes], int]:
        port = procs.free_port()
        log = open(self.workdir / f"replica-{next(self._names)}.log", "ab")  # noqa: SIM115 (kept with it)
        proc = subprocess.Popen(
            [*PINNED, sys.executable, "-m", "service", "serve"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**self.env, "REMEDIATOR_LISTEN": f"127.0.0.1:{port}", "PYTHONPATH": str(self.repo)},
            cwd=self.repo,
            start_new_session=True,
        )
        log.close()
        servers.wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        self.live.append((proc, port))
        return proc, port

    def kill(self, index: int) -> subprocess.Popen[bytes]:
        proc, _port = self.live.pop(index)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return proc

    def stop_all(self) -> None:
        for proc, _port in self.live:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, _port in self.live:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.live.clear()


class Load:
    """Posts new alerts at ``rate`` alerts/s, round-robin over the live replicas; counts accepted ones."""

    def __init__(self, replicas: Replicas, rate: float) -> None:
        self.replicas, self.rate = replicas, rate
        self.accepted = 0
        self.refused = 0
        self._counter = itertools.count()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        interval = PER_POST / self.rate
        headers = {"Authorization": f"Bearer {servers.TOKEN}"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            next_at = time.monotonic()
            for n in itertools.count():
                live = list(self.replicas.live)
                if live:
                    _proc, port = live[n % len(live)]
                    body = self._body()
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                        async with session.post(
                            f"http://127.0.0.1:{port}/v1/alerts", json=body, headers=headers
                        ) as response:
                            if response.status < 300:
                                self.accepted += PER_POST
                            else:
                                self.refused += PER_POST
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    def _body(self) -> dict[str, Any]:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        alerts = []
        for _ in range(PER_POST):
            target = f"t-{next(self._counter)}"
            alerts.append(
                {
                    "status": "firing",
                    "labels": {"alertname": "BenchTakeover", "target": target},
                    "annotations": {},
                    "startsAt": now,
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus/graph",
                    "fingerprint": hashlib.sha256(target.encode()).hexdigest()[:16],
                }
            )
        return {
            "version": "4",
            "groupKey": '{}:{alertname="BenchTakeover"}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "remediator",
            "groupLabels": {},
            "commonLabels": {"alertname": "BenchTakeover"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": alerts,
        }


async def wait_for(check: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            if await check():
                return True
        await asyncio.sleep(interval)
    return False


async def takeover(replicas: Replicas, dsn: str, kill_index: int, timeout: float) -> tuple[float, int]:
    """SIGKILL replica ``kill_index``; seconds until every row it had claimed is done, and how many rows."""
    db = await asyncpg.connect(dsn)
    try:
        proc, _port = replicas.live[kill_index]
        mine = f"%-{proc.pid}-%"
        claimed: list[int] = []

        async def holds() -> bool:
            rows = await db.fetch("SELECT id FROM inbox WHERE state = 'claimed' AND claimed_by LIKE $1", mine)
            claimed[:] = [r["id"] for r in rows]
            return bool(claimed)

        await wait_for(holds, 30)
        replicas.kill(kill_index)
        killed = time.monotonic()
        # the rows it claimed between the snapshot and the kill count too
        rows = await db.fetch("SELECT id FROM inbox WHERE state = 'claimed' AND claimed_by LIKE $1", mine)
        ids = sorted({*claimed, *(r["id"] for r in rows)})

        async def done() -> bool:
            left = await db.fetchval(
                "SELECT count(*) FROM inbox WHERE id = ANY($1::bigint[]) AND state != 'done'", ids
            )
            return int(left) == 0

        if not await wait_for(done, timeout):
            return float("inf"), len(ids)
        return time.monotonic() - killed, len(ids)
    finally:
        await db.close()


async def outage(pg: procs.Postgres, load: Load, outage_s: float, timeout: float) -> tuple[float, int]:
    """Stop PostgreSQL ``outage_s`` under load; seconds from its return until every accepted alert is
    decided, and how many alerts were accepted."""
    first = await asyncpg.connect(pg.dsn)
    try:
        backlog = await first.fetchval("SELECT count(*) FROM inbox WHERE state != 'done'")
    finally:
        await first.close()
    print(f"outage: {backlog} alerts undecided when PostgreSQL stops, {load.accepted} accepted so far")
    await asyncio.to_thread(pg.stop)
    await asyncio.sleep(outage_s)
    await asyncio.to_thread(pg.start)
    back = time.monotonic()
    await load.stop()
    db: asyncpg.Connection | None = None

    async def decided() -> bool:
        nonlocal db
        if db is None:
            db = await asyncpg.connect(pg.dsn)
        done = await db.fetchval("SELECT count(*) FROM inbox WHERE state = 'done'")
        return int(done) >= load.accepted

    try:
        if not await wait_for(decided, timeout):
            if db is not None:
                states = await db.fetch("SELECT state, attempts, count(*) AS n FROM inbox GROUP BY 1, 2")
                print("undecided:", [tuple(r) for r in states], "accepted:", load.accepted)
            return float("inf"), load.accepted
        return time.monotonic() - back, load.accepted
    finally:
        if db is not None:
            await db.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-takeover-"))
    os.chmod(workdir, 0o755)
    (workdir / "rules").mkdir()
    (workdir / "rules" / "takeover.yaml").write_text(RULE)
    prom_port, prom_stop = stand_in_prometheus(args.probe_s)
    result: dict[str, Any] = {"repo": str(args.repo)}
    with procs.start_postgres(workdir / "pg") as pg, procs.start_redis(workdir) as redis:
        env = {
            **os.environ,
            "REMEDIATOR_STORE_URL": pg.dsn,
            "REMEDIATOR_REDIS_URL": redis.url,
            "REMEDIATOR_RULES_DIR": str(workdir / "rules"),
            "REMEDIATOR_WEBHOOK_TOKEN": servers.TOKEN,
            "REMEDIATOR_PROMETHEUS_URL": f"http://127.0.0.1:{prom_port}",
            "REMEDIATOR_LOG_FORMAT": "json",
            "REMEDIATOR_LOG_LEVEL": "warning",
            "REMEDIATOR_DIAGNOSIS_DEADLINE_S": "20",
            "REMEDIATOR_STORE_TIMEOUT_S": "1",
        }
        replicas = Replicas(args.repo, env, workdir)
        for _ in range(3):
            replicas.start()
        load = Load(replicas, args.rate)
        load.start()
        try:
            kills: list[tuple[float, int]] = []
            for k in range(args.kills):
                await asyncio.sleep(args.warm_s)
                kills.append(await takeover(replicas, pg.dsn, k % 3, args.timeout))
                print(f"kill {k + 1}: {kills[-1][1]} claimed rows done by others in {kills[-1][0]:.2f}s")
                await asyncio.to_thread(replicas.start)  # back to three
            result["kills"] = kills
            result["takeover_median_s"] = statistics.median(s for s, _ in kills) if kills else None
            if args.outage_s > 0:
                await asyncio.sleep(args.warm_s)
                result["outage"] = await outage(pg, load, args.outage_s, args.timeout)
                seconds, accepted = result["outage"]
                print(f"outage: {accepted} accepted alerts decided {seconds:.2f}s after return")
            result["refused"] = load.refused
        finally:
            await load.stop()
            await asyncio.to_thread(replicas.stop_all)
            prom_stop.set()
    return result


def defaults() -> argparse.Namespace:
    """The settings ``python -m bench`` runs the takeover bench with (this module's defaults)."""
    return parser().parse_args([])


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.takeover", description=__doc__)
    parser.add_argument("--repo", type=Path, default=servers.REPO, help="the tree whose service runs")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--rate", type=float, default=20.0, help="alerts/s offered (10 per POST)")
    parser.add_argument("--probe-s", type=float, default=1.0, help="how long each alert's probe takes")
    parser.add_argument("--warm-s", type=float, default=5.0, help="load before each kill and the outage")
    parser.add_argument("--outage-s", type=float, default=10.0, help="0: no PostgreSQL outage")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up waiting after this")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = "python -m bench.takeover " + " ".join(argv if argv is not None else sys.argv[1:])
    result = asyncio.run(run(args))
    print(f"command: {command.strip()}")
    print(f"repo: {result['repo']}")
    for n, (seconds, rows) in enumerate(result.get("kills", []), 1):
        print(f"| kill {n} | {rows} rows | {seconds:.2f} s |")
    if result.get("takeover_median_s") is not None:
        print(
            f"takeover median of {len(result['kills'])}: {result['takeover_median_s']:.2f} s (target <= 15 s)"
        )
    if "outage" in result:
        after = result["outage"][0]
        print(f"decided after a {args.outage_s:g} s outage: {after:.2f} s after return (target <= 10 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
