"""Helpers of the console tests (no browser): an app with an approver and a session secret, alerts fired
through the webhook, sign-in, and the CSRF token read off a page."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from service.app import create_app
from tests.conftest import TOKEN, eventually, load_fixture

AUTH = {"Authorization": f"Bearer {TOKEN}"}
APPROVER = "alice-approves"
SECRET = "console-test-session-secret"


async def console_client(aiohttp_client: Any, make_settings: Any, **more: Any) -> Any:
    settings = make_settings(approver_tokens=f"alice={APPROVER}", session_secret=SECRET, **more)
    return await aiohttp_client(create_app(settings))


async def fire(client: Any, *, resolved: bool = False, started: float | None = None, **labels: str) -> None:
    """One HighErrorRate alert (the shipped rule ``high-error-rate``) for ``labels['service']``."""
    payload = load_fixture("am-0.25-resolved.json" if resolved else "am-0.25-firing.json")
    alert = payload["alerts"][0]
    alert["labels"] = {"alertname": "HighErrorRate", "severity": "critical", **labels}
    alert["fingerprint"] = f"fp-{labels.get('service', 'x')}"
    start = datetime.fromtimestamp(started if started is not None else time.time() - 60, UTC)
    alert["startsAt"] = start.isoformat().replace("+00:00", "Z")
    response = await client.post(
        "/v1/alerts", data=json.dumps(payload), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status == 200, await response.text()


async def incidents(client: Any, count: int, **query: str) -> list[dict[str, Any]]:
    """The incidents once there are ``count`` of them (matching ``query``) and the inbox is empty."""

    async def check() -> list[dict[str, Any]]:
        metrics = await (await client.get("/metrics")).text()
        if "remediator_inbox_backlog 0.0" not in metrics:
            return []
        found = (await (await client.get("/v1/incidents", params=query, headers=AUTH)).json())["incidents"]
        return list(found) if len(found) == count else []

    found: list[dict[str, Any]] = await eventually(check, timeout=30, interval=0.05)
    return found


async def detail(client: Any, incident_id: str) -> dict[str, Any]:
    body: dict[str, Any] = await (await client.get(f"/v1/incidents/{incident_id}", headers=AUTH)).json()
    return body


async def sign_in(client: Any, token: str) -> None:
    response = await client.post("/ui/login", data={"token": token}, allow_redirects=False)
    assert response.status == 303, await response.text()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def page(client: Any, path: str) -> str:
    response = await client.get(path, allow_redirects=False)
    assert response.status == 200, (response.status, await response.text())
    text: str = await response.text()
    return text
