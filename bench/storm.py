"""End to end, on SQLite: webhook → first probe at low load (a trickle), then a storm of alerts over many
targets until the inbox has decided every one, with probes and a restart action that really run — against
the Kubernetes stand-in and a local HTTP server, both in this process on the load core.

Each target is a Deployment ``shop/svc-NNNN`` whose pods crash-loop; the storm rule diagnoses it
(``kube.pods`` + ``http.get``) and restarts it (safe, automatic) under an action budget of ``BUDGET``
per 10 minutes: the budget must hold, so exactly ``BUDGET`` restarts reach the stand-in and every other
incident is escalated to a human. Figures come from the store itself: POST → decided
(``inbox.processed_at - received_at``), POST → first probe started (an incident's opening alert's
``received_at`` to its first finding's start), wall time, peak RSS, the server's CPU seconds (in all and
during the storm alone) and the stand-in's requests by kind.

Alone, as ``python -m bench`` runs it (server on the server core, this process on the load core)::

    python -m bench.storm [--alerts 10000 --targets 1000 --per-post 10] [--profile PATH [--top 40]]

``--profile`` runs the server under cProfile (wall-clock, ~1.3-2× slower: read shares, not speed) and prints
the entries of our code with the most cumulative time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from bench import servers
from bench.load import FIXTURE
from tests.support import procs
from tests.support.kube_standin import KubeStandin

SENDERS = 16
BUDGET = 50
TRICKLE = 50  # alerts, one at a time, for webhook → first probe at low load
RULE = """\
name: bench-storm
runbook: Storm
description: The storm benchmark's rule.
owner: bench
reviewed: {today}
mttr_target: 5m
severity: critical
match: ['alertname="StormTest"']
target: {{kind: Deployment, namespace: shop, name: "{{{{ labels.service }}}}"}}
diagnose:
  - {{id: pods, probe: kube.pods}}
  - {{id: health, probe: http.get, with: {{url: "http://127.0.0.1:{http_port}/healthz"}}}}
remediate:
  - action: kube.rollout_restart
    safety: safe
    when: findings.pods.facts.crashlooping > 0
    verify: {{probe: pods, within: 30s}}
"""


def _alert(template: dict[str, Any], service: str, fingerprint: str) -> dict[str, Any]:
    labels = {**template["labels"], "alertname": "StormTest", "service": service}
    return {**template, "labels": labels, "fingerprint": fingerprint}


def _payloads(alerts: int, targets: int, per_post: int) -> list[bytes]:
    base = orjson.loads(FIXTURE.read_bytes())
    items = [_alert(base["alerts"][0], f"svc-{n % targets:04d}", f"storm-{n}") for n in range(alerts)]
    return [orjson.dumps({**base, "alerts": items[i : i + per_post]}) for i in range(0, len(items), per_post)]


def _trickle_payloads() -> list[bytes]:
    base = orjson.loads(FIXTURE.read_bytes())
    return [
        orjson.dumps({**base, "alerts": [_alert(base["alerts"][0], f"calm-{n:02d}", f"calm-{n}")]})
        for n in range(TRICKLE)
    ]


HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {servers.TOKEN}"}


async def _post_all(url: str, payloads: list[bytes]) -> int:
    queue = list(reversed(payloads))
    failures = 0

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        while queue:
            body = queue.pop()
            for _ in range(20):  # a 503 (store busy) is retried, as Alertmanager would
                async with session.post(url, data=body, headers=HEADERS) as response:
                    await response.read()
                    if response.status == 200:
                        break
                    failures += 1
                await asyncio.sleep(0.1)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(sender(session) for _ in range(SENDERS)))
    return failures


async def _trickle(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for body in _trickle_payloads():
            async with session.post(url, data=body, headers=HEADERS) as response:
                await response.read()
            await asyncio.sleep(0.1)


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def _probe_latencies(conn: sqlite3.Connection, like: str) -> list[float]:
    return [
        (first - received) * 1000
        for received, first in conn.execute(
            "SELECT i.received_at, min(f.at - f.duration_ms / 1000.0) FROM incidents c"
            " JOIN inbox i ON i.id = c.opened_by JOIN findings f ON f.incident_id = c.id"
            " WHERE c.target_name LIKE ? GROUP BY c.id",
            (like,),
        )
    ]


async def _wait_decided(db: Path, started: float, timeout: float) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        pending = -1
        while time.monotonic() - started < timeout:
            pending = conn.execute("SELECT count(*) FROM inbox WHERE state != 'done'").fetchone()[0]
            if pending == 0:
                break
            await asyncio.sleep(0.1)
        return int(pending)
    finally:
        conn.close()


def _cpu_s(pid: int) -> float:
    """CPU time (user + system) ``pid`` has used so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _server(
    port: int, db: Path, rules: Path, work: Path, env: dict[str, str], profile: Path | None
) -> Iterator[int]:
    """The remediator on SQLite (``servers.remediator``), or, with ``profile``, the same under cProfile."""
    if profile is None:
        with servers.remediator(port, f"sqlite:///{db}", rules, work, extra_env=env) as pid:
            yield pid
        return
    env = {
        **env,
        "REMEDIATOR_LISTEN": f"127.0.0.1:{port}",
        "REMEDIATOR_STORE_URL": f"sqlite:///{db}",
        "REMEDIATOR_RULES_DIR": str(rules),
        "REMEDIATOR_WEBHOOK_TOKEN": servers.TOKEN,
        "REMEDIATOR_LOG_FORMAT": "json",
        "REMEDIATOR_LOG_LEVEL": "warning",
    }
    argv = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "service", "serve"]
    with servers.running(argv, env=env, log=work / "remediator.log") as proc:
        servers.wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        yield proc.pid


