"""The Slack channel: Block Kit messages to an incoming webhook, at most one per second.

This module sends; ``render.slack`` builds the message. An escalation level's Slack recipient may mention
people: the outbox entry carries their ids (``"mentions": ["U0123ABC", "S0456DEF"]``, checked when the
settings loaded and again here), which the message shows as ``<@U…>`` / ``<!subteam^S…>``.

Slack allows an incoming webhook about one message per second. The outbox worker sends deliveries
concurrently, so this notifier serialises them itself: one lock, and the time before which the next
message must not leave (one second after the previous answer, or later when Slack said 429 with
Retry-After — then every message waits, not only the one that was refused). The pace is kept per
process: replicas sharing one webhook URL each keep their own.

Answers: 200 delivered; 429 and 5xx retried (Retry-After honoured); 400 (``invalid_payload``…), 403
(``action_prohibited``, revoked token), 404 (``no_service``, ``channel_not_found``), 410
(``channel_is_archived``) are not retried. The webhook URL is the credential: it never appears in a log
or an error. Incoming webhooks take no idempotency key, so none is sent: a repeated delivery (at least
once) posts the message again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import orjson

from service import errors
from service.escalation.channels import base, http
from service.escalation.render import slack as render
from service.model import levels
from service.records.outbox import Delivery

CHANNEL = "slack"


def mentions(delivery: Delivery) -> tuple[str, ...]:
    """The Slack user and user-group ids the entry's message mentions; anything that is not an id is
    dropped (the payload is stored data, and a mention is the only markup it may add)."""
    ids = delivery.payload.get("mentions")
    if not isinstance(ids, list):
        return ()
    return tuple(i for i in ids if isinstance(i, str) and levels.SLACK_ID.match(i))


class SlackNotifier:
    """Posts each notification to one Slack incoming webhook, paced to ``interval_s`` between messages."""

    name = CHANNEL

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._url = url
        self._interval_s = interval_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._not_before = 0.0  # clock() before which no message may leave

    async def send(self, delivery: Delivery) -> None:
        bundle = base.bundle_of(delivery)
        who = mentions(delivery)
        if bundle is None:
            message = render.bare(delivery.incident_id, event=delivery.event)
        elif who:
            message = render.render(bundle, event=delivery.event, mentions=who)
        else:
            message = render.render(bundle, event=delivery.event)
        data = orjson.dumps(message)
        headers = {"Content-Type": "application/json"}
        async with self._lock:
            wait = self._not_before - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                answer = await http.post(
                    self._session, self._url, data, headers, channel=CHANNEL, secret_url=True
                )
            finally:
                self._not_before = self._clock() + self._interval_s  # a slow answer does not shorten the gap
            if answer.status == 429:
                pause = answer.retry_after if answer.retry_after is not None else self._interval_s
                self._not_before = max(self._not_before, self._clock() + pause)
        if answer.status < 300:
            return
        http.busy(answer, CHANNEL)
        raise errors.Permanent(f"slack answered {answer.status}: {answer.text[:200]}")
