"""Retention on SQLite: how long pruning 10,000 old resolved incidents takes and how long it holds the event
loop (SQLite statements run on the loop thread), per batch size.

    .venv/bin/python -m bench.retention            # batches 500 and 100
    .venv/bin/python -m bench.retention 50 100 500

The seed is the retention test's (tests/records/test_retention.py ``seed``): 10,000 incidents resolved 120
days ago with their rows, 100 open ones. A 1 ms ticker measures the loop's stalls while prune runs.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time

from service.records import retention
from service.records.store import Store
from tests.records.test_retention import CUTOFF, seed


async def _ticker(stalls: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(0.001)
        stalls.append(loop.time() - started - 0.001)


async def run(batch: int) -> str:
    """Seed, prune with ``batch``, reclaim; one line of figures."""
    with tempfile.TemporaryDirectory() as directory:
        store = Store.open(f"sqlite:///{directory}/bench.db")
        await store.migrate()
        await seed(store, old_resolved=10_000, open_=100)
        stalls: list[float] = []
        ticker = asyncio.create_task(_ticker(stalls))
        started = time.perf_counter()
        report = await retention.prune(store, cutoff=CUTOFF, batch=batch)
        pruned_s = time.perf_counter() - started
        prune_stalls = sorted(stalls)
        started = time.perf_counter()
        pages = await retention.reclaim(store)
        reclaim_s = time.perf_counter() - started
        ticker.cancel()
        await store.close()
    top = [round(s * 1000) for s in prune_stalls[-3:]]
    return (
        f"batch={batch}: {report.total} rows pruned in {pruned_s:.2f} s (longest loop stalls {top} ms); "
        f"{pages} pages reclaimed in {reclaim_s:.3f} s"
    )


def main(argv: list[str]) -> None:
    print("command: .venv/bin/python -m bench.retention " + " ".join(argv))
    for batch in [int(a) for a in argv] or [500, 100]:
        print(asyncio.run(run(batch)))


if __name__ == "__main__":
    main(sys.argv[1:])
