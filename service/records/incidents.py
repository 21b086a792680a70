"""Incident rows: open-or-attach, alerts of an incident, timeline events, and the read queries.

``open_key`` (rule + target) is unique while an incident is unresolved, so two workers or replicas that
race to open the same incident end with one row: the loser attaches to the winner's.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pydantic
import sqlalchemy as sa

from service.model import incidents as model
from service.records import actions as journal
from service.records import findings, schema
from service.records.sqlite_inline import Conn
from service.records.store import Store, iso, plain

T, A, E = schema.incidents, schema.incident_alerts, schema.timeline


#: Statements of the per-alert hot path, built once: SQLAlchemy memoizes a statement object's cache key, so
#: reusing the object skips both building the statement and keying it (see docs/performance.md).
_FIND_OPEN = sa.select(T).where(T.c.open_key == sa.bindparam("open_key"))
_FIND_OPEN_MANY = sa.select(T).where(T.c.open_key.in_(sa.bindparam("open_keys", expanding=True)))
_ADD_EVENT = sa.insert(E)
_ATTACH_MANY = sa.insert(A).prefix_with("OR IGNORE", dialect="sqlite")
# Built once: a statement built per call costs SQLAlchemy ~4× the execution of a prebuilt one (its
# construction and cache key), and the storm's ~1,000 openings run these on every incident.
_GET_ROW = sa.select(T).where(T.c.id == sa.bindparam("incident_id"))
_EFFECTS_OF = sa.select(T).where(T.c.caused_by == sa.bindparam("incident_id")).order_by(T.c.opened_at, T.c.id)
_UPDATE = sa.update(T).where(T.c.id == sa.bindparam("_incident_id"))
#: per dialect (``Store.insert_ignore``): the incident's insert, an alert episode's attachment
_CREATE: dict[str, Any] = {}
_ATTACH: dict[str, Any] = {}
#: compare-and-set statements by shape (from-states, the columns written): ``transition``
_TRANSITIONS: dict[tuple[tuple[str, ...], tuple[str, ...]], Any] = {}


def dump_bundle(bundle: model.Bundle) -> str:
    """The bundle as stored in ``incidents.bundle`` (and sent in the outbox): its JSON document."""
    return orjson.dumps(bundle.model_dump(mode="json")).decode()


def load_bundle(text: str | None) -> model.Bundle | None:
    """The stored bundle back as the model; None when there is none (an incident never handed over), or
    when the text is not a whole bundle (a partial document stored by an older version)."""
    if not text:
        return None
    try:
        return model.Bundle.model_validate_json(text)
    except pydantic.ValidationError:
        return None


@dataclass(frozen=True, slots=True)
class IncidentRow:
    """One row of ``incidents``, typed (what a lifecycle transition returns)."""

    id: str
    rule: str
    open_key: str | None
    target_kind: str
    target_namespace: str
    target_name: str
    target_selector: str | None
    target_valid: bool
    target_error: str | None
    state: str
    severity: str
    runbook: str
    mttr_target_s: float
    reason: str | None
    escalation_level: int
    opened_at: float
    escalated_at: float | None
    mitigated_at: float | None
    resolved_at: float | None
    updated_at: float
    bundle: str | None
    opened_by: int | None
    next_escalation_at: float | None
    acked_at: float | None
    acked_by: str | None
    started_at: float | None
    caused_by: str | None
    page_due_at: float | None
    root_severity: str | None
    drill: bool
    customer_impact: bool

    @property
    def clock_start(self) -> float:
        """Where the MTTR clock starts (see ``clock_start``)."""
        return self.started_at if self.started_at is not None else self.opened_at

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> IncidentRow:
        return cls(**{name: row[name] for name in cls.__slots__})


async def transition(
    conn: Conn,
    incident_id: str,
    *,
    from_states: Collection[str],
    values: Mapping[str, Any],
    where: Sequence[sa.ColumnElement[bool]] = (),
) -> IncidentRow | None:
    """Compare-and-set: write ``values`` when the incident is in one of ``from_states`` (and ``where``
    holds); the row as written, or None when it was not (another worker or an earlier event moved it).
    Only ``service.lifecycle`` calls this."""
    stmt: Any
    if where or any(isinstance(v, sa.ClauseElement) for v in values.values()):  # not a plain shape
        stmt = (
            sa.update(T)
            .where(T.c.id == incident_id, T.c.state.in_(list(from_states)), *where)
            .values(**values)
            .returning(*T.c)
        )
        row = (await conn.execute(stmt)).mappings().first()
    else:
        states, columns = tuple(sorted(from_states)), tuple(sorted(values))
        stmt = _TRANSITIONS.get((states, columns))
        if stmt is None:  # one per shape: a handful of shapes in all (the lifecycle's transitions)
            stmt = _TRANSITIONS[(states, columns)] = (
                sa.update(T)
                .where(T.c.id == sa.bindparam("_incident_id"), T.c.state.in_(states))
                .values({c: sa.bindparam(f"_v_{c}") for c in columns})
                .returning(*T.c)
            )
        params = {f"_v_{c}": v for c, v in values.items()} | {"_incident_id": incident_id}
        row = (await conn.execute(stmt, params)).mappings().first()
    return IncidentRow.of(row) if row else None


async def find_open(conn: Conn, open_key: str) -> dict[str, Any] | None:
    row = (await conn.execute(_FIND_OPEN, {"open_key": open_key})).mappings().first()
    return plain(row) if row else None


async def find_open_many(conn: Conn, open_keys: Collection[str]) -> dict[str, dict[str, Any]]:
    """The open incidents of these ``open_key``s (one statement), by key."""
    rows = (await conn.execute(_FIND_OPEN_MANY, {"open_keys": list(open_keys)})).mappings()
    return {row["open_key"]: plain(row) for row in rows}


async def create(store: Store, conn: Conn, values: dict[str, Any]) -> IncidentRow | None:
    """Insert a new incident, the row as written; None when another one holds the same open_key."""
    stmt = _CREATE.get(store.dialect)
    if stmt is None:
        stmt = _CREATE[store.dialect] = store.insert_ignore(T).returning(*T.c)
    result = await conn.execute(stmt, [values])
    row = result.mappings().first()
    return IncidentRow.of(row) if row else None


async def update(conn: Conn, incident_id: str, **values: Any) -> None:
    """Write columns that are not the state (the bundle, a timer); only ``service.lifecycle`` calls this."""
    if any(isinstance(v, sa.ClauseElement) for v in values.values()):
        await conn.execute(sa.update(T).where(T.c.id == incident_id).values(**values))
    else:
        await conn.execute(_UPDATE, {**values, "_incident_id": incident_id})


async def attach_alert(
    store: Store,
    conn: Conn,
    incident_id: str,
    *,
    fingerprint: str,
    starts_at: str,
    payload: str,
    now: float,
) -> bool:
    """Attach an alert episode; False when it was already attached."""
    row = {
        "incident_id": incident_id,
        "fingerprint": fingerprint,
        "starts_at": starts_at,
        "status": "firing",
        "payload": payload,
        "attached_at": now,
        "ends_at": None,
    }
    stmt = _ATTACH.get(store.dialect)
    if stmt is None:
        stmt = _ATTACH[store.dialect] = store.insert_ignore(A).returning(A.c.incident_id)
    result = await conn.execute(stmt, [row])
    return result.first() is not None


async def attach_many(conn: Conn, rows: Sequence[Mapping[str, Any]], *, now: float) -> int:
    """SQLite: attach firing episodes (``incident_id``, ``fingerprint``, ``starts_at``, ``payload``) in one
    ``executemany``; how many were new (an episode already attached is left as it is)."""
    values = [{**row, "status": "firing", "attached_at": now, "ends_at": None} for row in rows]
    result = await conn.execute(_ATTACH_MANY, values)
    return int(result.rowcount or 0)


async def add_events(conn: Conn, events: Sequence[Mapping[str, Any]]) -> None:
    """Append timeline events (``incident_id``, ``at``, ``kind``, ``message``, ``data``) in one statement."""
    rows = [{**event, "data": orjson.dumps(event.get("data") or {}).decode()} for event in events]
    await conn.execute(_ADD_EVENT, rows)


async def add_event(
    conn: Conn,
    incident_id: str,
    *,
    at: float,
    kind: str,
    message: str,
    data: dict[str, Any] | None = None,
) -> None:
    values = {"incident_id": incident_id, "at": at, "kind": kind, "message": message}
    await conn.execute(_ADD_EVENT, {**values, "data": orjson.dumps(data or {}).decode()})


async def get_row(conn: Conn, incident_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(_GET_ROW, {"incident_id": incident_id})).mappings().first()
    return plain(row) if row else None


async def find_by_episode(conn: Conn, fingerprint: str, starts_at: str) -> dict[str, Any] | None:
    """The unresolved incident this alert episode is attached to, if any."""
    stmt = (
        sa.select(T)
        .join(A, A.c.incident_id == T.c.id)
        .where(A.c.fingerprint == fingerprint, A.c.starts_at == starts_at, T.c.resolved_at.is_(None))
    )
    row = (await conn.execute(stmt)).mappings().first()
    return plain(row) if row else None


async def resolve_alert(
    conn: Conn, incident_id: str, *, fingerprint: str, starts_at: str, ends_at: str | None
) -> int:
    """Mark an attached episode resolved; returns how many episodes of the incident still fire."""
    await conn.execute(
        sa.update(A)
        .where(A.c.incident_id == incident_id, A.c.fingerprint == fingerprint, A.c.starts_at == starts_at)
        .values(status="resolved", ends_at=ends_at)
    )
    firing = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(A)
        .where(A.c.incident_id == incident_id, A.c.status == "firing")
    )
    return int(firing or 0)


async def alerts_of(conn: Conn, incident_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(sa.select(A).where(A.c.incident_id == incident_id).order_by(A.c.attached_at))
    return [plain(r) for r in rows.mappings()]


def target_of(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": row["target_kind"],
        "namespace": row["target_namespace"],
        "name": row["target_name"],
        "selector": row["target_selector"],
        "valid": bool(row["target_valid"]),
        "error": row["target_error"],
    }


def summary(row: dict[str, Any], *, now: float) -> dict[str, Any]:
    """The list view of an incident (DESIGN §3.1)."""
    end = row["mitigated_at"] or row["resolved_at"]
    start = clock_start(row)
    return {
        "id": row["id"],
        "rule": row["rule"],
        "state": row["state"],
        "severity": row["severity"],
        "runbook": row["runbook"],
        "target": target_of(row),
        "reason": row["reason"],
        "escalation_level": row["escalation_level"],
        "next_escalation_at": iso(row.get("next_escalation_at")),
        "acked_at": iso(row.get("acked_at")),
        "acked_by": row.get("acked_by"),
        "opened_at": iso(row["opened_at"]),
        "started_at": iso(start),
        "detected_at": iso(row["opened_at"]),
        "caused_by": row.get("caused_by"),
        "escalated_at": iso(row["escalated_at"]),
        "mitigated_at": iso(row["mitigated_at"]),
        "resolved_at": iso(row["resolved_at"]),
        "mttr_target_s": row["mttr_target_s"],
        "elapsed_s": round((end or now) - start, 3),
        "drill": bool(row.get("drill")),  # a runbook drill: nothing was written, paged or published
    }


def clock_start(row: Mapping[str, Any]) -> float:
    """Where the incident's MTTR clock starts: the earliest ``startsAt`` of its alerts (DESIGN §6), the
    opening for incidents stored before that was recorded."""
    started = row.get("started_at")
    return float(started) if started is not None else float(row["opened_at"])


def encode_cursor(opened_at: float, incident_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([opened_at, incident_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """Raises ValueError on anything that is not a cursor this service produced."""
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        opened_at, incident_id = value
        return float(opened_at), str(incident_id)
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise ValueError("invalid cursor") from exc


async def list_incidents(
    store: Store,
    *,
    state: str | None,
    rule: str | None,
    limit: int,
    cursor: str | None,
    now: float,
    over_target: bool | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; returns the page and the cursor of the next page (None when no more remain)."""
    stmt = sa.select(T)
    if state:
        stmt = stmt.where(T.c.state == state)
    if rule:
        stmt = stmt.where(T.c.rule == rule)
    if over_target is not None:  # time to mitigate (or resolve, or so far) against the rule's MTTR target
        start = sa.func.coalesce(T.c.started_at, T.c.opened_at)  # the MTTR clock starts with the alert
        elapsed = sa.func.coalesce(T.c.mitigated_at, T.c.resolved_at, now) - start
        stmt = stmt.where(elapsed > T.c.mttr_target_s if over_target else elapsed <= T.c.mttr_target_s)
    if cursor:
        opened_at, last_id = decode_cursor(cursor)
        stmt = stmt.where(
            sa.or_(T.c.opened_at < opened_at, sa.and_(T.c.opened_at == opened_at, T.c.id < last_id))
        )
    stmt = stmt.order_by(T.c.opened_at.desc(), T.c.id.desc()).limit(limit + 1)
    async with store.read() as conn:
        rows = [plain(r) for r in (await conn.execute(stmt)).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["opened_at"], rows[-1]["id"]) if more and rows else None
    return [summary(r, now=now) for r in rows], next_cursor


