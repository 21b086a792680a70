"""Redis probes: ``redis.ping`` (is it up, how fast, which role) and ``redis.info`` (memory, clients, keys).

Each opens one short client with the configured credentials (``ctx.clients.redis``; params may move it to
another host, port or db, never another user) and runs only ``INFO`` and ``PING``. Down is a finding:
refused or no answer → ``failed`` with ``reachable: false``; loading its dataset → ``degraded`` with
``loading: true``. Every finding's facts carry ``reachable``, ``loading``, ``timeout`` and ``reason``.
Never runs a command that writes or reconfigures (no CONFIG, no CLIENT KILL, no SCAN-and-delete).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import Field

from service.clients import redis as rd
from service.diagnosis import net
from service.diagnosis.base import Observation, Params, ProbeContext, ProbeDef, probe

_INFO_FACTS = (
    "used_memory",
    "maxmemory",
    "memory_ratio",
    "maxmemory_policy",
    "connected_clients",
    "blocked_clients",
    "evicted_keys",
    "expired_keys",
    "rejected_connections",
    "keyspace",
    "role",
    "uptime_s",
)
_UP: dict[str, Any] = {"reachable": True, "loading": False, "timeout": False, "reason": None}
_INFO_FIELDS = (
    "redis_version",
    "role",
    "uptime_in_seconds",
    "used_memory",
    "used_memory_human",
    "maxmemory",
    "maxmemory_human",
    "maxmemory_policy",
    "mem_fragmentation_ratio",
    "connected_clients",
    "blocked_clients",
    "maxclients",
    "rejected_connections",
    "evicted_keys",
    "expired_keys",
    "loading",
)


class RedisParams(Params):
    """Where to connect, when not where the URL says (credentials always come from settings)."""

    host: str | None = Field(None, min_length=1, max_length=253)
    port: int | None = Field(None, ge=1, le=65535)
    db: int | None = Field(None, ge=0, le=15)


class InfoParams(RedisParams):
    warn_memory_ratio: float = Field(0.9, gt=0, le=1)
    max_clients: int | None = Field(None, ge=1)


Body = Callable[[Any], Awaitable[Observation]]


@probe("redis.ping", RedisParams)
async def ping(ctx: ProbeContext, params: RedisParams) -> Observation:
    """``INFO replication``/``persistence`` then a timed ``PING``.

    Facts: ``latency_ms`` (the PING round trip), ``role`` ("master" or "slave", as Redis says), and the
    common four: ``reachable``, ``loading``, ``timeout``, ``reason``.
    Status: answers → ok; loading its dataset → degraded; refused, unreachable or timed out → failed.
    Authentication failures are errors (a configuration problem).
    """

    async def body(client: Any) -> Observation:
        info = await client.info("replication", "persistence")
        facts = {**_UP, "latency_ms": None, "role": info.get("role")}
        if info.get("loading"):
            facts.update(loading=True, reason="loading the dataset")
            return Observation("degraded", f"Redis {_where(ctx, params)} is loading its dataset", facts)
        started = time.perf_counter()
        await client.ping()
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        facts["latency_ms"] = latency_ms
        summary = f"Redis {_where(ctx, params)} answers PING in {latency_ms:.1f} ms ({facts['role']})"
        return Observation("ok", summary, facts)

    return await _with_client(ctx, params, body, {"latency_ms": None, "role": None})


@probe("redis.info", InfoParams)
async def info(ctx: ProbeContext, params: InfoParams) -> Observation:
    """``INFO``: memory, clients, evictions, keyspace.

    Params: ``warn_memory_ratio`` (0.9), ``max_clients`` (optional).
    Facts: ``used_memory``, ``maxmemory`` (0: no limit), ``memory_ratio`` (used/max, null when maxmemory
    is 0), ``maxmemory_policy``, ``connected_clients``, ``blocked_clients``, ``evicted_keys``,
    ``expired_keys``, ``rejected_connections`` (the last three are totals since start: one probe cannot see
    an increase), ``keyspace`` (db name → key count), ``role``, ``uptime_s``, and the common four.
    Status: ``memory_ratio`` ≥ ``warn_memory_ratio``, or ``connected_clients`` ≥ ``max_clients`` →
    degraded; else ok. Evidence: the INFO lines these facts come from.
    """

    async def body(client: Any) -> Observation:
        raw = await client.info()
        used, maxmemory = int(raw.get("used_memory", 0)), int(raw.get("maxmemory", 0))
        ratio = round(used / maxmemory, 4) if maxmemory else None
        clients = int(raw.get("connected_clients", 0))
        facts = {
            **_UP,
            "used_memory": used,
            "maxmemory": maxmemory,
            "memory_ratio": ratio,
            "maxmemory_policy": raw.get("maxmemory_policy"),
            "connected_clients": clients,
            "blocked_clients": int(raw.get("blocked_clients", 0)),
            "evicted_keys": int(raw.get("evicted_keys", 0)),
            "expired_keys": int(raw.get("expired_keys", 0)),
            "rejected_connections": int(raw.get("rejected_connections", 0)),
            "keyspace": {
                name: int(value.get("keys", 0))
                for name, value in raw.items()
                if name.startswith("db") and isinstance(value, dict)
            },
            "role": raw.get("role"),
            "uptime_s": int(raw.get("uptime_in_seconds", 0)),
        }
        evidence = "\n".join(f"{name}:{raw[name]}" for name in _INFO_FIELDS if name in raw)
        evidence += "".join(f"\n{name}:keys={keys}" for name, keys in facts["keyspace"].items())
        memory = f"memory {_bytes(used)}" + (
            f" of {_bytes(maxmemory)} ({ratio:.0%})" if ratio is not None else ""
        )
        summary = f"{memory}, {clients} clients, {facts['evicted_keys']} evicted keys"
        problems = []
        if ratio is not None and ratio >= params.warn_memory_ratio:
            problems.append(f"memory at {ratio:.0%} ≥ {params.warn_memory_ratio:.0%}")
        if params.max_clients is not None and clients >= params.max_clients:
            problems.append(f"{clients} clients ≥ {params.max_clients}")
        if problems:
            return Observation("degraded", f"{summary} ({'; '.join(problems)})", facts, evidence)
        return Observation("ok", summary, facts, evidence)

    empty: dict[str, Any] = dict.fromkeys(_INFO_FACTS)
    return await _with_client(ctx, params, body, empty)


async def _with_client(
    ctx: ProbeContext, params: RedisParams, body: Body, empty: dict[str, Any]
) -> Observation:
    """Run ``body`` with a client; report "down" and "loading" as findings with ``empty`` facts."""
    connector = ctx.clients.redis
    if connector is None:
        return Observation("skipped", "Redis not configured (REMEDIATOR_MONITOR_REDIS_URL)")
    try:
        async with connector.connect(
            host=params.host, port=params.port, db=params.db, timeout=net.inner_timeout(ctx)
        ) as client:
            return await body(client)
    except rd.Unreachable as exc:
        facts = {**empty, "reachable": False, "loading": False, "timeout": exc.timed_out, "reason": str(exc)}
        return Observation("failed", str(exc), facts)
    except rd.Loading as exc:
        facts = {**empty, "reachable": True, "loading": True, "timeout": False, "reason": str(exc)}
        return Observation("degraded", str(exc), facts)


def _where(ctx: ProbeContext, params: RedisParams) -> str:
    assert ctx.clients.redis is not None
    return ctx.clients.redis.describe(host=params.host, port=params.port, db=params.db)


def _bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


PROBES: tuple[ProbeDef, ...] = (ping, info)
