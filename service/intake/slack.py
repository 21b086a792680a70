"""``POST /v1/slack/interactions``: the Slack app's buttons (Approve, Reject, Acknowledge) pressed in Slack.

Slack sends ``block_actions`` as a form field ``payload`` holding JSON. Every request is checked before
anything is read from it: the signature (v0 scheme: ``X-Slack-Signature`` over ``v0:<timestamp>:<raw
body>`` with ``REMEDIATOR_SLACK_SIGNING_SECRET``, ``X-Slack-Request-Timestamp`` within 5 minutes — slack-sdk's
``SignatureVerifier``) → 401 and nothing changes when it is wrong, missing or stale. The Slack user must be
on ``REMEDIATOR_SLACK_APPROVERS`` (user id → approver name), else the answer is 200 with an ephemeral "you
are not an approver" and nothing changes. Then the decision goes through ``intake.humans`` like every other
door: approve and reject are recorded at once (``record_decision``: a second click, even a concurrent one,
is told who decided first), and an approved action runs in a background task (``run_approved``) that the
app awaits on shutdown, so that Slack gets its answer within its 3 seconds; acknowledge is
``humans.acknowledge`` (its outbox notification updates the message). When the background work is done the
message is updated (``chat.update``) with a thread reply, and the presser is told the result
(``chat.postEphemeral``). Without a signing secret the endpoint answers 404.
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from service import errors, keys
from service.clients import sessions
from service.escalation.channels import slack_app
from service.escalation.render import slack as render
from service.intake import humans, limits, responses

log = structlog.get_logger(__name__)

PATH = "/v1/slack/interactions"
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class Interactions:
    """What the endpoint needs: the verifier (None: the feature is off), the Slack app notifier that
    updates messages (None without a bot token) and the background tasks still running."""

    verifier: SignatureVerifier | None
    notifier: slack_app.SlackAppNotifier | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="slack-interaction")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        """Wait for every background task (approved actions finishing, messages being updated)."""
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


#: the endpoint's state (kept here beside its only user; a candidate for ``service.keys``)


def setup(app: web.Application) -> None:
    """Add the route and the cleanup context that opens the Slack client and awaits the background work."""
    secret = app[keys.SETTINGS].slack_signing_secret
    app[keys.INTERACTIONS] = Interactions(SignatureVerifier(secret.get_secret_value()) if secret else None)
    app.router.add_post(PATH, interactions)
    app.cleanup_ctx.append(_client)


async def _client(app: web.Application) -> AsyncIterator[None]:
    """The Slack app notifier for updating messages (with a bot token); on exit, the background work is
    awaited before the session closes (this context is set up after the workers, so it exits before them)."""
    state, settings = app[keys.INTERACTIONS], app[keys.SETTINGS]
    if state.verifier is None or settings.slack_bot_token is None:
        yield
        await state.drain()
        return
    async with sessions.new_session() as session:
        state.notifier = slack_app.from_settings(settings, session, app[keys.STORE])
        try:
            yield
        finally:
            await state.drain()
            state.notifier = None


async def interactions(request: web.Request) -> web.Response:
    """Verify, authorise, record the decision, answer at once; the rest runs in the background."""
    app, settings = request.app, request.app[keys.SETTINGS]
    state = app[keys.INTERACTIONS]
    if state.verifier is None:
        return responses.error(404, "the Slack app is not configured (REMEDIATOR_SLACK_SIGNING_SECRET)")
    body = await limits.read_body(request, limit=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    if isinstance(body, web.Response):
        return body
    if not _signed(state.verifier, body, request.headers):
        log.warning("slack.signature_refused", remote=request.remote)
        return responses.error(401, "invalid or stale Slack request signature")
    payload = _payload(body)
    if payload is None:
        return responses.error(400, "expected a form field payload holding a JSON object", field="payload")
    user, channel = _text(payload, "user", "id"), _text(payload, "channel", "id")
    clicked = _clicked(payload)
    if payload.get("type") != "block_actions" or clicked is None:
        return web.Response(status=200)
    who = settings.slack_approvers.get(user)
    if who is None:
        log.warning("slack.not_approver", slack_user=user[:40], action_id=clicked[0][:80])
        return _ephemeral(state, channel, user, "You are not an approver: nothing was done.")
    said = await _decide(app, state, clicked, who, (channel, user))
    return _ephemeral(state, channel, user, said)


async def _decide(
    app: web.Application, state: Interactions, clicked: tuple[str, str], who: str, where: tuple[str, str]
) -> str:
    """Carry out one click through ``humans``; the sentence the presser reads."""
    action_id, value = clicked
    incident_id, _sep, proposal = value.partition(":")
    if action_id == render.ACKNOWLEDGE and _ID.match(value):
        return (await humans.acknowledge(app, value, who)).message
    verb: humans.Verb | None = (
        "approve"
        if action_id.startswith(render.APPROVE)
        else "reject"
        if action_id.startswith(render.REJECT)
        else None
    )
    if verb is None or not (_ID.match(incident_id) and _ID.match(proposal)):
        return "This button is not one of remediator's: nothing was done."
    decided = await humans.record_decision(app, incident_id, proposal, verb, who)
    log.info(
        "slack.decision",
        incident_id=incident_id,
        action_id=proposal,
        verb=verb,
        by=who,
        status=decided.status,
    )
    if not decided.ok:
        return decided.message
    state.spawn(_carry_out(app, state, incident_id, decided, who, where))
    return f"{decided.message}; running it now" if verb == "approve" else decided.message


async def _carry_out(
    app: web.Application,
    state: Interactions,
    incident_id: str,
    decided: humans.Outcome,
    who: str,
    where: tuple[str, str],
) -> None:
    """Run an approved action (the pipeline's approved path), then update the message and tell the presser."""
    result = decided
    try:
        if decided.body.get("status") == "approved":
            result = await humans.run_approved(app, incident_id, decided.body, who)
            result = humans.Outcome(result.status, f"{decided.message}: {result.message}", body=result.body)
    except Exception:  # the decision stands in the journal; a crash of the run must not go unnoticed
        log.exception("slack.approved_run_crashed", incident_id=incident_id)
        result = humans.Outcome(500, f"{decided.message}, but running it failed; see the service log")
    await _update(state, incident_id, result.message, where)


async def _update(state: Interactions, incident_id: str, said: str, where: tuple[str, str]) -> None:
    """The message updated with a thread reply saying ``said``, and ``said`` told to the presser."""
    if state.notifier is None:
        return
    try:
        await state.notifier.refresh(incident_id, render.note(said))
        await state.notifier.tell(*where, render.note(said))
    except (errors.Transient, errors.Permanent, errors.StoreUnavailable) as exc:
        log.warning("slack.update_failed", incident_id=incident_id, reason=str(exc))


def _ephemeral(state: Interactions, channel: str, user: str, said: str) -> web.Response:
    """The answer to Slack (an ephemeral reply, replacing nothing); also sent with ``chat.postEphemeral``,
    since Slack shows nothing of the answer to a button click."""
    if state.notifier is not None and channel and user:
        state.spawn(_tell(state.notifier, channel, user, render.note(said)))
    return web.json_response({"response_type": "ephemeral", "replace_original": False, "text": said})


async def _tell(notifier: slack_app.SlackAppNotifier, channel: str, user: str, said: str) -> None:
    try:
        await notifier.tell(channel, user, said)
    except (errors.Transient, errors.Permanent) as exc:
        log.warning("slack.tell_failed", reason=str(exc))


def _signed(verifier: SignatureVerifier, body: bytes, headers: Any) -> bool:
    """The v0 signature over the raw body, made within 5 minutes (a malformed timestamp is a refusal)."""
    try:
        return verifier.is_valid(
            body=body,
            timestamp=headers.get("X-Slack-Request-Timestamp"),
            signature=headers.get("X-Slack-Signature"),
        )
    except (ValueError, UnicodeDecodeError):
        return False


def _payload(body: bytes) -> dict[str, Any] | None:
    try:
        fields = urllib.parse.parse_qs(body.decode("utf-8"), max_num_fields=20)
        document = orjson.loads(fields["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError):
        return None
    return document if isinstance(document, dict) else None


def _clicked(payload: dict[str, Any]) -> tuple[str, str] | None:
    """The (action_id, value) of the first button pressed, or None."""
    pressed = payload.get("actions")
    first = pressed[0] if isinstance(pressed, list) and pressed else None
    if not isinstance(first, dict):
        return None
    action_id, value = first.get("action_id"), first.get("value", "")
    return (action_id, value) if isinstance(action_id, str) and isinstance(value, str) else None


def _text(payload: dict[str, Any], outer: str, inner: str) -> str:
    part = payload.get(outer)
    value = part.get(inner) if isinstance(part, dict) else None
    return value if isinstance(value, str) else ""
