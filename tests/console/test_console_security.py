"""The console's defences, without a browser: CSRF tokens on every form, signed and expiring session
cookies, read-only sessions, the security headers on every answer, and label values shown as text."""

from __future__ import annotations

import time
from typing import Any

import pytest

from service import keys
from service.console import guard, sessions
from service.records import switches
from tests.conftest import TOKEN
from tests.console.console_helpers import (
    APPROVER,
    SECRET,
    console_client,
    csrf_of,
    detail,
    fire,
    incidents,
    page,
    sign_in,
)


@pytest.fixture
async def client(aiohttp_client: Any, make_settings: Any) -> Any:
    return await console_client(aiohttp_client, make_settings)


async def escalated_with_proposal(client: Any) -> tuple[str, str]:
    """An escalated high-error-rate incident (no Kubernetes here) with its rollback proposed."""
    await fire(client, service="checkout")
    [incident] = await incidents(client, 1, state="escalated")
    [proposal] = [
        a for a in (await detail(client, incident["id"]))["actions"] if a["status"] == "awaiting_approval"
    ]
    assert proposal["action"] == "kube.rollout_undo"
    return incident["id"], proposal["id"]


async def test_a_form_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(client: Any) -> None:
    incident_id, action_id = await escalated_with_proposal(client)
    await sign_in(client, APPROVER)
    before = csrf_of(await page(client, f"/ui/incidents/{incident_id}"))
    await sign_in(client, APPROVER)  # a new session: the first one's token is not this one's
    token = csrf_of(await page(client, f"/ui/incidents/{incident_id}"))
    assert token != before
    approve = f"/ui/incidents/{incident_id}/actions/{action_id}/approve"
    for form in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": before}, {"csrf": token[:-1] + "x"}):
        refused = await client.post(approve, data=form, allow_redirects=False)
        assert refused.status == 403, form
        assert "CSRF" in await refused.text()
    for path in (f"/ui/incidents/{incident_id}/ack", f"/ui/incidents/{incident_id}/checklist/1", "/ui/pause"):
        assert (await client.post(path, data={"csrf": before}, allow_redirects=False)).status == 403
    after = await detail(client, incident_id)
    [action] = [a for a in after["actions"] if a["id"] == action_id]
    assert (action["status"], action["approver"]) == ("awaiting_approval", None)
    assert after["acked_by"] is None
    assert not {"action.approved", "acknowledged", "checklist.ticked"} & {
        e["kind"] for e in after["timeline"]
    }
    assert not await switches.paused(client.server.app[keys.STORE])

    reject = f"/ui/incidents/{incident_id}/actions/{action_id}/reject"
    done = await client.post(reject, data={"csrf": token}, allow_redirects=False)  # the right token works
    assert (done.status, done.headers["Location"]) == (303, f"/ui/incidents/{incident_id}")
    [action] = [a for a in (await detail(client, incident_id))["actions"] if a["id"] == action_id]
    assert (action["status"], action["approver"]) == ("rejected", "alice")


def cookie(session: sessions.Session, secret: str = SECRET) -> dict[str, str]:
    return {"Cookie": f"{sessions.COOKIE}={sessions.encode(session, secret.encode())}"}


async def test_expired_forged_or_missing_sessions_go_to_the_sign_in_page(client: Any) -> None:
    now = time.time()
    good = sessions.new("alice", "approver", now=now, ttl_s=60)
    assert (await client.get("/ui/", headers=cookie(good), allow_redirects=False)).status == 200
    expired = sessions.Session("alice", "approver", expires=now - 1, nonce=good.nonce)
    reader = sessions.encode(sessions.new("reader", "reader", now=now, ttl_s=60), SECRET.encode())
    promoted = reader.replace(".reader.", ".approver.")  # the signature no longer matches
    renamed = sessions.encode(good, SECRET.encode()).replace("YWxpY2U", "Ym9i")  # alice → bob
    bad = [
        {},
        cookie(expired),
        cookie(good, secret="another-secret"),
        {"Cookie": f"{sessions.COOKIE}={promoted}"},
        {"Cookie": f"{sessions.COOKIE}={renamed}"},
        {"Cookie": f"{sessions.COOKIE}=v1.garbage"},
    ]
    for headers in bad:
        for path in ("/ui/", "/ui/incidents/anything", "/ui/incidents/anything/report.md"):
            response = await client.get(path, headers=headers, allow_redirects=False)
            assert (response.status, response.headers.get("Location")) == (303, "/ui/login"), (path, headers)
        live = await client.get("/ui/version", headers=headers, allow_redirects=False)
        assert live.status == 401, "the page's script is told to sign in again"
        posted = await client.post("/ui/pause", headers=headers, data={}, allow_redirects=False)
        assert posted.status == 403
    landing = await client.get("/ui/", headers=cookie(expired))
    assert landing.url.path == "/ui/login" and "Sign in" in await landing.text()
    assert not await switches.paused(client.server.app[keys.STORE])