async def get_incident(store: Store, incident_id: str, *, now: float) -> dict[str, Any] | None:
    """The full incident as the API shows it: ``incident_detail`` with the bundle's JSON document."""
    found = await incident_detail(store, incident_id, now=now)
    if found is None:
        return None
    detail, bundle = found
    detail["bundle"] = bundle.model_dump(mode="json") if bundle is not None else None
    return detail


async def incident_detail(
    store: Store, incident_id: str, *, now: float
) -> tuple[dict[str, Any], model.Bundle | None] | None:
    """The full incident: summary + alerts, findings (of the latest round), every round (the newest
    ``findings.MAX_ROUNDS``, oldest first), actions, timeline; and its bundle, typed."""
    async with store.read() as conn:
        row = (await conn.execute(sa.select(T).where(T.c.id == incident_id))).mappings().first()
        if row is None:
            return None
        alert_rows = await alerts_of(conn, incident_id)
        kept = await findings.rounds(conn, incident_id)
        actions = await journal.of_incident(conn, incident_id)
        events = (
            await conn.execute(sa.select(E).where(E.c.incident_id == incident_id).order_by(E.c.id))
        ).mappings()
        timeline = [
            {"at": iso(e["at"]), "kind": e["kind"], "message": e["message"], "data": orjson.loads(e["data"])}
            for e in events
        ]
    detail = summary(plain(row), now=now)
    detail.update(
        alerts=[
            {
                "fingerprint": a["fingerprint"],
                "starts_at": a["starts_at"],
                "ends_at": a["ends_at"],
                "status": a["status"],
                "alert": orjson.loads(a["payload"]),
            }
            for a in alert_rows
        ],
        findings=kept[-1]["findings"] if kept else [],
        rounds=kept,
        actions=actions,
        timeline=timeline,
    )
    return detail, load_bundle(row["bundle"])


