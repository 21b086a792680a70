"""PostgreSQL probes: ``postgres.ping``, ``.activity``, ``.long_queries`` and ``.replication``.

Each opens one short read-only session with the configured credentials (``ctx.clients.postgres``; params
may move it to another host, port or database, never another user), runs catalog queries, and closes it.
Down is a finding: refused or no answer → ``failed`` with ``reachable: false``; up but taking no new
sessions (starting up, too many connections) → ``degraded`` with ``accepting: false`` and the reason.
Every probe's facts carry ``reachable``, ``accepting``, ``timeout`` (bool) and ``reason`` (why not
reachable or accepting, else null); its other facts are null when it could not look.

Query text (``long_queries``) is redacted and truncated here before it goes into facts, which the runner
does not redact. Never writes, never cancels or terminates anything (that is ``postgres.terminate_idle``'s
job, an action). The monitoring role needs ``pg_monitor`` to see other users' sessions.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import Field

from service.clients import postgres as pg
from service.diagnosis import net, redact
from service.diagnosis.base import Observation, Params, ProbeContext, ProbeDef, probe

QUERY_CHARS = 200
_ACTIVITY_FACTS = (
    "connections",
    "max_connections",
    "reserved_connections",
    "usage_ratio",
    "by_state",
    "idle_over_1h",
    "idle_over_threshold",
    "idle_in_transaction",
    "waiting_on_locks",
)
_UP: dict[str, Any] = {"reachable": True, "accepting": True, "timeout": False, "reason": None}

_ACTIVITY_SQL = """
SELECT coalesce(state, 'unknown') AS state,
       coalesce(usename::text, '') AS usename,
       coalesce(application_name, '') AS application_name,
       wait_event_type,
       extract(epoch FROM now() - state_change)::float8 AS state_s
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
"""

_LONG_SQL = """
SELECT pid, extract(epoch FROM now() - query_start)::float8 AS duration_s, state,
       coalesce(usename::text, '') AS usename, coalesce(application_name, '') AS application_name,
       left(query, 2000) AS query, count(*) OVER () AS total
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid()
  AND query_start < now() - make_interval(secs => $1::float8)
ORDER BY query_start
LIMIT $2
"""

_REPLICAS_SQL = """
SELECT coalesce(application_name, '') AS name, host(client_addr) AS client_addr, state, sync_state,
       extract(epoch FROM replay_lag)::float8 AS replay_lag_s,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 AS replay_lag_bytes
FROM pg_stat_replication
ORDER BY application_name, client_addr
"""

_STANDBY_SQL = """
SELECT coalesce(pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(), false) AS caught_up,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS since_replay_s,
       EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') AS receiving
