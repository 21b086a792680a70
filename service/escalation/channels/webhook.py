"""The webhook channel: the JSON bundle (plus its Markdown rendering) POSTed to one URL, signed if asked.

Answers: 2xx delivered; 429 and 5xx retried (Retry-After honoured); any other status is not retried.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import aiohttp
import orjson

from service import errors
from service.escalation.channels import base, http
from service.escalation.render import markdown
from service.records.outbox import Delivery

SIGNATURE_HEADER = "X-Remediator-Signature"
EVENT_HEADER = "X-Remediator-Event"


def sign(secret: bytes, data: bytes) -> str:
    """The ``X-Remediator-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret, data, hashlib.sha256).hexdigest()


class WebhookNotifier:
    """POSTs the JSON bundle to ``REMEDIATOR_NOTIFY_WEBHOOK_URL``.

    Headers: ``Idempotency-Key`` (the delivery id), ``X-Remediator-Event`` (trigger, resolve, …), a bearer
    token when set, and ``X-Remediator-Signature: sha256=<hex HMAC-SHA256 of the body>`` when
    ``REMEDIATOR_NOTIFY_WEBHOOK_SECRET`` is set, so the receiver can check that the body came from us.
    """

    name = "webhook"

    def __init__(
        self, session: aiohttp.ClientSession, url: str, token: str | None, *, secret: bytes | None = None
    ) -> None:
        self._session = session
        self._url = url
        self._token = token
        self._secret = secret

    async def send(self, delivery: Delivery) -> None:
        data = orjson.dumps(document(delivery))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": delivery.delivery_id,
            EVENT_HEADER: delivery.event,
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, data)
        answer = await http.post(self._session, self._url, data, headers, channel="webhook")
        if answer.status < 300:
            return
        http.busy(answer, "webhook")
        raise errors.Permanent(f"webhook answered {answer.status}: {answer.text[:200]}")


def document(delivery: Delivery) -> dict[str, Any]:
    """The webhook's JSON body: ``base.body`` plus ``markdown``, the bundle rendered for humans."""
    result = base.body(delivery)
    bundle = base.bundle_of(delivery)
    if bundle is not None:
        result["markdown"] = markdown.render(bundle)
    return result
