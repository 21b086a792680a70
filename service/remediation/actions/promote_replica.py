"""``postgres.promote_replica`` (approval-only, no target): promote a streaming standby to primary.

Params: ``host``/``port`` (and ``database``) of the standby — a host must be the DSN's or in
``REMEDIATOR_MONITOR_HOSTS``. Runs ``SELECT pg_promote(wait => true, wait_seconds => $1)`` on a server that
``pg_is_in_recovery()``; ``wait_seconds`` is 60, or less to stay inside the action's time budget. The role
needs EXECUTE on ``pg_promote`` (superuser only by default: ``GRANT EXECUTE ON FUNCTION pg_promote TO …``).

Refuses: a server that is not in recovery (a primary: nothing to promote, and a second primary is a split
brain waiting to happen).
Result: ``promoted`` (what pg_promote answered), ``in_recovery`` (read after it), ``server``.
``ok`` is false when the server is still in recovery after the wait: the promotion was requested and may
finish later. Never fences or reconfigures the old primary, never touches clients: a human does that.
"""

from __future__ import annotations

from typing import Any

from service import errors
from service.remediation.actions import common
from service.remediation.base import ActionContext, Outcome, action

PROMOTE_SQL = "SELECT pg_promote(wait => true, wait_seconds => $1)"
RECOVERY_SQL = "SELECT pg_is_in_recovery()"
WAIT_S = 60


class PromoteReplicaParams(common.PostgresParams):
    pass


def wait_seconds(ctx: ActionContext) -> int:
    """60 s, or a second less than the action's budget (the statement timeout would cancel the wait)."""
    return max(1, min(WAIT_S, int(ctx.timeout_s) - 1))


async def _in_recovery(conn: Any) -> bool:
    return bool(await conn.fetchval(RECOVERY_SQL))


async def check(ctx: ActionContext, params: PromoteReplicaParams) -> None:
    connector = common.connector_of(ctx)
    async with connector.connect(
        host=params.host, port=params.port, database=params.database, timeout=ctx.timeout_s
    ) as conn:
        if not await _in_recovery(conn):
            raise _primary(connector.describe(host=params.host, port=params.port, database=params.database))


def _primary(where: str) -> errors.Blocked:
    return common.refuse(f"PostgreSQL {where} is a primary (not in recovery): nothing to promote")


async def preflight(ctx: ActionContext, params: PromoteReplicaParams) -> str | None:
    return await common.refusal(check(ctx, params))


@action(
    "postgres.promote_replica",
    PromoteReplicaParams,
    safe_capable=False,
    preflight=preflight,
    needs_target=False,
)
async def promote_replica(ctx: ActionContext, params: PromoteReplicaParams) -> Outcome:
    connector = common.connector_of(ctx)
    wait = wait_seconds(ctx)
    request = common.sql_request(connector, params, PROMOTE_SQL, [wait])
    where = request.path.removeprefix("postgresql://")
    async with connector.connect(
        host=params.host,
        port=params.port,
        database=params.database,
        timeout=ctx.timeout_s,
        read_only=ctx.dry_run,
    ) as conn:
        if not await _in_recovery(conn):  # checked in the session that promotes
            raise _primary(where)
        if ctx.dry_run:
            return common.dry_run(f"promote standby {where} (waiting up to {wait}s)", [request])
        promoted = bool(await conn.fetchval(PROMOTE_SQL, wait))
        in_recovery = await _in_recovery(conn)
    result = {"promoted": promoted, "in_recovery": in_recovery, "server": where}
    if in_recovery:
        summary = f"asked standby {where} to promote; still in recovery after {wait}s"
        return Outcome(ok=False, summary=summary, requests=[request], result=result)
    return Outcome(ok=True, summary=f"promoted {where} to primary", requests=[request], result=result)


ACTIONS = (promote_replica,)
