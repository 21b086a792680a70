"""End to end: a storm of alerts over many targets, posted as fast as intake takes them, until the inbox has
decided every one (shipped rules, SQLite; probes that need a cluster report ``skipped`` here).

Figures from the store itself: POST → decided (``inbox.processed_at - received_at``), POST → first probe
started (per incident, its opening alert's ``received_at`` to its first finding's start), wall time, peak RSS.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import servers
from bench.load import FIXTURE

SENDERS = 16


def _payloads(alerts: int, targets: int, per_post: int) -> list[bytes]:
    base = orjson.loads(FIXTURE.read_bytes())
    template = base["alerts"][0]
    items = []
    for n in range(alerts):
        alert = dict(template)
        alert["labels"] = {**template["labels"], "service": f"svc-{n % targets:04d}"}
        alert["fingerprint"] = f"storm-{n}"
        items.append(alert)
    return [orjson.dumps({**base, "alerts": items[i : i + per_post]}) for i in range(0, len(items), per_post)]


async def _post_all(url: str, payloads: list[bytes]) -> int:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {servers.TOKEN}"}
    queue = list(reversed(payloads))
    failures = 0

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        while queue:
            body = queue.pop()
            for _ in range(20):  # a 503 (store busy) is retried, as Alertmanager would
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status == 200:
                        break
                    failures += 1
                await asyncio.sleep(0.1)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(sender(session) for _ in range(SENDERS)))
    return failures


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def run(work: Path, port: int, *, alerts: int, targets: int, per_post: int, timeout: float) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    db = work / "storm.db"
    payloads = _payloads(alerts, targets, per_post)
    with servers.remediator(port, f"sqlite:///{db}", servers.REPO / "rules", work) as pid:
        started = time.monotonic()
        retries = asyncio.run(_post_all(f"http://127.0.0.1:{port}/v1/alerts", payloads))
        posted = time.monotonic() - started
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        pending = alerts
        while time.monotonic() - started < timeout:
            pending = conn.execute("SELECT count(*) FROM inbox WHERE state != 'done'").fetchone()[0]
            if pending == 0:
                break
            time.sleep(0.2)
        decided = time.monotonic() - started
        rss = servers.peak_rss_mb(pid)
        decide = [
            (p - r) * 1000
            for r, p in conn.execute(
                "SELECT received_at, processed_at FROM inbox WHERE processed_at IS NOT NULL"
            )
        ]
        probe = [
            (first - received) * 1000
            for received, first in conn.execute(
                "SELECT i.received_at, min(f.at - f.duration_ms / 1000.0) FROM incidents c"
                " JOIN inbox i ON i.id = c.opened_by JOIN findings f ON f.incident_id = c.id GROUP BY c.id"
            )
        ]
        outcomes = dict(conn.execute("SELECT coalesce(outcome, state), count(*) FROM inbox GROUP BY 1"))
        incidents = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
        conn.close()
    return {
        "alerts": alerts,
        "targets": targets,
        "per_post": per_post,
        "post_s": posted,
        "wall_s": decided,
        "undecided": pending,
        "retries": retries,
        "rss_mb": rss,
        "incidents": incidents,
        "outcomes": outcomes,
        "decided_p50_ms": statistics.median(decide) if decide else float("nan"),
        "decided_p99_ms": _pct(decide, 0.99),
        "probe_p50_ms": statistics.median(probe) if probe else float("nan"),
        "probe_p99_ms": _pct(probe, 0.99),
        "probed_incidents": len(probe),
    }
