"""The load generator: wrk (one thread, 16 connections) pinned to the load core, posting Alertmanager
bodies whose every alert has a fingerprint never sent before (``<prefix><request counter>-<i>``).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.servers import LOAD_CORE, REPO

CONNECTIONS = 16
FIXTURE = REPO / "tests" / "fixtures" / "alertmanager" / "am-0.25-firing.json"
LUA = Path(__file__).with_name("post.lua")


@dataclass(frozen=True)
class Round:
    requests: int
    seconds: float
    non2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    alerts_per_post: int

    @property
    def alerts_per_s(self) -> float:
        return self.requests * self.alerts_per_post / self.seconds


def write_template(path: Path) -> Path:
    """Line 1: the fixture's envelope with ``@ALERTS@``; line 2: its alert (renamed) with ``@FP@``."""
    payload = orjson.loads(FIXTURE.read_bytes())
    alert = payload["alerts"][0]
    alert["labels"] = {**alert["labels"], "alertname": "BenchLoad"}
    alert["fingerprint"] = "@FP@"
    payload["alerts"] = "@ALERTS@"
    envelope = orjson.dumps(payload).decode().replace('"@ALERTS@"', "[@ALERTS@]")
    path.write_text(envelope + "\n" + orjson.dumps(alert).decode() + "\n")
    return path


def wrk(url: str, template: Path, *, prefix: str, alerts: int, seconds: float, token: str | None) -> Round:
    argv = [
        "taskset",
        "-c",
        LOAD_CORE,
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
    ]
    argv += ["-s", str(LUA), url, "--", str(template), prefix, str(alerts), token or "-"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH "))
    data = json.loads(line.removeprefix("BENCH "))
    return Round(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        non2xx=data["non2xx"],
        socket_errors=data["socket_errors"],
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        alerts_per_post=alerts,
    )
