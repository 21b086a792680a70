"""``postgres.terminate_idle`` (safe-capable, no target): terminate sessions idle for too long.

Params: ``idle_for_s`` (3600; at least 60), ``max_count`` (20; 1..200), ``include_idle_in_transaction``
(false), and ``host``/``port``/``database`` to reach another server or database than the DSN's (never other
credentials). One statement with bound parameters terminates, oldest first, at most ``max_count`` backends
of the connected database whose ``state`` is ``idle`` (and ``idle in transaction`` only when asked) since
more than ``idle_for_s``. Dry-run and ``preflight`` run the same selection as a plain SELECT.

Refuses: no session qualifies (nothing to terminate).
Never terminates: an ``active`` session; an idle-in-transaction one unless asked; its own session; anything
but a ``client backend`` (no walsender, autovacuum or background worker); a session of a superuser or
replication role; a session of another database. The monitoring role needs ``pg_signal_backend``.
Result: ``terminated`` (count), ``pids``, ``sessions`` (pid, user, application, state, idle_s).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from service.remediation.actions import common
from service.remediation.base import ActionContext, Outcome, action

MIN_IDLE_FOR_S = 60

#: $1 idle seconds, $2 max count, $3 include idle in transaction; values are bound, never formatted in
_SELECT = """
SELECT a.pid, coalesce(a.usename::text, '') AS usename, coalesce(a.application_name, '') AS application_name,
       a.state, extract(epoch FROM now() - a.state_change)::float8 AS idle_s
FROM pg_stat_activity a
WHERE a.backend_type = 'client backend'
  AND a.pid <> pg_backend_pid()
  AND a.datname = current_database()
  AND (a.state = 'idle'
       OR ($3::boolean AND a.state IN ('idle in transaction', 'idle in transaction (aborted)')))
  AND a.state_change < now() - make_interval(secs => $1::float8)
  AND NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = a.usesysid AND (r.rolsuper OR r.rolreplication))
ORDER BY a.state_change
LIMIT $2
"""

SELECT_SQL = _SELECT.strip()
TERMINATE_SQL = f"""
WITH victims AS MATERIALIZED ({_SELECT})
SELECT pid, usename, application_name, state, idle_s, pg_terminate_backend(pid) AS terminated
FROM victims
ORDER BY idle_s DESC
""".strip()  # noqa: S608 - a constant: the only values are the bound $1..$3


class TerminateIdleParams(common.PostgresParams):
    idle_for_s: int = Field(3600, ge=MIN_IDLE_FOR_S)
    max_count: int = Field(20, ge=1, le=200)
    include_idle_in_transaction: bool = False


def _args(params: TerminateIdleParams) -> list[Any]:
    return [params.idle_for_s, params.max_count, params.include_idle_in_transaction]


def _session(row: Any) -> dict[str, Any]:
    return {
        "pid": int(row["pid"]),
        "user": row["usename"],
        "application": row["application_name"],
        "state": row["state"],
        "idle_s": round(float(row["idle_s"]), 1),
    }


def _nothing(params: TerminateIdleParams, where: str) -> str:
    states = "idle or idle in transaction" if params.include_idle_in_transaction else "idle"
    return f"no session {states} for over {params.idle_for_s}s on {where}: nothing to terminate"


async def _fetch(
    ctx: ActionContext, params: TerminateIdleParams, statement: str, *, read_only: bool
) -> list[Any]:
    connector = common.connector_of(ctx)
    async with connector.connect(
        host=params.host,
        port=params.port,
        database=params.database,
        timeout=ctx.timeout_s,
        read_only=read_only,
    ) as conn:
        return list(await conn.fetch(statement, *_args(params)))


async def preflight(ctx: ActionContext, params: TerminateIdleParams) -> str | None:
    """Refused when no session qualifies (read-only: the SELECT that dry-run shows)."""
    if await _fetch(ctx, params, SELECT_SQL, read_only=True):
        return None
    return _nothing(
        params,
        common.connector_of(ctx).describe(host=params.host, port=params.port, database=params.database),
    )


@action(
    "postgres.terminate_idle",
    TerminateIdleParams,
    safe_capable=True,
    preflight=preflight,
    needs_target=False,
)
async def terminate_idle(ctx: ActionContext, params: TerminateIdleParams) -> Outcome:
    connector = common.connector_of(ctx)
    statement = SELECT_SQL if ctx.dry_run else TERMINATE_SQL
    request = common.sql_request(connector, params, statement, _args(params))
    where = request.path.removeprefix("postgresql://")
    states = "idle or idle in transaction" if params.include_idle_in_transaction else "idle"
    rows = await _fetch(ctx, params, statement, read_only=ctx.dry_run)
    if not rows:  # the statement selected nothing, so it terminated nothing: a refusal, like preflight's
        raise common.refuse(_nothing(params, where))
    if ctx.dry_run:
        sessions = [_session(row) for row in rows]
        pids = [s["pid"] for s in sessions]
        what = f"terminate {len(pids)} sessions {states} for over {params.idle_for_s}s on {where}"
        return common.dry_run(what, [request], terminated=0, pids=pids, sessions=sessions)
    ended = [_session(row) for row in rows if row["terminated"]]
    pids = [s["pid"] for s in ended]
    summary = f"terminated {len(pids)} sessions {states} for over {params.idle_for_s}s on {where}"
    if len(ended) < len(rows):  # pg_terminate_backend is false for a backend that exited meanwhile
        summary += f" ({len(rows) - len(ended)} had already ended)"
    result = {"terminated": len(pids), "pids": pids, "sessions": ended}
    return Outcome(ok=True, summary=summary, requests=[request], result=result)


ACTIONS = (terminate_idle,)
