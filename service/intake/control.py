"""Human control over HTTP: approve or reject a proposed action, acknowledge, tick a checklist item, and the
kill switch (``/v1/pause``, ``/v1/resume``).

Every endpoint here takes an approver token (``REMEDIATOR_APPROVER_TOKENS``); the approver's name is written
to the journal and the timeline. The webhook token is known but not allowed here (403). What each decision
does is ``intake.humans`` (shared with the console and Slack); this module only authenticates and answers.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from service import keys
from service.intake import auth, humans, responses
from service.records import windows


def approver(request: web.Request) -> str | web.Response:
    settings = request.app[keys.SETTINGS]
    given = auth.presented_secret(request)
    if given is None:
        return auth.unauthorized(auth.MISSING)
    name = auth.approver_name(given, settings.approver_tokens)
    if name is not None:
        return name
    token = settings.webhook_token
    if token is not None and auth.approver_name(given, {"webhook": token}) is not None:
        return responses.error(
            403, "the webhook token cannot approve, acknowledge or pause; use an approver token"
        )
    return auth.unauthorized(auth.INVALID)


def answer(outcome: humans.Outcome) -> web.Response:
    """The API's JSON answer to a human decision: the body when it went through, else the error."""
    if outcome.ok or (outcome.status == 409 and outcome.body and outcome.where is None):
        return responses.json_response(outcome.body, status=outcome.status)
    return responses.error(outcome.status, outcome.message, field=outcome.where)


async def pause(request: web.Request) -> web.Response:
    """``POST /v1/pause``: no body pauses every automatic action (kill switch); ``{"scope", "until",
    "reason"}`` opens a maintenance window for one namespace, rule or target."""
    asked = await _approver_and_body(request)
    if isinstance(asked, web.Response):
        return asked
    who, body = asked
    if not body:
        return answer(await humans.switch(request.app, paused=True, who=who))
    for name in ("scope", "until"):
        if not isinstance(body.get(name), str):
            return responses.error(400, f"{name} is required (a string)", field=name)
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > windows.MAX_REASON:
        return responses.error(
            400, f"reason must be text of at most {windows.MAX_REASON} characters", field="reason"
        )
    opened = await humans.open_window(
        request.app, scope=body["scope"], until=body["until"], reason=reason, who=who
    )
    return answer(opened)


async def resume(request: web.Request) -> web.Response:
    """``POST /v1/resume``: no body lifts the kill switch; ``{"window": ID}`` ends that maintenance window."""
    asked = await _approver_and_body(request)
    if isinstance(asked, web.Response):
        return asked
    who, body = asked
    if not body:
        return answer(await humans.switch(request.app, paused=False, who=who))
    if not isinstance(body.get("window"), str):
        return responses.error(400, "window is required (the id of a maintenance window)", field="window")
    return answer(await humans.end_window(request.app, body["window"], who))


async def automation(request: web.Request) -> web.Response:
    """``GET /v1/pause``: the kill switch and the maintenance windows in force (any read token)."""
    settings = request.app[keys.SETTINGS]
    denial = auth.reader_denial(request, settings.webhook_token, settings.approver_tokens)
    if denial is not None:
        return auth.unauthorized(denial)
    return responses.json_response(await humans.automation_state(request.app))


async def _approver_and_body(request: web.Request) -> tuple[str, dict[str, Any]] | web.Response:
    """The approver and the optional JSON object of a pause/resume request; the refusal otherwise."""
    who = approver(request)
    if isinstance(who, web.Response):
        return who
    body = await _body(request)
    return body if isinstance(body, web.Response) else (who, body)


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    """The optional JSON object of a pause/resume request ({} when there is none)."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return responses.error(400, "the body must be a JSON object")
    if not isinstance(body, dict):
        return responses.error(400, "the body must be a JSON object")
    return body


async def acknowledge(request: web.Request) -> web.Response:
    """``POST /v1/incidents/{id}/ack``: stop the escalation timers; 409 when resolved or acknowledged."""
    who = approver(request)
    if isinstance(who, web.Response):
        return who
    return answer(await humans.acknowledge(request.app, request.match_info["id"], who))


async def decide_action(request: web.Request) -> web.Response:
    """``POST /v1/incidents/{id}/actions/{action}/approve|reject``: approve runs the action now."""
    who = approver(request)
    if isinstance(who, web.Response):
        return who
    verb: humans.Verb = "approve" if request.match_info["verb"] == "approve" else "reject"
    outcome = await humans.decide(
        request.app, request.match_info["id"], request.match_info["action"], verb, who
    )
    return answer(outcome)


async def tick(request: web.Request) -> web.Response:
    """``POST /v1/incidents/{id}/checklist/{item}``: tick a post-incident checklist item (``checklist``)."""
    who = approver(request)
    if isinstance(who, web.Response):
        return who
    return answer(await humans.tick(request.app, request.match_info["id"], request.match_info["item"], who))


async def publish(request: web.Request) -> web.Response:
    """``POST /v1/incidents/{id}/comms/{kind}/{step}/publish``: publish a customer-facing draft once
    (``humans.publish``); 409 when it was published before, naming who and when."""
    who = approver(request)
    if isinstance(who, web.Response):
        return who
    info = request.match_info
    return answer(await humans.publish(request.app, info["id"], info["kind"], info["step"], who))
