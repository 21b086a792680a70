"""Notifiers: deliver one outbox entry to one channel, and build the ones that are on.

Channels: ``log`` (always on), ``webhook`` (``REMEDIATOR_NOTIFY_WEBHOOK_URL``), ``slack``
(``REMEDIATOR_SLACK_WEBHOOK_URL``, see ``slack.py``) and ``pagerduty`` (``REMEDIATOR_PAGERDUTY_ROUTING_KEY``,
see ``pagerduty.py``). A notifier raises ``errors.Transient`` (retry; ``delay`` from Retry-After) or
``errors.Permanent`` (give up and record). Every delivery carries its stable ``delivery_id`` (also as the
``Idempotency-Key`` header) so receivers can drop the repeats that at-least-once delivery produces.

This module also holds what every HTTP channel shares: ``post`` (network errors become ``Transient``,
never with a secret URL in the message) and ``busy`` (429 and 5xx become ``Transient``). Notifiers never
write to the store: the outbox worker records what they raise.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson
import structlog

from service import errors
from service.escalation import bundle, routes
from service.escalation.render import markdown
from service.records.outbox import Delivery
from service.settings import Settings

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Remediator-Signature"
EVENT_HEADER = "X-Remediator-Event"


class Notifier(Protocol):
    name: str

    async def send(self, delivery: Delivery) -> None: ...


def body(delivery: Delivery) -> dict[str, Any]:
    """The JSON document every structured channel receives."""
    return {
        "delivery_id": delivery.delivery_id,
        "event": delivery.event,
        "incident_id": delivery.incident_id,
        **delivery.payload,
    }


class LogNotifier:
    """Prints the bundle as a structured log event."""

    name = "log"

    async def send(self, delivery: Delivery) -> None:
        document = body(delivery)
        document["notification"] = document.pop("event")  # "event" is the log event's own name
        findings = document.get("bundle", {}).get("findings", [])
        log.info("notify.bundle", findings_table=bundle.findings_table(findings), **document)


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form); None when absent or unparsable."""
    if not value:
        return None
    try:
        return max(0.0, min(float(value), 3600.0))
    except ValueError:
        return None


def sign(secret: bytes, data: bytes) -> str:
    """The ``X-Remediator-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret, data, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Answer:
    """What a receiver said: status, Retry-After in seconds (or None) and the start of the body."""

    status: int
    retry_after: float | None
    text: str


async def post(
    session: aiohttp.ClientSession,
    url: str,
    data: bytes,
    headers: dict[str, str],
    *,
    channel: str,
    secret_url: bool = False,
    timeout_s: float = 10.0,
) -> Answer:
    """POST ``data``; a network failure or timeout raises ``errors.Transient``.

    With ``secret_url`` (a Slack webhook URL is its own credential) the error names only the host.
    """
    try:
        async with session.post(
            url, data=data, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as response:
            text = await response.text(errors="replace")
            return Answer(response.status, retry_after(response.headers.get("Retry-After")), text[:1000])
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        if isinstance(exc, aiohttp.ClientConnectorError):
            detail = f"cannot connect to {exc.host}:{exc.port}"
        elif secret_url or isinstance(exc, aiohttp.InvalidURL):
            detail = "request failed"  # the message may quote the URL, which holds the credential
        else:
            detail = str(exc)
        raise errors.Transient(f"{channel} unreachable: {type(exc).__name__}: {detail}") from exc


def busy(answer: Answer, channel: str) -> None:
    """Raise ``errors.Transient`` (with Retry-After) when the receiver said 429 or 5xx."""
    if answer.status == 429 or answer.status >= 500:
        raise errors.Transient(
            f"{channel} answered {answer.status}: {answer.text[:200]}", delay=answer.retry_after
        )


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
        answer = await post(self._session, self._url, data, headers, channel="webhook")
        if answer.status < 300:
            return
        busy(answer, "webhook")
        raise errors.Permanent(f"webhook answered {answer.status}: {answer.text[:200]}")


def document(delivery: Delivery) -> dict[str, Any]:
    """The webhook's JSON body: ``body`` plus ``markdown``, the bundle rendered for humans."""
    result = body(delivery)
    content = delivery.payload.get("bundle")
    if isinstance(content, dict) and content:
        result["markdown"] = markdown.render(content)
    return result


def build(settings: Settings, session: aiohttp.ClientSession) -> dict[str, Notifier]:
    """The notifiers that are on, by channel name."""
    notifiers: dict[str, Notifier] = {"log": LogNotifier()}
    if settings.notify_webhook_url:
        token = settings.notify_webhook_token.get_secret_value() if settings.notify_webhook_token else None
        secret = settings.notify_webhook_secret
        notifiers["webhook"] = WebhookNotifier(
            session,
            settings.notify_webhook_url,
            token,
            secret=secret.get_secret_value().encode() if secret else None,
        )
    # The channel modules use this module's helpers, so they are imported here rather than at the top.
    if settings.slack_webhook_url is not None:
        from service.escalation import slack

        notifiers["slack"] = slack.SlackNotifier(session, settings.slack_webhook_url.get_secret_value())
    if settings.pagerduty_routing_key is not None:
        from service.escalation import pagerduty

        notifiers["pagerduty"] = pagerduty.PagerDutyNotifier(
            session,
            routing_key=settings.pagerduty_routing_key.get_secret_value(),
            url=settings.pagerduty_url,
            source=settings.base_url,
        )
    return notifiers


def channels(settings: Settings) -> list[str]:
    """Names of the channels that are on, without building them (used when queueing)."""
    on = {
        "log": True,
        "webhook": bool(settings.notify_webhook_url),
        "slack": settings.slack_webhook_url is not None,
        "pagerduty": settings.pagerduty_routing_key is not None,
    }
    return [name for name, enabled in on.items() if enabled]


def route_table(settings: Settings) -> routes.Routes:
    """``REMEDIATOR_NOTIFY_ROUTES`` and ``_FALLBACK`` applied to the channels that are on (warns at start)."""
    return routes.compile_routes(
        settings.notify_routes, configured=channels(settings), fallback=settings.notify_fallback
    )
