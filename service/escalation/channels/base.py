"""The contract every channel keeps (``Notifier``) and the JSON document the structured channels send.

Delivery is at least once, so every document carries the outbox entry's stable ``delivery_id``; the
webhook and PagerDuty channels also send it as the ``Idempotency-Key`` header. Slack's incoming webhooks
take a Block Kit message and have no idempotency key: a repeated delivery posts the message again.
"""

from __future__ import annotations

from typing import Any, Protocol

import pydantic

from service.model import incidents
from service.records.outbox import Delivery


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


def bundle_of(delivery: Delivery) -> incidents.Bundle | None:
    """The bundle an outbox entry carries, as the model: the one place a sender reads it. None when the
    incident was never handed over (it has no bundle yet), or for an entry queued by an older version with
    a partial document."""
    document = delivery.payload.get("bundle")
    if not document:
        return None
    try:
        return incidents.Bundle.model_validate(document)
    except pydantic.ValidationError:
        return None
