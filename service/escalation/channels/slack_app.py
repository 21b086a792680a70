"""The Slack app channel (``slack_app``): one message per incident through the Web API, updated in place.

The first notification of an incident posts its message with ``chat.postMessage`` to
``REMEDIATOR_SLACK_CHANNEL`` — the bundle in Block Kit (``render.slack``) and an actions block: Approve /
Reject per proposal, Acknowledge, Open in console — and remembers where (``records.slack_messages``).
Every later event of the incident updates that message with ``chat.update`` and posts a short reply in its
thread (``thread_ts``) saying what happened. A click on a button arrives at ``intake.slack``, which
refreshes the message through ``refresh`` once the decision has been carried out.

The message always shows the incident as it stands (the stored bundle, its state, who acknowledged it and
the journal's decisions), whatever event is being delivered, so a retried older event never shows an
older state. Events of one incident are sent one at a time in this process; replicas racing to post an
incident's first message keep the first one remembered (the other is a stray duplicate).

Unlike the other channels this one reads the store and writes its own table (``slack_messages``): where
the message is, so that it can be updated. It never writes an incident.

Answers (Slack answers HTTP 200 with ``{"ok": false, "error": …}`` for most failures): HTTP 429 and
``ratelimited`` → ``errors.Transient`` honouring Retry-After; 5xx, ``internal_error``, ``fatal``,
``service_unavailable``, ``request_timeout`` → ``errors.Transient``; any other error (``invalid_auth``,
``not_authed``, ``token_revoked``, ``channel_not_found``, ``not_in_channel``, ``invalid_blocks``,
``message_not_found`` …) → ``errors.Permanent``. The bot token goes only into the Authorization header:
never into a log, an error or the outbox.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from service import errors
from service.escalation.channels import base, http, serial
from service.escalation.render import slack as render
from service.escalation.render import text
from service.model import incidents
from service.records import actions as journal
from service.records import incidents as incident_rows
from service.records import slack_messages
from service.records.outbox import Delivery
from service.records.store import Store
from service.settings import Settings

CHANNEL = "slack_app"
TRANSIENT = frozenset({"ratelimited", "internal_error", "fatal", "service_unavailable", "request_timeout"})


class WebApi:
    """The Slack Web API methods the app calls, as JSON with the bot token; Slack's answers translated."""

    def __init__(
        self, session: aiohttp.ClientSession, token: str, url: str, *, timeout_s: float = 10.0
    ) -> None:
        self._session = session
        self._token = token
        self._url = url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``method`` (``chat.postMessage`` …); Slack's document when ``ok``."""
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Authorization": f"Bearer {self._token}",
        }
        try:
            async with self._session.post(
                f"{self._url}/{method}", data=orjson.dumps(body), headers=headers, timeout=self._timeout
            ) as response:
                status, raw = response.status, await response.read()
                delay = http.retry_after(response.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise errors.Transient(f"slack {method} unreachable: {type(exc).__name__}") from exc
        return _answer(method, status, raw, delay)


def _answer(method: str, status: int, raw: bytes, delay: float | None) -> dict[str, Any]:
    """Slack's answer to ``method``, or the error it means (see the module docstring)."""
    if status == 429:
        raise errors.Transient(f"slack {method} answered 429 ratelimited", delay=delay or 1.0)
    if status >= 500:
        raise errors.Transient(f"slack {method} answered {status}", delay=delay)
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        document = None
    if status != 200 or not isinstance(document, dict):
        raise errors.Permanent(f"slack {method} answered {status}: {raw[:200].decode(errors='replace')}")
    if document.get("ok") is True:
        return document
    error = text.clip(document.get("error") or "unknown_error", 100)
    if error in TRANSIENT:
        raise errors.Transient(
            f"slack {method}: {error}", delay=delay or (1.0 if error == "ratelimited" else None)
        )
    raise errors.Permanent(f"slack {method}: {error}")


@dataclass(frozen=True)
class Standing:
    """An incident as its message shows it now: the bundle (None: never handed over), state, acker."""

    incident_id: str
    bundle: incidents.Bundle | None
    state: str
    acked_by: str | None


async def standing(store: Store, incident_id: str, carried: incidents.Bundle | None = None) -> Standing:
    """The incident as it stands: the stored bundle (else ``carried``) with the incident's state and the
    journal's decisions on its proposals (a decided proposal moves to the actions, with its status)."""
    async with store.read() as conn:
        row = await incident_rows.get_row(conn, incident_id)
        records = {r["id"]: r for r in await journal.of_incident(conn, incident_id)}
    bundle = (incident_rows.load_bundle(row["bundle"]) if row else None) or carried
    state = str(row["state"]) if row else (bundle.state if bundle else "open")
    acked_by = row["acked_by"] if row and row["acked_at"] is not None else None
    if bundle is None:
        return Standing(incident_id, None, state, acked_by)
    waiting, decided = [], []
    for proposal in bundle.proposals:
        record = records.get(proposal.id)
        if record is None or record["status"] == "awaiting_approval":
            waiting.append(proposal)
            continue
        changes = {k: record[k] for k in ("status", "approver", "reason", "started_at", "finished_at")}
        decided.append(incidents.ActionRecord.model_validate({**proposal.model_dump(), **changes}))
    current = bundle.model_copy(
        update={"state": state, "proposals": waiting, "actions": [*bundle.actions, *decided]}
    )
    return Standing(incident_id, current, state, acked_by)


def message(now: Standing, *, console_url: str) -> dict[str, Any]:
    """The incident's message as it stands: headline from its state, buttons while they apply."""
    bundle = now.bundle
    if bundle is None:
        event = render.app_event(now.state, acknowledged=now.acked_by is not None, held=False)
        return render.bare(now.incident_id, event=event)
    event = render.app_event(
        now.state, acknowledged=now.acked_by is not None, held=bundle.escalation_level == 0
    )
    return render.render(bundle, event=event, console_url=console_url, acknowledged=now.acked_by is not None)


class SlackAppNotifier:
    """Posts each incident's message once and keeps it current (see the module docstring)."""

    name = CHANNEL

    def __init__(
        self,
        api: WebApi,
        store: Store,
        *,
        channel: str,
        base_url: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api = api
        self._store = store
        self._channel = channel
        self._base_url = base_url.rstrip("/")
        self._clock = clock
        self._serial = serial.PerIncident()

    def console_url(self, incident_id: str) -> str:
        return f"{self._base_url}/ui/incidents/{incident_id}"

    async def send(self, delivery: Delivery) -> None:
        async with self._serial(delivery.incident_id):
            now = await standing(self._store, delivery.incident_id, base.bundle_of(delivery))
            await self._show(now, render.reply(now.bundle, delivery.event, acknowledged_by=now.acked_by))

    async def refresh(self, incident_id: str, note: str | None = None) -> None:
        """Update the incident's message to how it stands now and, with ``note``, reply in its thread."""
        async with self._serial(incident_id):
            await self._show(await standing(self._store, incident_id), note)

    async def tell(self, channel: str, user: str, words: str) -> None:
        """An ephemeral message only ``user`` sees in ``channel`` (a refusal, the result of a click)."""
        await self.api.call("chat.postEphemeral", {"channel": channel, "user": user, "text": words})

    async def _show(self, now: Standing, note: str | None) -> None:
        shown = message(now, console_url=self.console_url(now.incident_id))
        posted = await slack_messages.get(self._store, now.incident_id)
        if posted is None:
            answer = await self.api.call("chat.postMessage", {"channel": self._channel, **shown})
            where = slack_messages.Posted(str(answer.get("channel") or self._channel), str(answer.get("ts")))
            await slack_messages.save(self._store, now.incident_id, where, now=self._clock())
            return
        update = {
            "channel": posted.channel,
            "ts": posted.ts,
            "text": shown["text"],
            "blocks": shown["blocks"],
        }
        await self.api.call("chat.update", update)
        if note:
            reply = {"channel": posted.channel, "thread_ts": posted.ts, "text": note, "unfurl_links": False}
            await self.api.call("chat.postMessage", reply)
        await slack_messages.touch(self._store, now.incident_id, now=self._clock())


def from_settings(settings: Settings, session: aiohttp.ClientSession, store: Store) -> SlackAppNotifier:
    """The notifier of ``REMEDIATOR_SLACK_BOT_TOKEN`` (set: checked by the caller)."""
    assert settings.slack_bot_token is not None
    api = WebApi(session, settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    return SlackAppNotifier(api, store, channel=settings.slack_channel, base_url=settings.base_url)
