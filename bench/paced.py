"""Open-loop load at a fixed rate (what wrk, closed-loop, cannot do): latency is measured from each request's
scheduled send time, so a stalled server cannot hide its queueing (no coordinated omission).

The generator must not be the tail it measures: it runs on uvloop with the collector off (a 5 s run of
bodies built up front allocates little; a full collection over them stalled it 20-70 ms), and times with
``time.perf_counter`` (uvloop's clock counts whole milliseconds). Against the bare baseline at 3,400 POST/s
its own p99 went from 17-70 ms (asyncio, collector on) to 2-5 ms.

``python -m bench.paced URL TEMPLATE PREFIX ALERTS RATE SECONDS TOKEN`` prints one JSON line.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import uvloop


def bodies(template: Path, prefix: str, alerts: int, count: int) -> list[bytes]:
    envelope, alert = template.read_text().splitlines()[:2]
    head, tail = envelope.split("@ALERTS@")
    a_head, a_tail = alert.split("@FP@")
    return [
        (head + ",".join(f"{a_head}{prefix}{n}-{i}{a_tail}" for i in range(1, alerts + 1)) + tail).encode()
        for n in range(count)
    ]


async def run(url: str, payloads: list[bytes], rate: float, token: str) -> dict[str, float]:
    clock = time.perf_counter
    headers = {"Content-Type": "application/json"}
    if token != "-":
        headers["Authorization"] = f"Bearer {token}"
    latencies: list[float] = []
    errors = 0

    async def one(body: bytes, scheduled: float) -> None:
        nonlocal errors
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status >= 300:
                    errors += 1
        except aiohttp.ClientError:
            errors += 1
        latencies.append(clock() - scheduled)

    connector = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = clock() + 0.05
        tasks = []
        for n, body in enumerate(payloads):
            scheduled = start + n / rate
            delay = scheduled - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body, scheduled)))
        await asyncio.gather(*tasks)
        elapsed = clock() - start
    latencies.sort()
    return {
        "requests": len(payloads),
        "errors": errors,
        "offered_rps": rate,
        "achieved_rps": len(payloads) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def main() -> None:
    url, template, prefix, alerts, rate, seconds, token = sys.argv[1:8]
    count = max(1, int(float(rate) * float(seconds)))
    payloads = bodies(Path(template), prefix, int(alerts), count)
    gc.collect()
    gc.freeze()
    gc.disable()
    result = uvloop.run(run(url, payloads, float(rate), token))
    print("BENCH " + orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