async def test_signing_in_takes_a_known_token_and_sets_a_strict_cookie(client: Any) -> None:
    refused = await client.post("/ui/login", data={"token": "guess"}, allow_redirects=False)
    assert refused.status == 401
    text = await refused.text()
    assert "not valid" in text and "guess" not in text and sessions.COOKIE not in refused.cookies
    forged = await client.post(
        "/ui/login", data={"token": APPROVER}, headers={"Sec-Fetch-Site": "cross-site"}, allow_redirects=False
    )
    assert forged.status == 401, "a sign-in posted from another site is refused"

    signed = await client.post("/ui/login", data={"token": APPROVER}, allow_redirects=False)
    assert (signed.status, signed.headers["Location"]) == (303, "/ui/")
    header = signed.headers["Set-Cookie"]
    parts = {part.strip().partition("=")[0]: part.strip().partition("=")[2] for part in header.split(";")}
    assert {"HttpOnly", "Path", "SameSite", "Max-Age"} <= set(parts)
    assert (parts["Path"], parts["SameSite"]) == ("/ui", "Strict")
    assert 43100 < int(parts["Max-Age"]) <= 43200, "the session lasts REMEDIATOR_SESSION_TTL_S (12 h)"
    assert "Secure" not in header, "plain http: a Secure cookie would never come back"
    proxied = await client.post(
        "/ui/login", data={"token": TOKEN}, headers={"X-Forwarded-Proto": "https"}, allow_redirects=False
    )
    assert "Secure" in proxied.headers["Set-Cookie"]
    value = proxied.cookies[sessions.COOKIE].value
    session = sessions.decode(value, SECRET.encode(), now=time.time())
    assert session is not None and (session.name, session.role) == ("reader", "reader")

    await sign_in(client, APPROVER)  # (the Secure cookie just set is never sent back over plain http)
    html = await page(client, "/ui/")
    out = await client.post("/ui/logout", data={"csrf": csrf_of(html)}, allow_redirects=False)
    assert (out.status, out.headers["Location"]) == (303, "/ui/login")
    assert (await client.get("/ui/", allow_redirects=False)).status == 303


async def test_every_console_answer_carries_the_security_headers(client: Any) -> None:
    incident_id, _ = await escalated_with_proposal(client)
    anonymous = [await client.get("/ui/login"), await client.post("/ui/login", data={"token": "x"})]
    anonymous += [await client.get("/ui/", allow_redirects=False), await client.get("/ui/static/console.js")]
    await sign_in(client, TOKEN)
    answers = {f"anonymous {r.url.path} {r.status}": r for r in anonymous}
    for path in (
        "/ui",
        "/ui/",
        "/ui/?state=escalated",
        "/ui/fragment",
        "/ui/version",
        f"/ui/incidents/{incident_id}",
        f"/ui/incidents/{incident_id}/fragment",
        f"/ui/incidents/{incident_id}/version",
        f"/ui/incidents/{incident_id}/report.md",
        "/ui/incidents/nope",
        "/ui/incidents/nope/version",
        "/ui/static/console.css",
        "/ui/static/nope.js",
        "/ui/nowhere",
    ):
        answers[path] = await client.get(path, allow_redirects=False)
    answers["reader post"] = await client.post("/ui/pause", data={}, allow_redirects=False)
    assert {p: r.status for p, r in answers.items() if r.status >= 300} == {
        "anonymous /ui/ 303": 303,
        "anonymous /ui/login 401": 401,
        "/ui": 303,
        "/ui/incidents/nope": 404,
        "/ui/incidents/nope/version": 404,
        "/ui/static/nope.js": 404,
        "/ui/nowhere": 404,
        "reader post": 403,
    }
    for path, response in answers.items():
        assert {k: response.headers.get(k) for k in guard.HEADERS} == guard.HEADERS, path
    assert "unsafe-inline" not in guard.HEADERS["Content-Security-Policy"]
    assert answers["/ui/nowhere"].content_type == "text/html", "a missing page is a page, not JSON"
    assert answers["anonymous /ui/static/console.js 200"].content_type == "text/javascript"


async def test_a_read_only_session_sees_no_button_and_cannot_post(client: Any) -> None:
    incident_id, action_id = await escalated_with_proposal(client)
    await sign_in(client, TOKEN)
    html = await page(client, f"/ui/incidents/{incident_id}")
    assert "read-only" in html
    main = html.split("<main>", 1)[1]
    assert "<button" not in main and "<form" not in main
    token = csrf_of(html)  # the sign-out form's: a valid token of this session
    for path in (
        f"/ui/incidents/{incident_id}/actions/{action_id}/approve",
        f"/ui/incidents/{incident_id}/actions/{action_id}/reject",
        f"/ui/incidents/{incident_id}/ack",
        f"/ui/incidents/{incident_id}/checklist/1",
        "/ui/pause",
        "/ui/resume",
    ):
        refused = await client.post(path, data={"csrf": token}, allow_redirects=False)
        assert refused.status == 403, path
        assert "read-only" in await refused.text()
    after = await detail(client, incident_id)
    [action] = [a for a in after["actions"] if a["id"] == action_id]
    assert action["status"] == "awaiting_approval" and after["acked_by"] is None
    assert not await switches.paused(client.server.app[keys.STORE])


async def test_a_label_value_is_shown_as_text(client: Any) -> None:
    await fire(
        client, service="checkout", team="<script>alert(1)</script>", note='"><img src=x onerror=alert(1)>'
    )
    [incident] = await incidents(client, 1)
    await sign_in(client, APPROVER)
    for path in (f"/ui/incidents/{incident['id']}", f"/ui/incidents/{incident['id']}/fragment"):
        html = await page(client, path)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<script>alert" not in html and "<img src=x" not in html
        assert html.count("<script") == (1 if path.endswith(incident["id"]) else 0), "only our own script"
