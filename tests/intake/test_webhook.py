"""POST /v1/alerts: every bad input gets its status code and a message naming the field; never a 500."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import sqlite3
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


# ---- limits (docs/security-limits.md): at the limit accepted, past it a 400 naming the field ------------

LIMIT = alerts  # the limits live in the model


def at_the_limits() -> dict[str, Any]:
    """The captured payload with every bounded value exactly at its limit."""
    payload = load_fixture("am-0.25-firing.json")
    alert = payload["alerts"][0]
    long_name = "n" * LIMIT.MAX_NAME_CHARS
    labels = {
        "alertname": "HighErrorRate",
        "service": "checkout",
        long_name: "v" * LIMIT.MAX_LABEL_VALUE_CHARS,
    }
    labels.update({f"l{i}": "v" for i in range(LIMIT.MAX_LABELS - len(labels))})
    alert["labels"] = labels
    alert["annotations"] = {
        f"a{i}": "x" * LIMIT.MAX_ANNOTATION_VALUE_CHARS for i in range(LIMIT.MAX_ANNOTATIONS)
    }
    alert["fingerprint"] = "~" * LIMIT.MAX_FINGERPRINT_CHARS
    alert["generatorURL"] = "http://prometheus.example/" + "g" * (LIMIT.MAX_URL_CHARS - 26)
    payload.update(
        groupKey="k" * LIMIT.MAX_GROUP_KEY_CHARS,
        receiver="r" * LIMIT.MAX_RECEIVER_CHARS,
        externalURL="http://alertmanager.example/" + "e" * (LIMIT.MAX_URL_CHARS - 28),
        truncatedAlerts=LIMIT.MAX_TRUNCATED_ALERTS,
        groupLabels=dict(labels),
        commonLabels=dict(labels),
        commonAnnotations={f"a{i}": "c" * 100 for i in range(LIMIT.MAX_ANNOTATIONS)},
    )
    return payload


async def test_every_value_at_its_limit_is_accepted_and_stored_as_sent(client: Any) -> None:
    payload = at_the_limits()
    assert len(payload["alerts"][0]["generatorURL"]) == LIMIT.MAX_URL_CHARS
    assert len(payload["externalURL"]) == LIMIT.MAX_URL_CHARS
    assert await post(client, json.dumps(payload)) == (200, {"accepted": 1, "duplicates": 0})
    [stored] = await eventually(lambda: _alerts_of_first_incident(client))
    assert stored["alert"]["annotations"] == payload["alerts"][0]["annotations"], "nothing truncated"
    assert stored["alert"]["labels"] == payload["alerts"][0]["labels"]


async def _alerts_of_first_incident(client: Any) -> list[dict[str, Any]] | None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    listed = await (await client.get("/v1/incidents", headers=auth)).json()
    if not listed["incidents"]:
        return None
    detail = await (await client.get(f"/v1/incidents/{listed['incidents'][0]['id']}", headers=auth)).json()
    found: list[dict[str, Any]] = detail["alerts"]
    return found


def _one_more_label(p: dict[str, Any], where: str = "labels") -> None:
    target = p["alerts"][0] if where in ("labels", "annotations") else p
    target[where][f"extra{len(target[where])}"] = "v"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (_one_more_label, "alerts[0].labels"),
        (lambda p: p["alerts"][0]["labels"].update(namespace="v" * 1025), "alerts[0].labels.namespace"),
        (lambda p: p["alerts"][0]["labels"].update({"n" * 129: "v"}), "alerts[0].labels." + "n" * 64 + "…"),
        (lambda p: p["alerts"][0]["labels"].update({"": "v"}), 'alerts[0].labels.""'),
        (lambda p: _one_more_label(p, "annotations"), "alerts[0].annotations"),
        (
            lambda p: p["alerts"][0]["annotations"].update({"n" * 129: "v"}),
            "alerts[0].annotations." + "n" * 64 + "…",
        ),
        (lambda p: p["alerts"][0].update(fingerprint="f" * 129), "alerts[0].fingerprint"),
        (lambda p: p["alerts"][0].update(fingerprint="ab cd"), "alerts[0].fingerprint"),
        (lambda p: p["alerts"][0].update(fingerprint="ab\u00e9"), "alerts[0].fingerprint"),
        (lambda p: p["alerts"][0].update(generatorURL="h" * 2049), "alerts[0].generatorURL"),
        (lambda p: p.update(externalURL="h" * 2049), "externalURL"),
        (lambda p: p.update(receiver="r" * 257), "receiver"),
        (lambda p: _one_more_label(p, "commonLabels"), "commonLabels"),
        (lambda p: _one_more_label(p, "groupLabels"), "groupLabels"),
        (lambda p: p["groupLabels"].update(alertname="v" * 1025), "groupLabels.alertname"),
        (lambda p: _one_more_label(p, "commonAnnotations"), "commonAnnotations"),
        (lambda p: p.update(truncatedAlerts=2**31), "truncatedAlerts"),
        (lambda p: p.update(truncatedAlerts=2**63), "truncatedAlerts"),
        (lambda p: p.update(truncatedAlerts=-1), "truncatedAlerts"),
        (lambda p: p.update(alerts=[_tiny_alert(i) for i in range(10_001)]), "alerts"),
    ],
)
async def test_a_value_over_its_limit_is_400_naming_the_field(client: Any, mutate: Any, field: str) -> None:
    payload = at_the_limits()
    mutate(payload)
    status, answer = await post(client, json.dumps(payload))
    assert (status, answer["field"]) == (400, field), answer
    assert answer["error"].startswith(f"{field}: ")


def _tiny_alert(i: int) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"a": ""},
        "startsAt": "2026-01-01T00:00:00Z",
        "fingerprint": f"{i:x}",
    }


async def test_a_long_annotation_is_stored_truncated_with_a_marker(client: Any) -> None:
    """Annotations are prose: a 400 would make Alertmanager drop the whole group for good, so a long one
    is cut (before it is stored) and says so; NUL becomes U+FFFD."""
    payload = load_fixture("am-0.25-firing.json")
    annotations = payload["alerts"][0]["annotations"]
    annotations.update(description="d" * 100_000, exact="e" * LIMIT.MAX_ANNOTATION_VALUE_CHARS, nul="a\x00b")
    assert await post(client, json.dumps(payload)) == (200, {"accepted": 1, "duplicates": 0})
    [stored] = await eventually(lambda: _alerts_of_first_incident(client))
    kept = stored["alert"]["annotations"]
    assert len(kept["description"]) <= LIMIT.MAX_ANNOTATION_VALUE_CHARS
    assert kept["description"].startswith("d" * 4000)
    assert kept["description"].endswith(f"…[truncated {100_000 - kept['description'].index('…')} chars]")
    assert kept["exact"] == annotations["exact"], "at the limit: kept whole"
    assert kept["nul"] == "a\ufffdb"
    assert kept["summary"] == annotations["summary"]


async def test_a_long_group_key_is_stored_as_a_prefix_and_a_digest(client: Any, tmp_path: Any) -> None:
    """Alertmanager builds the key from every label with ``group_by: ['...']``: a 400 would drop a real
    group for good, so a key past the limit is shortened (it is copied into every inbox row)."""
    payload = load_fixture("am-0.25-firing.json")
    payload["alerts"].append({**payload["alerts"][0], "fingerprint": "second"})
    payload["groupKey"] = "{}:{" + ", ".join(f'l{i}="{"v" * 90}"' for i in range(60)) + "}"
    assert await post(client, json.dumps(payload)) == (200, {"accepted": 2, "duplicates": 0})
    other = {**payload, "groupKey": payload["groupKey"][:-2] + 'x"}'}
    other["alerts"] = [{**payload["alerts"][0], "fingerprint": "third"}]
    assert (await post(client, json.dumps(other)))[0] == 200
    with sqlite3.connect(tmp_path / "remediator.db") as conn:
        stored = [key for (key,) in conn.execute("SELECT group_key FROM inbox ORDER BY id")]
    assert [len(key) for key in stored] == [LIMIT.MAX_GROUP_KEY_CHARS] * 3
    assert stored[0] == stored[1] != stored[2], "the digest keeps two long keys apart"
    assert stored[0].startswith(payload["groupKey"][:900]) and "…sha256:" in stored[0]


@pytest.mark.parametrize("char", ["\x00", "\n", "\r", "\x1b", "\x7f", "\x85", "\u2028", "\u2029"])
@pytest.mark.parametrize("where", ["fingerprint", "receiver", "groupKey", "label name", "alertname"])
async def test_a_control_character_in_a_key_field_is_400(client: Any, where: str, char: str) -> None:
    """The fields that become keys or columns; NUL would fail PostgreSQL (and used to fail the whole group
    commit of every request sent at the same time)."""
    payload = load_fixture("am-0.25-firing.json")
    alert = payload["alerts"][0]
    field = {
        "fingerprint": "alerts[0].fingerprint",
        "receiver": "receiver",
        "groupKey": "groupKey",
        "label name": f"alerts[0].labels.bad\\u{ord(char):04x}name",
        "alertname": "alerts[0].labels.alertname",
    }[where]
    if where == "fingerprint":
        alert["fingerprint"] = f"ab{char}cd"
    elif where in ("receiver", "groupKey"):
        payload[where] = f"x{char}y"
    elif where == "label name":
        alert["labels"][f"bad{char}name"] = "v"
    else:
        alert["labels"]["alertname"] = f"High{char}ErrorRate"
    status, answer = await post(client, json.dumps(payload))
    assert (status, answer["field"]) == (400, field), answer


async def test_nul_in_any_label_value_is_400_other_control_characters_are_data(client: Any) -> None:
    payload = load_fixture("am-0.25-firing.json")
    payload["alerts"][0]["labels"]["service"] = "check\x00out"
    status, answer = await post(client, json.dumps(payload))
    assert (status, answer["field"]) == (400, "alerts[0].labels.service")
    assert "NUL" in answer["error"]
    payload["alerts"][0]["labels"]["service"] = "check\nout"  # a value, not a key: stored escaped
    assert (await post(client, json.dumps(payload)))[0] == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("startsAt", "0001-01-01T00:00:00+01:00"),
        ("startsAt", "9999-12-31T23:59:59-01:00"),
        ("endsAt", "0001-01-01T00:59:59+01:00"),
        ("endsAt", "9999-12-31T23:59:59-00:01"),
    ],
)
async def test_a_time_outside_years_1_to_9999_in_utc_is_400(client: Any, field: str, value: str) -> None:
    """The UTC conversion overflowed: a 500 before."""
    payload = load_fixture("am-0.25-firing.json")
    payload["alerts"][0][field] = value
    status, answer = await post(client, json.dumps(payload))
    assert (status, answer["field"]) == (400, f"alerts[0].{field}")
    assert "9999" in answer["error"]


async def test_the_zero_time_and_the_edges_in_utc_are_accepted(client: Any) -> None:
    payload = load_fixture("am-0.25-firing.json")
    payload["alerts"][0].update(startsAt="0001-01-01T00:00:00Z", endsAt="0001-01-01T00:00:00Z")
    payload["alerts"].append({**payload["alerts"][0], "startsAt": "9999-12-31T23:59:59+00:00"})
    payload["alerts"].append(
        {**payload["alerts"][0], "startsAt": "0001-01-01T01:00:00+01:00", "fingerprint": "f3"}
    )
    assert (await post(client, json.dumps(payload)))[0] == 200


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(b'{"version": "4"}')[:-12] + b"\x00" * 12),
        ("gzip", b"\x1f\x8b\x08\x00 not gzip at all"),
        ("deflate", b"\xff" * 64),
    ],
)
async def test_a_body_whose_encoding_does_not_decode_is_400(client: Any, encoding: str, body: bytes) -> None:
    status, answer = await post(client, body, headers={"Content-Encoding": encoding})
    assert (status, answer["field"]) == (400, "body")
    assert encoding in answer["error"]


async def test_a_compressed_body_is_accepted_and_its_size_counted_decompressed(client: Any) -> None:
    body = (AM_FIXTURES / "am-0.25-firing.json").read_bytes()
    assert (await post(client, gzip.compress(body), headers={"Content-Encoding": "gzip"}))[0] == 200
    bomb = gzip.compress(b" " * (8 * 1024 * 1024))  # 8 KiB that inflate to 8 MiB
    status, answer = await post(client, bomb, headers={"Content-Encoding": "gzip"})
    assert status == 413 and "limit" in answer["error"]


async def test_one_bad_request_fails_alone_among_concurrent_good_ones(client: Any) -> None:
    """A value that used to fail the whole group commit (and so every request sent at the same time): now
    refused on its own at validation, and the good requests sent with it are stored."""
    base = load_fixture("am-0.25-firing.json")

    def good(i: int) -> str:
        p = json.loads(json.dumps(base))
        p["alerts"][0]["fingerprint"] = f"good{i:04d}"
        return json.dumps(p)

    bad = [
        json.dumps({**base, "truncatedAlerts": 2**63}),
        json.dumps({**base, "groupKey": "a\x00b"}),
        json.dumps({**base, "receiver": "r\x00"}),
    ]
    results = await asyncio.gather(*(post(client, body) for body in [*map(good, range(20)), *bad]))
    assert [status for status, _ in results[:20]] == [200] * 20
    assert [status for status, _ in results[20:]] == [400] * 3
    assert sum(answer["accepted"] for _, answer in results[:20]) == 20
