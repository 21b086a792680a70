"""Shared steps of the customer-communication tests: a Redis outage (a customer-impacting critical rule)
posted, escalated, resolved; the timers of the app's lifecycle with an injected time."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from service import keys
from service.intake import humans
from service.lifecycle.timers import EscalationTimers
from service.records import schema
from tests.conftest import TOKEN, eventually, load_fixture

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
ALICE = {"Authorization": "Bearer alice-token"}


def redis_down(status: str = "firing", *, starts_at: float | None = None) -> dict[str, Any]:
    """Alertmanager's payload of RedisDown (rule redis-failure: critical, customer_impact)."""
    payload = load_fixture("am-0.25-firing.json")
    [alert] = payload["alerts"][:1]
    start = datetime.fromtimestamp(starts_at or time.time() - 5, UTC).isoformat().replace("+00:00", "Z")
    alert.update(
        status=status,
        labels={"alertname": "RedisDown", "namespace": "shop", "severity": "critical"},
        startsAt=start,
        fingerprint="c0ffee0000000001",
    )
    if status == "resolved":
        alert["endsAt"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    payload.update(status=status, alerts=[alert], commonLabels=alert["labels"], truncatedAlerts=0)
    return payload


async def post(client: Any, payload: dict[str, Any]) -> None:
    response = await client.post("/v1/alerts", data=json.dumps(payload), headers=AUTH)
    assert response.status == 200, await response.text()


async def escalated(client: Any) -> dict[str, Any]:
    """Post RedisDown and wait for its escalated incident."""
    await post(client, redis_down())

    async def found() -> list[dict[str, Any]]:
        answer = await client.get("/v1/incidents?state=escalated", headers=AUTH)
        return list((await answer.json())["incidents"])

    [incident] = await eventually(found)
    return dict(incident)


async def resolve(client: Any, incident_id: str) -> None:
    """Post RedisDown resolved and wait for the incident to resolve."""
    await post(client, redis_down("resolved", starts_at=await started_at(client, incident_id)))

    async def resolved() -> bool:
        return bool((await detail(client, incident_id))["resolved_at"])

    await eventually(resolved)


async def started_at(client: Any, incident_id: str) -> float:
    """The alert's start as the incident keeps it: the runbooks' clock counts from here."""
    T = schema.incidents
    async with client.app[keys.STORE].read() as conn:
        value = await conn.scalar(sa.select(T.c.started_at).where(T.c.id == incident_id))
    return float(value)


async def detail(client: Any, incident_id: str) -> dict[str, Any]:
    answer = await client.get(f"/v1/incidents/{incident_id}", headers=AUTH)
    return dict(await answer.json())


async def notified(client: Any, incident_id: str) -> list[str]:
    """The events notified for the incident, in order (every channel: here the log)."""
    return [n["event"] for n in (await detail(client, incident_id))["notifications"]]


def timers(client: Any, *, auto: bool = False) -> EscalationTimers:
    app = client.app
    return EscalationTimers(
        app[keys.STORE],
        app[keys.LIFECYCLE],
        on_notify=app[keys.OUTBOX].wake,
        publish=humans.auto_publisher(app) if auto else None,
    )


async def publish(client: Any, incident_id: str, kind: str, step: str) -> Any:
    return await client.post(f"/v1/incidents/{incident_id}/comms/{kind}/{step}/publish", headers=ALICE)


async def mark_drill(client: Any, incident_id: str) -> None:
    """Make the incident a drill's (as ``remediator drill`` opens them)."""
    T = schema.incidents
    async with client.app[keys.STORE].write() as conn:
        await conn.execute(sa.update(T).where(T.c.id == incident_id).values(drill=True))