"""


class PostgresParams(Params):
    """Where to connect, when not where the DSN says (credentials always come from settings)."""

    host: str | None = Field(None, min_length=1, max_length=253)
    port: int | None = Field(None, ge=1, le=65535)
    database: str | None = Field(None, min_length=1, max_length=63)


class ActivityParams(PostgresParams):
    warn_ratio: float = Field(0.8, gt=0, le=1)
    idle_threshold_s: float = Field(3600, gt=0)


class LongQueriesParams(PostgresParams):
    min_duration_s: float = Field(300, ge=0)
    limit: int = Field(10, ge=1, le=100)


class ReplicationParams(PostgresParams):
    max_lag_s: float = Field(30, ge=0)
    min_replicas: int = Field(0, ge=0)


Body = Callable[[Any], Awaitable[Observation]]


@probe("postgres.ping", PostgresParams)
async def ping(ctx: ProbeContext, params: PostgresParams) -> Observation:
    """Open a session and ask the server who it is (what ``pg_isready`` tells, and a little more).

    Facts: ``server_version``, ``in_recovery`` (a standby), ``connect_ms`` (and the common four).
    Status: session opened → ok; starting up, shutting down, too many connections → degraded; refused,
    unreachable or timed out → failed. Authentication failures are errors (a configuration problem).
    """
    started = time.perf_counter()

    async def body(conn: Any) -> Observation:
        connect_ms = round((time.perf_counter() - started) * 1000, 1)
        row = await conn.fetchrow(
            "SELECT current_setting('server_version') AS version, pg_is_in_recovery() AS in_recovery"
        )
        facts = {
            **_UP,
            "server_version": row["version"],
            "in_recovery": row["in_recovery"],
            "connect_ms": connect_ms,
        }
        role = "standby" if row["in_recovery"] else "primary"
        summary = f"PostgreSQL {_where(ctx, params)} is up ({row['version']}, {role}) in {connect_ms:.0f} ms"
        return Observation("ok", summary, facts)

    empty = {"server_version": None, "in_recovery": None, "connect_ms": None}
    return await _with_session(ctx, params, body, empty)


@probe("postgres.activity", ActivityParams)
async def activity(ctx: ProbeContext, params: ActivityParams) -> Observation:
    """How full the server is, and what its client sessions are doing (no query text).

    Params: ``warn_ratio`` (0.8: ``usage_ratio`` at or above → degraded), ``idle_threshold_s`` (3600).
    Facts: ``connections`` (client backends, this probe's own session not counted), ``max_connections``,
    ``reserved_connections`` (superuser_reserved_connections: ordinary roles are refused once
    ``connections`` reaches max − reserved), ``usage_ratio`` (connections / max_connections),
    ``by_state`` (state → count), ``idle_over_1h`` (idle for an hour or more), ``idle_over_threshold``
    (idle for ``idle_threshold_s`` or more), ``idle_in_transaction`` (including aborted ones),
    ``waiting_on_locks``.
    Evidence: the largest groups of sessions by state, user and application.
    """

    async def body(conn: Any) -> Observation:
        rows = await conn.fetch(_ACTIVITY_SQL)
        limits = await conn.fetchrow(
            "SELECT current_setting('max_connections')::int AS max,"
            " current_setting('superuser_reserved_connections')::int AS reserved"
        )
        max_connections = int(limits["max"])
        ratio = round(len(rows) / max_connections, 3)
        idle = [r["state_s"] or 0.0 for r in rows if r["state"] == "idle"]
        in_transaction = sum(1 for r in rows if r["state"].startswith("idle in transaction"))
        on_locks = sum(1 for r in rows if r["wait_event_type"] == "Lock")
        facts = {
            **_UP,
            "connections": len(rows),
            "max_connections": max_connections,
            "reserved_connections": int(limits["reserved"]),
            "usage_ratio": ratio,
            "by_state": dict(Counter(r["state"] for r in rows).most_common()),
            "idle_over_1h": sum(1 for s in idle if s >= 3600),
            "idle_over_threshold": sum(1 for s in idle if s >= params.idle_threshold_s),
            "idle_in_transaction": in_transaction,
            "waiting_on_locks": on_locks,
        }
        groups = Counter((r["state"], r["usename"], r["application_name"]) for r in rows).most_common(15)
        evidence = "\n".join(
            ["count  state                          user             application"]
            + [f"{n:>5}  {state:<30} {user[:16]:<16} {app[:40]}" for (state, user, app), n in groups]
        )
        summary = (
            f"{len(rows)}/{max_connections} connections ({ratio:.0%}), "
            f"{in_transaction} idle in transaction, {on_locks} waiting on locks"
        )
        if ratio >= params.warn_ratio:
            return Observation("degraded", f"{summary} (≥ {params.warn_ratio:.0%})", facts, evidence)
        return Observation("ok", summary, facts, evidence)

    empty: dict[str, Any] = dict.fromkeys(_ACTIVITY_FACTS)
    return await _with_session(ctx, params, body, empty)


@probe("postgres.long_queries", LongQueriesParams)
async def long_queries(ctx: ProbeContext, params: LongQueriesParams) -> Observation:
    """Active queries running for ``min_duration_s`` (300) or longer, oldest first.

    Params: ``min_duration_s``, ``limit`` (10: how many are listed; ``count`` counts them all).
    Facts: ``count``, ``longest_s`` (null when none), ``queries``: up to ``limit`` of ``{pid, duration_s,
    state, usename, application_name, query}`` with ``query`` redacted and cut to 200 characters.
    Status: any → degraded; none → ok.
    """

    async def body(conn: Any) -> Observation:
        rows = await conn.fetch(_LONG_SQL, params.min_duration_s, params.limit)
        queries = [
            {
                "pid": r["pid"],
                "duration_s": round(r["duration_s"], 1),
                "state": r["state"],
                "usename": r["usename"],
                "application_name": r["application_name"],
                "query": _query_text(r["query"], ctx.clients.secrets),
            }
            for r in rows
        ]
        count = int(rows[0]["total"]) if rows else 0
        facts = {
            **_UP,
            "count": count,
            "longest_s": queries[0]["duration_s"] if queries else None,
            "queries": queries,
        }
        if not queries:
            return Observation("ok", f"no query running longer than {params.min_duration_s:g}s", facts)
        first = queries[0]
        summary = (
            f"{count} quer{'y' if count == 1 else 'ies'} running longer than {params.min_duration_s:g}s; "
            f"longest {first['duration_s']:.0f}s (pid {first['pid']}, user {first['usename'] or '?'})"
        )
        evidence = "\n".join(
            f"pid {q['pid']} {q['duration_s']:.0f}s {q['usename']} {q['application_name']}: {q['query']}"
            for q in queries
        )
        return Observation("degraded", summary, facts, evidence)

    return await _with_session(ctx, params, body, {"count": None, "longest_s": None, "queries": []})


@probe("postgres.replication", ReplicationParams)
async def replication(ctx: ProbeContext, params: ReplicationParams) -> Observation:
    """Replication as the server sees it: its replicas on a primary, its replay lag on a standby.

    Params: ``max_lag_s`` (30: a lag over it → degraded), ``min_replicas`` (0: fewer → degraded).
    Facts: ``role`` ("primary" or "standby"). On a primary: ``replicas`` (from pg_stat_replication),
    ``max_replay_lag_s`` (largest ``replay_lag``; null with no replicas; a null ``replay_lag`` — an idle,
    caught-up replica — counts as 0), ``replicas_detail`` (``{name, client_addr, state, sync_state,
    replay_lag_s, replay_lag_bytes}``). On a standby: ``replay_lag_s`` (0 when everything received is
    replayed, else now() − the last replayed transaction's time; null if none was replayed yet) and
    ``receiving`` (a WAL receiver is streaming; not receiving → degraded). The other role's facts are null.
    """

    async def body(conn: Any) -> Observation:
        if await conn.fetchval("SELECT pg_is_in_recovery()"):
            return _standby(await conn.fetchrow(_STANDBY_SQL), params)
        return _primary(await conn.fetch(_REPLICAS_SQL), params)

    empty: dict[str, Any] = {
        "role": None,
        "replicas": None,
        "max_replay_lag_s": None,
        "replicas_detail": [],
        "replay_lag_s": None,
        "receiving": None,
    }
    return await _with_session(ctx, params, body, empty)


def _primary(rows: list[Any], params: ReplicationParams) -> Observation:
    detail = [
        {
            "name": r["name"],
            "client_addr": r["client_addr"],
            "state": r["state"],
            "sync_state": r["sync_state"],
            "replay_lag_s": None if r["replay_lag_s"] is None else round(r["replay_lag_s"], 3),
            "replay_lag_bytes": None if r["replay_lag_bytes"] is None else int(r["replay_lag_bytes"]),
        }
        for r in rows
    ]
    max_lag = max((d["replay_lag_s"] or 0.0 for d in detail), default=None)
    facts = {
        **_UP,
        "role": "primary",
        "replicas": len(detail),
        "max_replay_lag_s": max_lag,
        "replicas_detail": detail,
        "replay_lag_s": None,
        "receiving": None,
    }
    summary = f"primary with {len(detail)} replica{'' if len(detail) == 1 else 's'}"
    if max_lag is not None:
        summary += f", max replay lag {max_lag:.1f}s"
    evidence = "\n".join(
        f"{d['name'] or '?'} {d['client_addr']} {d['state']} {d['sync_state']} lag={d['replay_lag_s']}s "
        f"bytes={d['replay_lag_bytes']}"
        for d in detail
    )
    problems = []
    if len(detail) < params.min_replicas:
        problems.append(f"fewer than {params.min_replicas} replicas")
    if max_lag is not None and max_lag > params.max_lag_s:
        problems.append(f"lag over {params.max_lag_s:g}s")
    if problems:
        return Observation("degraded", f"{summary} ({'; '.join(problems)})", facts, evidence)
    return Observation("ok", summary, facts, evidence)


def _standby(row: Any, params: ReplicationParams) -> Observation:
    since = row["since_replay_s"]
    lag = 0.0 if row["caught_up"] else (None if since is None else round(max(0.0, since), 3))
    facts = {
        **_UP,
        "role": "standby",
        "replicas": None,
        "max_replay_lag_s": None,
        "replicas_detail": [],
        "replay_lag_s": lag,
        "receiving": row["receiving"],
    }
    summary = f"standby, {'receiving' if row['receiving'] else 'NOT receiving'} WAL, replay lag " + (
        "unknown" if lag is None else f"{lag:.1f}s"
    )
    problems = []
    if not row["receiving"]:
        problems.append("no WAL receiver streaming")
    if lag is not None and lag > params.max_lag_s:
        problems.append(f"lag over {params.max_lag_s:g}s")
    if problems:
        return Observation("degraded", f"{summary} ({'; '.join(problems)})", facts)
    return Observation("ok", summary, facts)


async def _with_session(
    ctx: ProbeContext, params: PostgresParams, body: Body, empty: dict[str, Any]
) -> Observation:
    """Run ``body`` on a session; report "down" and "not accepting" as findings with ``empty`` facts."""
    connector = ctx.clients.postgres
    if connector is None:
        return Observation("skipped", "PostgreSQL not configured (REMEDIATOR_MONITOR_POSTGRES_DSN)")
    try:
        async with connector.connect(
            host=params.host, port=params.port, database=params.database, timeout=net.inner_timeout(ctx)
        ) as conn:
            return await body(conn)
    except pg.Unreachable as exc:
        facts = {
            "reachable": False,
            "accepting": False,
            **empty,
            "timeout": exc.timed_out,
            "reason": str(exc),
        }
        return Observation("failed", str(exc), facts)
    except pg.NotAccepting as exc:
        facts = {"reachable": True, "accepting": False, **empty, "timeout": False, "reason": exc.reason}
        return Observation("degraded", str(exc), facts)


def _where(ctx: ProbeContext, params: PostgresParams) -> str:
    assert ctx.clients.postgres is not None
    return ctx.clients.postgres.describe(host=params.host, port=params.port, database=params.database)


def _query_text(query: str | None, secrets: frozenset[str]) -> str:
    """Redacted first, then cut, so that half a secret never survives the cut."""
    text = " ".join(redact.redact(query or "", secrets).split())
    return text if len(text) <= QUERY_CHARS else text[: QUERY_CHARS - 1] + "…"


PROBES: tuple[ProbeDef, ...] = (ping, activity, long_queries, replication)
