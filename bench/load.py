"""The load generator: wrk (one thread, 16 connections) pinned to the load core, posting Alertmanager
bodies whose every alert has a fingerprint never sent before (``<prefix><request counter>-<i>``).

Against replicas (``spread``), one wrk per replica runs at once, the 16 connections shared among them; the
round is their sum (requests) and their worst (p99: the slowest replica's, never an average that hides it).
"""

from __future__ import annotations

import json
import statistics
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


def wrk(
    url: str,
    template: Path,
    *,
    prefix: str,
    alerts: int,
    seconds: float,
    token: str | None,
    connections: int = CONNECTIONS,
) -> Round:
    return _result(_start(url, template, prefix, alerts, seconds, token, connections), seconds, alerts)


def spread(
    urls: list[str], template: Path, *, prefix: str, alerts: int, seconds: float, token: str | None
) -> Round:
    """The same load as ``wrk`` (16 connections in all), spread over ``urls``: one wrk each, at once."""
    if len(urls) == 1:
        return wrk(urls[0], template, prefix=prefix, alerts=alerts, seconds=seconds, token=token)
    shares = [CONNECTIONS // len(urls) + (n < CONNECTIONS % len(urls)) for n in range(len(urls))]
    procs = [
        _start(url, template, f"{prefix}-{n}-", alerts, seconds, token, share)
        for n, (url, share) in enumerate(zip(urls, shares, strict=True))
    ]
    rounds = [_result(proc, seconds, alerts) for proc in procs]
    return Round(
        requests=sum(r.requests for r in rounds),
        seconds=max(r.seconds for r in rounds),
        non2xx=sum(r.non2xx for r in rounds),
        socket_errors=sum(r.socket_errors for r in rounds),
        p50_ms=statistics.median(r.p50_ms for r in rounds),
        p99_ms=max(r.p99_ms for r in rounds),
        alerts_per_post=alerts,
    )


def _start(
    url: str, template: Path, prefix: str, alerts: int, seconds: float, token: str | None, connections: int
) -> subprocess.Popen[str]:
    argv = [
        "taskset",
        "-c",
        LOAD_CORE,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
    ]
    argv += ["-s", str(LUA), url, "--", str(template), prefix, str(alerts), token or "-"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen[str], seconds: float, alerts: int) -> Round:
    try:
        out, _ = proc.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args, out)
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
