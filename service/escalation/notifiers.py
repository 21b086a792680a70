"""Notifiers: deliver one outbox entry to one channel. ``log`` is always on; ``webhook`` when configured.

A notifier raises ``errors.Transient`` (retry; ``delay`` from Retry-After) or ``errors.Permanent`` (give
up and record). Every delivery carries its stable ``delivery_id`` (also as the ``Idempotency-Key``
header) so receivers can drop the repeats that at-least-once delivery produces.
"""

from __future__ import annotations

from typing import Any, Protocol

import aiohttp
import orjson
import structlog

from service import errors
from service.escalation import bundle
from service.records.outbox import Delivery
from service.settings import Settings

log = structlog.get_logger(__name__)


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


class WebhookNotifier:
    """POSTs the JSON bundle to ``REMEDIATOR_NOTIFY_WEBHOOK_URL`` with an optional bearer token."""

    name = "webhook"

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str | None) -> None:
        self._session = session
        self._url = url
        self._token = token

    async def send(self, delivery: Delivery) -> None:
        headers = {"Content-Type": "application/json", "Idempotency-Key": delivery.delivery_id}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            async with self._session.post(
                self._url,
                data=orjson.dumps(body(delivery)),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response:
                if response.status < 300:
                    return
                text = (await response.text())[:200]
                if response.status == 429 or response.status >= 500:
                    raise errors.Transient(
                        f"webhook answered {response.status}: {text}",
                        delay=retry_after(response.headers.get("Retry-After")),
                    )
                raise errors.Permanent(f"webhook answered {response.status}: {text}")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise errors.Transient(f"webhook unreachable: {type(exc).__name__}: {exc}") from exc


def build(settings: Settings, session: aiohttp.ClientSession) -> dict[str, Notifier]:
    """The notifiers that are on, by channel name."""
    notifiers: dict[str, Notifier] = {"log": LogNotifier()}
    if settings.notify_webhook_url:
        token = settings.notify_webhook_token.get_secret_value() if settings.notify_webhook_token else None
        notifiers["webhook"] = WebhookNotifier(session, settings.notify_webhook_url, token)
    return notifiers


def channels(settings: Settings) -> list[str]:
    """Names of the channels that are on, without building them (used when queueing)."""
    return ["log", *(["webhook"] if settings.notify_webhook_url else [])]
