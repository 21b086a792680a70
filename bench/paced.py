"""Open-loop load at a fixed rate (what wrk, closed-loop, cannot do): latency is measured from each request's
scheduled send time, so a stalled server cannot hide its queueing (no coordinated omission).

``python -m bench.paced URL TEMPLATE PREFIX ALERTS RATE SECONDS TOKEN`` prints one JSON line.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from pathlib import Path

import aiohttp
import orjson


def bodies(template: Path, prefix: str, alerts: int, count: int) -> list[bytes]:
    envelope, alert = template.read_text().splitlines()[:2]
    head, tail = envelope.split("@ALERTS@")
    a_head, a_tail = alert.split("@FP@")
    return [
        (head + ",".join(f"{a_head}{prefix}{n}-{i}{a_tail}" for i in range(1, alerts + 1)) + tail).encode()
        for n in range(count)
    ]


async def run(url: str, payloads: list[bytes], rate: float, token: str) -> dict[str, float]:
    loop = asyncio.get_running_loop()
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
        latencies.append(loop.time() - scheduled)

    connector = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = loop.time() + 0.05
        tasks = []
        for n, body in enumerate(payloads):
            scheduled = start + n / rate
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body, scheduled)))
        await asyncio.gather(*tasks)
        elapsed = loop.time() - start
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
    print("BENCH " + orjson.dumps(asyncio.run(run(url, payloads, float(rate), token))).decode(), flush=True)


if __name__ == "__main__":
    main()
