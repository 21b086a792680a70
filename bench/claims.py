"""Claim cost against a backlog: ``python -m bench.claims [BACKLOG]`` — the dispatcher's ``inbox.claim`` on a
SQLite inbox holding BACKLOG pending rows (default 50,000), median of 20 claims of 8 rows."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time

from service.records import inbox
from service.records.store import Store


async def measure(backlog: int) -> float:
    directory = tempfile.mkdtemp(prefix="claims-")
    store = Store.open(f"sqlite:///{directory}/inbox.db")
    await store.migrate()
    now = time.time()
    rows = [
        {
            "fingerprint": f"f{i}",
            "starts_at": "2026-01-01T00:00:00.000000Z",
            "status": "firing",
            "alertname": "x",
            "payload": "{}",
            "receiver": "r",
            "group_key": "",
            "truncated": 0,
            "received_at": now,
            "state": "pending",
            "attempts": 0,
        }
        for i in range(backlog)
    ]
    for start in range(0, backlog, 5000):
        async with store.write() as conn:
            await inbox.insert(store, conn, rows[start : start + 5000])
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        await inbox.claim(store, "bench", limit=8, lease_s=60, now=time.time())
        timings.append(time.perf_counter() - started)
    await store.close()
    return statistics.median(timings) * 1000


def main() -> None:
    backlog = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    print(
        f"inbox.claim(limit=8) with {backlog:,} pending rows: {asyncio.run(measure(backlog)):.1f} ms median"
    )


if __name__ == "__main__":
    main()
