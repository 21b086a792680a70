"""POST /v1/alerts: every bad input gets its status code and a message naming the field; never a 500."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st

from service.app import create_app
from service.intake import webhook
from service.model import alerts
from tests.conftest import AM_FIXTURES, TOKEN, eventually, load_fixture


@pytest.fixture
async def client(aiohttp_client: Any, make_settings: Any) -> TestClient[web.Request, web.Application]:
    return await aiohttp_client(create_app(make_settings()))


async def post(
    client: TestClient[Any, Any], body: bytes | str, headers: dict[str, str] | None = None, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    hdrs = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    hdrs.update(headers or {})
    response = await client.post("/v1/alerts", data=body, headers=hdrs, **kwargs)
    return response.status, await response.json()


async def test_captured_firing_payload_is_accepted_once_then_counted_duplicate(client: Any) -> None:
    body = (AM_FIXTURES / "am-0.25-firing.json").read_bytes()
    assert await post(client, body) == (200, {"accepted": 1, "duplicates": 0})
    assert await post(client, body) == (200, {"accepted": 0, "duplicates": 1})


@pytest.mark.parametrize(
    "name",
    [
        "am-0.25-firing.json",
        "am-0.25-resolved.json",
        "am-0.25-from-prometheus-firing.json",
        "am-0.25-truncated.json",
    ],
)
async def test_every_captured_payload_parses(client: Any, name: str) -> None:
    status, answer = await post(client, (AM_FIXTURES / name).read_bytes())
    assert status == 200
    assert answer["accepted"] == len(load_fixture(name)["alerts"])


async def test_unknown_extra_fields_are_accepted(client: Any) -> None:
    payload = load_fixture("am-0.25-firing.json")
    payload["notification_reason"] = "new_alert"
    payload["routeLabels"] = {"team": "sre"}
    payload["alerts"][0]["newField"] = 1
    status, answer = await post(client, json.dumps(payload))
    assert (status, answer["accepted"]) == (200, 1)


async def test_missing_token_is_401(client: Any) -> None:
    response = await client.post("/v1/alerts", data="{}", headers={"Content-Type": "application/json"})
    assert response.status == 401
    assert (await response.json())["error"] == "missing credentials"


async def test_wrong_token_is_401(client: Any) -> None:
    status, answer = await post(client, "{}", headers={"Authorization": "Bearer nope"})
    assert (status, answer["error"]) == (401, "invalid credentials")


async def test_basic_auth_with_the_token_as_password_is_accepted(client: Any) -> None:
    basic = base64.b64encode(f"alertmanager:{TOKEN}".encode()).decode()
    body = (AM_FIXTURES / "am-0.25-firing.json").read_bytes()
    status, _ = await post(client, body, headers={"Authorization": f"Basic {basic}"})
    assert status == 200
    wrong = base64.b64encode(b"alertmanager:wrong").decode()
    status, _ = await post(client, body, headers={"Authorization": f"Basic {wrong}"})
    assert status == 401


async def test_body_over_the_limit_is_413_without_reading_it(client: Any) -> None:
    """A 2 MiB body is refused from its Content-Length, before the sender has finished sending it."""
    sent = 0
    first_chunk_sent = asyncio.Event()
    release = asyncio.Event()

    async def slow_body() -> Any:
        nonlocal sent
        chunk = b" " * (64 * 1024)
        yield chunk
        sent += len(chunk)
        first_chunk_sent.set()
        await release.wait()  # never released before the answer arrives
        for _ in range(31):
            yield chunk
            sent += len(chunk)

    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {TOKEN}",
        "Content-Length": str(2 * 1024 * 1024),
    }
    request = asyncio.ensure_future(client.post("/v1/alerts", data=slow_body(), headers=headers))
    done, _ = await asyncio.wait({request}, timeout=5)
    assert done, "the service waited for the whole body instead of answering 413"
    response = request.result()
    assert response.status == 413
    assert "limit" in (await response.json())["error"]
    assert sent < 2 * 1024 * 1024
    release.set()


async def test_chunked_body_over_the_limit_is_413(client: Any) -> None:
    async def chunks() -> Any:
        for _ in range(40):
            yield b" " * (64 * 1024)

    response = await client.post(
        "/v1/alerts",
        data=chunks(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status == 413


async def test_text_plain_is_415(client: Any) -> None:
    status, answer = await post(client, "hello", headers={"Content-Type": "text/plain"})
    assert status == 415
    assert "application/json" in answer["error"]


async def test_invalid_json_is_400(client: Any) -> None:
    status, answer = await post(client, '{"alerts": [')
    assert status == 400
    assert answer["error"].startswith("invalid JSON")


async def test_missing_alerts_is_400_naming_it(client: Any) -> None:
    payload = load_fixture("am-0.25-firing.json")
    del payload["alerts"]
    status, answer = await post(client, json.dumps(payload))
    assert (status, answer["field"]) == (400, "alerts")
    assert "alerts" in answer["error"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p["alerts"][0].update(startsAt=12), "alerts[0].startsAt"),
        (lambda p: p["alerts"][0].update(startsAt="yesterday"), "alerts[0].startsAt"),
        (lambda p: p["alerts"][0].pop("fingerprint"), "alerts[0].fingerprint"),
        (lambda p: p["alerts"][0].update(labels={"a": 1}), "alerts[0].labels.a"),
        (lambda p: p["alerts"][0].update(status="burning"), "alerts[0].status"),
        (lambda p: p.update(alerts={"not": "a list"}), "alerts"),
        (lambda p: p.update(truncatedAlerts="many"), "truncatedAlerts"),
        (lambda p: p.update(version="3"), "version"),
    ],
)
async def test_wrong_types_are_400_naming_the_field(client: Any, mutate: Any, field: str) -> None:
    payload = load_fixture("am-0.25-firing.json")
    mutate(payload)
    status, answer = await post(client, json.dumps(payload))
    assert (status, answer["field"]) == (400, field)


@pytest.mark.parametrize("body", ["[]", "null", "42", '"text"'])
async def test_json_that_is_not_an_object_is_400(client: Any, body: str) -> None:
    status, answer = await post(client, body)
    assert status == 400
    assert answer["field"] == "body"


async def test_same_alert_twice_in_one_request_is_stored_once(client: Any) -> None:
    payload = load_fixture("am-0.25-firing.json")
    payload["alerts"].append(payload["alerts"][0])
    assert await post(client, json.dumps(payload)) == (200, {"accepted": 1, "duplicates": 1})


async def test_concurrent_requests_share_commits_and_count_exactly(client: Any) -> None:
    """Fifty requests at once, half of them re-sends: accepted + duplicates add up, nothing counted twice."""
    base = load_fixture("am-0.25-firing.json")

    def payload(i: int) -> str:
        p = json.loads(json.dumps(base))
        p["alerts"][0]["fingerprint"] = f"fp{i % 25:04d}"
        return json.dumps(p)

    results = await asyncio.gather(*(post(client, payload(i)) for i in range(50)))
    assert all(status == 200 for status, _ in results)
    assert sum(a["accepted"] for _, a in results) == 25
    assert sum(a["duplicates"] for _, a in results) == 25


async def test_truncated_group_escalates_and_says_why(client: Any) -> None:
    status, _ = await post(client, (AM_FIXTURES / "am-0.25-truncated.json").read_bytes())
    assert status == 200

    async def escalated() -> list[dict[str, Any]]:
        answer = await (
            await client.get("/v1/incidents", headers={"Authorization": f"Bearer {TOKEN}"})
        ).json()
        return [i for i in answer["incidents"] if i["state"] == "escalated"]

    incidents = await eventually(lambda: _two(escalated()))
    assert all("truncated" in i["reason"] and "3 alerts" in i["reason"] for i in incidents)


async def _two(coro: Any) -> Any:
    items = await coro
    return items if len(items) == 2 else None


@given(
    when=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)),
    digits=st.integers(min_value=0, max_value=9),
    extra=st.integers(min_value=0, max_value=999),
    offset_minutes=st.sampled_from([0, 60, -330, 840]),
)
def test_episode_key_is_the_same_instant_whatever_the_spelling(
    when: datetime, digits: int, extra: int, offset_minutes: int
) -> None:
    """The inbox key of startsAt: cut from a UTC string, or formatted from any offset, it is one key per
    instant (truncated to microseconds, as the parsed time is)."""
    fraction = f"{when.microsecond:06d}{extra:03d}"[:digits]
    utc_text = when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if digits else "") + "Z"
    local = when.astimezone(timezone(timedelta(minutes=offset_minutes)))
    local_text = (
        local.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if digits else "") + local.strftime("%z")
    )
    local_text = local_text[:-2] + ":" + local_text[-2:]
    keys = set()
    for text in (utc_text, local_text):
        alert = alerts.Alert.model_validate(
            {"status": "firing", "labels": {"alertname": "A"}, "startsAt": text, "fingerprint": "f"}
        )
        keys.add(webhook.episode_time(alert, text))
        keys.add(webhook.episode_time(alert))
    truncated = when.replace(microsecond=int((fraction + "000000")[:6]))
    assert keys == {truncated.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