async def _health_server() -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/healthz", lambda _request: web.json_response({"status": "ok"}))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    return runner


async def _run(
    work: Path,
    port: int,
    *,
    alerts: int,
    targets: int,
    per_post: int,
    timeout: float,
    profile: Path | None = None,
) -> Any:
    db = work / "storm.db"
    health = await _health_server()
    http_port = procs.free_port()
    await web.TCPSite(health, "127.0.0.1", http_port).start()
    rules = work / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    (rules / "storm.yaml").write_text(RULE.format(today=datetime.date.today(), http_port=http_port))
    try:
        async with KubeStandin(rollout_delay=0.2) as kube:
            for n in range(targets):
                kube.add_deployment("shop", f"svc-{n:04d}", replicas=2)
                kube.set_deployment_pods_state("shop", f"svc-{n:04d}", "crashloop")
            for n in range(TRICKLE):
                kube.add_deployment("shop", f"calm-{n:02d}", replicas=2)  # healthy: diagnosed, not restarted
            kube.clear_requests()
            env = {
                "REMEDIATOR_KUBECONFIG": str(kube.write_kubeconfig(work / "kubeconfig", namespace="shop")),
                "REMEDIATOR_ACTION_BUDGET": f"{BUDGET}/10m",
                "REMEDIATOR_STORM_BRAKE": "1000",  # the budget is the guard under test
                "REMEDIATOR_VERIFY_INTERVAL_S": "0.3",
            }
            url = f"http://127.0.0.1:{port}/v1/alerts"
            with _server(port, db, rules, work, env, profile) as pid:
                await _trickle(url)
                await _wait_decided(db, time.monotonic(), 30)
                cpu_before = _cpu_s(pid)
                started = time.monotonic()
                retries = await _post_all(url, _payloads(alerts, targets, per_post))
                posted = time.monotonic() - started
                pending = await _wait_decided(db, started, timeout)
                decided = time.monotonic() - started
                rss = servers.peak_rss_mb(pid)
                cpu = _cpu_s(pid)
            restarts = sum(1 for r in kube.writes() if r.method == "PATCH" and "/deployments/" in r.path)
            calls = collections.Counter(f"{r.method} {_kind(r.path)}" for r in kube.requests)
    finally:
        await health.cleanup()
    figures = _figures(db, alerts, targets, per_post, posted, decided, pending, retries, rss, restarts)
    return {**figures, "server_cpu_s": cpu, "storm_cpu_s": cpu - cpu_before, "kube_requests": dict(calls)}


