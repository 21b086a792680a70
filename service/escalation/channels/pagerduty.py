"""The PagerDuty channel: one Events API v2 alert per incident and service (``dedup_key`` = incident id).

This module sends; ``render.pagerduty`` builds the body. One notifier per routing key: ``pagerduty`` for
``REMEDIATOR_PAGERDUTY_ROUTING_KEY`` and ``pagerduty:NAME`` for each named service of
``REMEDIATOR_PAGERDUTY_ROUTING_KEYS`` (the escalation levels page them); the same incident id is the
dedup key in each service, where it is a separate alert.

Outbox event → PagerDuty ``event_action`` (``render.pagerduty.event_action``): ``trigger`` and
``escalate:N`` → ``trigger`` (the same ``dedup_key``: in one service a re-trigger updates the open alert;
with escalation levels each level pages its own service, where it is a new alert), ``acknowledge`` →
``acknowledge``, ``resolve`` and ``mitigated`` → ``resolve``; an event the renderer has no action for
(``announce``, ``linked``: information, not a page) is not sent.

Answers: 202 delivered; 429 and 5xx retried (Retry-After honoured); 400 is an invalid event and is not
retried — PagerDuty's ``errors`` are recorded. Each request carries the delivery id as ``Idempotency-Key``.
It never logs or records the routing key.
"""

from __future__ import annotations

import aiohttp
import orjson
import structlog

from service import errors
from service.escalation.channels import base, http
from service.escalation.render import pagerduty as render
from service.records.outbox import Delivery

log = structlog.get_logger(__name__)

CHANNEL = "pagerduty"
DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"


class PagerDutyNotifier:
    """Sends incidents to a PagerDuty service through its Events API v2 routing key."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        routing_key: str,
        url: str = DEFAULT_URL,
        source: str,
        name: str = CHANNEL,
    ) -> None:
        self.name = name  # the outbox channel key: ``pagerduty`` or ``pagerduty:NAME``
        self._session = session
        self._routing_key = routing_key
        self._url = url
        self._source = source

    async def send(self, delivery: Delivery) -> None:
        try:
            render.event_action(delivery.event)  # ValueError: an event PagerDuty has no use for
        except ValueError:  # "announce", "linked": information for the other channels, not a page
            log.info(
                "notify.skipped",
                channel=self.name,
                notification=delivery.event,  # "event" is the log event's own name
                incident_id=delivery.incident_id,
            )
            return
        bundle = base.bundle_of(delivery)
        if bundle is None:  # never handed over: nothing was triggered, only acknowledge/resolve can follow
            document = render.bare(delivery.incident_id, event=delivery.event, routing_key=self._routing_key)
        else:
            document = render.render(
                bundle, event=delivery.event, routing_key=self._routing_key, source=self._source
            )
        document["dedup_key"] = delivery.incident_id  # one alert per incident, whatever the bundle says
        data = orjson.dumps(document)
        headers = {"Content-Type": "application/json", "Idempotency-Key": delivery.delivery_id}
        answer = await http.post(self._session, self._url, data, headers, channel=self.name)
        if 200 <= answer.status < 300:
            return
        http.busy(self._scrubbed(answer), self.name)
        raise errors.Permanent(f"{self.name} answered {answer.status}: {self._reason(answer)}")

    def _reason(self, answer: http.Answer) -> str:
        """PagerDuty's ``message`` and ``errors`` from a rejection, else the start of the body."""
        text = self._scrubbed(answer).text
        try:
            detail = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text[:300]
        if not isinstance(detail, dict):
            return text[:300]
        problems = detail.get("errors")
        listed = "; ".join(str(p) for p in problems) if isinstance(problems, list) else ""
        head = str(detail.get("message") or detail.get("status") or "")
        return (f"{head}: {listed}" if head and listed else head or listed or text)[:500]

    def _scrubbed(self, answer: http.Answer) -> http.Answer:
        """The answer with any echo of the routing key masked (it is recorded and logged)."""
        if self._routing_key not in answer.text:
            return answer
        return http.Answer(answer.status, answer.retry_after, answer.text.replace(self._routing_key, "***"))