async def count_by_state(store: Store) -> dict[str, int]:
    async with store.read() as conn:
        rows = await conn.execute(sa.select(T.c.state, sa.func.count()).group_by(T.c.state))
        return {state: int(n) for state, n in rows.all()}


def link_ref(row: Mapping[str, Any]) -> model.LinkRef:
    """How another incident is shown from this one's bundle."""
    target = f"{row['target_kind']}/{row['target_namespace']}/{row['target_name']}"
    return model.LinkRef(incident_id=row["id"], rule=row["rule"], target=target, state=row["state"])


async def effects_of(conn: Conn, incident_id: str) -> list[dict[str, Any]]:
    """The incidents linked to this one (``caused_by`` it), oldest first."""
    return [plain(r) for r in (await conn.execute(_EFFECTS_OF, {"incident_id": incident_id})).mappings()]


async def links_of(conn: Conn, row: Mapping[str, Any]) -> tuple[model.LinkRef | None, list[model.LinkRef]]:
    """The incident's cause (``caused_by``) and its effects, as the bundle shows them."""
    cause = await get_row(conn, row["caused_by"]) if row.get("caused_by") else None
    effects = await effects_of(conn, row["id"])
    return (link_ref(cause) if cause else None), [link_ref(e) for e in effects]


async def ticks_of(conn: Conn, incident_id: str) -> dict[str, dict[str, Any]]:
    """The checklist items ticked on this incident: item id → {by, at} (from its timeline)."""
    stmt = sa.select(E.c.at, E.c.data).where(E.c.incident_id == incident_id, E.c.kind == "checklist.ticked")
    ticks: dict[str, dict[str, Any]] = {}
    for at, data in (await conn.execute(stmt)).all():
        value = orjson.loads(data)
        ticks.setdefault(str(value.get("item")), {"by": value.get("by"), "at": at})
    return ticks