def _kind(path: str) -> str:
    """``/apis/apps/v1/namespaces/shop/deployments/svc-0001`` → ``deployments/NAME`` (a request's kind)."""
    parts = path.split("?", maxsplit=1)[0].strip("/").split("/")
    if "namespaces" in parts and len(parts) > parts.index("namespaces") + 2:
        rest = parts[parts.index("namespaces") + 2 :]
        return "/".join([rest[0], *(["NAME"] if len(rest) > 1 else []), *rest[2:]])
    return "/".join(parts[-2:])


def _figures(
    db: Path,
    alerts: int,
    targets: int,
    per_post: int,
    posted: float,
    decided: float,
    pending: int,
    retries: int,
    rss: float,
    restarts: int,
) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        decide = [
            (p - r) * 1000
            for r, p in conn.execute(
                "SELECT received_at, processed_at FROM inbox"
                " WHERE processed_at IS NOT NULL AND fingerprint LIKE 'storm-%'"
            )
        ]
        trickle = _probe_latencies(conn, "calm-%")
        storm = _probe_latencies(conn, "svc-%")
        outcomes = dict(
            conn.execute(
                "SELECT coalesce(outcome, state), count(*) FROM inbox"
                " WHERE fingerprint LIKE 'storm-%' GROUP BY 1"
            )
        )
        stored = conn.execute("SELECT count(*) FROM inbox WHERE fingerprint LIKE 'storm-%'").fetchone()[0]
        states = dict(conn.execute("SELECT state, count(*) FROM incidents GROUP BY 1"))
    finally:
        conn.close()
    return {
        "alerts": alerts,
        "targets": targets,
        "per_post": per_post,
        "budget": BUDGET,
        "post_s": posted,
        "wall_s": decided,
        "undecided": pending,
        "stored": stored,
        "retries": retries,
        "rss_mb": rss,
        "restarts": restarts,
        "incident_states": states,
        "outcomes": outcomes,
        "decided_p50_ms": statistics.median(decide) if decide else float("nan"),
        "decided_p99_ms": _pct(decide, 0.99),
        "trickle_probe_p50_ms": statistics.median(trickle) if trickle else float("nan"),
        "trickle_probe_p99_ms": _pct(trickle, 0.99),
        "trickle_incidents": len(trickle),
        "probe_p50_ms": statistics.median(storm) if storm else float("nan"),
        "probe_p99_ms": _pct(storm, 0.99),
        "probed_incidents": len(storm),
    }


def run(
    work: Path,
    port: int,
    *,
    alerts: int,
    targets: int,
    per_post: int,
    timeout: float,
    profile: Path | None = None,
) -> dict[str, Any]:
    """The storm's figures; ``profile``: run the server under cProfile and dump its profile there."""
    work.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = asyncio.run(
        _run(work, port, alerts=alerts, targets=targets, per_post=per_post, timeout=timeout, profile=profile)
    )
    return figures


def _profile_summary(path: Path, top: int) -> str:
    """The ``top`` entries of our code (``service/``) by cumulative time, from a cProfile dump."""
    import pstats

    stats = pstats.Stats(str(path))
    table = stats.stats  # type: ignore[attr-defined]
    ours = [
        (v[3], v[1], f"{file.split('/service/', 1)[1]}:{line} {func}")
        for (file, line, func), v in table.items()
        if "/service/" in file and "/.venv/" not in file
    ]
    ours.sort(reverse=True)
    lines = [f"{'cumulative s':>12} {'calls':>8}  function"]
    lines += [f"{cum:12.2f} {calls:8d}  {where}" for cum, calls, where in ours[:top]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.storm``: the storm alone, the server on the server core and this process (the
    senders, the Kubernetes stand-in) on the load core, as ``python -m bench`` runs it."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.storm", description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--targets", type=int, default=1_000)
    parser.add_argument("--per-post", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--profile", type=Path, help="run the server under cProfile, dump to PATH")
    parser.add_argument("--top", type=int, default=40, help="with --profile: entries of our code shown")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {int(servers.LOAD_CORE)})
    command = "python -m bench.storm " + " ".join(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="storm-") as tmp:
        figures = run(
            Path(tmp),
            procs.free_port(),
            alerts=args.alerts,
            targets=args.targets,
            per_post=args.per_post,
            timeout=args.timeout,
            profile=args.profile,
        )
    print(orjson.dumps(figures).decode())
    print(f"command: {command.strip()}")
    if args.profile is not None:
        print(_profile_summary(args.profile, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
