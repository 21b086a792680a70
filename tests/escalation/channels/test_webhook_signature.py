"""Signed webhooks: the receiver can check with the shared secret that the body came from us, unchanged."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from service.app import create_app
from tests.conftest import TOKEN, eventually, load_fixture

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
SECRET = "whsec-test-0123456789"


class VerifyingReceiver:
    """A webhook receiver as its owner would write it: recompute the HMAC of the raw body, compare."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.calls: list[dict[str, Any]] = []

    def valid(self, raw: bytes, signature: str) -> bool:
        expected = "sha256=" + hmac.new(self.secret, raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        signature = request.headers.get("X-Remediator-Signature", "")
        valid = self.valid(raw, signature)
        self.calls.append({"headers": dict(request.headers), "raw": raw, "valid": valid})
        return web.json_response({"ok": valid}, status=200 if valid else 401)


@pytest.fixture
async def receiver() -> Any:
    verifier = VerifyingReceiver(SECRET.encode())
    app = web.Application()
    app.router.add_post("/hook", verifier.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield verifier, str(server.make_url("/hook"))
    await server.close()


async def test_the_receiver_recomputes_the_signature_of_the_raw_body_and_it_matches(
    aiohttp_client: Any, make_settings: Any, receiver: Any
) -> None:
    verifier, url = receiver
    client = await aiohttp_client(
        create_app(make_settings(notify_webhook_url=url, notify_webhook_secret=SECRET, outbox_backoff_s=0.05))
    )
    response = await client.post(
        "/v1/alerts", data=json.dumps(load_fixture("am-0.25-firing.json")), headers=AUTH
    )
    assert response.status == 200
    response = await client.post(
        "/v1/alerts", data=json.dumps(load_fixture("am-0.25-resolved.json")), headers=AUTH
    )
    assert response.status == 200
    await eventually(lambda: len(verifier.calls) == 2)

    assert all(call["valid"] for call in verifier.calls)
    trigger, resolve = verifier.calls
    for call, event in ((trigger, "trigger"), (resolve, "resolve")):
        document = json.loads(call["raw"])
        assert call["headers"]["X-Remediator-Event"] == event == document["event"]
        assert call["headers"]["Idempotency-Key"] == document["delivery_id"]
        assert call["headers"]["X-Remediator-Signature"].startswith("sha256=")
        assert document["markdown"].startswith("# ")  # the bundle, rendered for humans, is signed too
        assert "checkout" in document["markdown"]
    # a body changed on the way (one byte, or re-serialised) no longer matches the signature
    signature = trigger["headers"]["X-Remediator-Signature"]
    assert not verifier.valid(trigger["raw"].replace(b"trigger", b"resolve"), signature)
    assert not verifier.valid(json.dumps(json.loads(trigger["raw"]), indent=1).encode(), signature)
    # and a receiver holding another secret rejects it
    assert not VerifyingReceiver(b"another-secret").valid(trigger["raw"], signature)


async def test_without_a_secret_the_body_is_not_signed(
    aiohttp_client: Any, make_settings: Any, receiver: Any
) -> None:
    verifier, url = receiver
    client = await aiohttp_client(create_app(make_settings(notify_webhook_url=url, outbox_backoff_s=0.05)))
    response = await client.post(
        "/v1/alerts", data=json.dumps(load_fixture("am-0.25-firing.json")), headers=AUTH
    )
    assert response.status == 200
    await eventually(lambda: verifier.calls)
    [call] = verifier.calls
    assert "X-Remediator-Signature" not in call["headers"]
    assert call["headers"]["X-Remediator-Event"] == "trigger"
    assert not call["valid"]  # a receiver that requires signatures refuses it (401, recorded as failed)
