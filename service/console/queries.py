"""The console's own reads: an incident's history (the previous incidents of its rule and target, and what
ended each), the effects of the incidents on a list page, and the versions the live pages poll.

A version is a short hash of what the page shows that can change: for an incident its ``updated_at``, the
number of timeline events, every action's status and every notification's delivery state, and the kill
switch; for the list the newest ``updated_at``, the number of incidents and the kill switch. Each is one
read transaction of indexed lookups. Reads only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from service.records import schema
from service.records.store import Store, iso, plain

T, A, E, N = schema.incidents, schema.actions, schema.timeline, schema.outbox
S = schema.service_state
HISTORY = 10


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


async def incident_version(store: Store, incident_id: str) -> str | None:
    """The incident's version (None: no such incident)."""
    async with store.read() as conn:
        updated = await conn.scalar(sa.select(T.c.updated_at).where(T.c.id == incident_id))
        if updated is None:
            return None
        events = await conn.scalar(
            sa.select(sa.func.count()).select_from(E).where(E.c.incident_id == incident_id)
        )
        actions = (
            await conn.execute(sa.select(A.c.id, A.c.status).where(A.c.incident_id == incident_id))
        ).all()
        sent = (await conn.execute(sa.select(N.c.id, N.c.state).where(N.c.incident_id == incident_id))).all()
        switch = await _switch(conn)
    return f"{updated}:{events}:{_digest(sorted(actions), sorted(sent), switch)}"


async def list_version(store: Store) -> str:
    """The version of every list page."""
    async with store.read() as conn:
        newest, count = (await conn.execute(sa.select(sa.func.max(T.c.updated_at), sa.func.count()))).one()
        switch = await _switch(conn)
    return f"{newest}:{count}:{_digest(switch)}"


async def _switch(conn: Any) -> list[tuple[str, float]]:
    """When the kill switch and each maintenance window last changed (``service_state``)."""
    rows = await conn.execute(sa.select(S.c.key, S.c.updated_at).order_by(S.c.key))
    return [(key, at) for key, at in rows.all()]


async def effects(store: Store, incident_ids: Sequence[str]) -> dict[str, list[str]]:
    """Per incident of a page: the incidents linked to it (``caused_by`` it)."""
    if not incident_ids:
        return {}
    found: dict[str, list[str]] = {}
    async with store.read() as conn:
        rows = await conn.execute(
            sa.select(T.c.id, T.c.caused_by)
            .where(T.c.caused_by.in_(list(incident_ids)))
            .order_by(T.c.opened_at)
        )
        for effect, cause in rows.all():
            found.setdefault(cause, []).append(effect)
    return found


async def history(store: Store, incident: dict[str, Any]) -> list[dict[str, Any]]:
    """The previous incidents of the same rule and target, newest first (at most ``HISTORY``): when, how long,
    and what ended them — the actions that succeeded (and who approved them), or who acknowledged it."""
    same = sa.and_(
        T.c.rule == incident["rule"],
        T.c.target_kind == incident["target"]["kind"],
        T.c.target_namespace == incident["target"]["namespace"],
        T.c.target_name == incident["target"]["name"],
        T.c.id != incident["id"],
    )
    async with store.read() as conn:
        rows = [
            plain(r)
            for r in (
                await conn.execute(
                    sa.select(T).where(same).order_by(T.c.opened_at.desc(), T.c.id.desc()).limit(HISTORY)
                )
            ).mappings()
        ]
        ids = [r["id"] for r in rows]
        done = (
            (
                await conn.execute(
                    sa.select(A.c.incident_id, A.c.action, A.c.approver)
                    .where(A.c.incident_id.in_(ids), A.c.status == "succeeded")
                    .order_by(A.c.requested_at)
                )
            ).all()
            if ids
            else []
        )
    fixes: dict[str, list[str]] = {}
    for incident_id, action, approver in done:
        fixes.setdefault(incident_id, []).append(
            f"{action} ({f'approved by {approver}' if approver else 'automatic'})"
        )
    return [_past(row, fixes.get(row["id"], [])) for row in rows]


def _past(row: dict[str, Any], fixes: list[str]) -> dict[str, Any]:
    start = row["started_at"] if row["started_at"] is not None else row["opened_at"]
    end = row["mitigated_at"] or row["resolved_at"]
    ended_by = "; ".join(fixes)
    if not ended_by:
        ended_by = f"acknowledged by {row['acked_by']}" if row["acked_by"] else ""
    if not ended_by and row["resolved_at"] is not None:
        ended_by = "the alert resolved on its own"
    return {
        "id": row["id"],
        "state": row["state"],
        "started_at": iso(start),
        "duration_s": None if end is None else round(end - start, 1),
        "over_target": end is not None and end - start > row["mttr_target_s"],
        "ended_by": ended_by or "still open",
    }
