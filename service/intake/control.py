"""Human control over HTTP: approve or reject a proposed action, acknowledge, tick a checklist item, and the
kill switch (``/v1/pause``, ``/v1/resume``).

Every endpoint here takes an approver token (``REMEDIATOR_APPROVER_TOKENS``); the approver's name is written
to the journal and the timeline. The webhook token is known but not allowed here (403). What each decision
does is ``intake.humans`` (shared with the console and Slack); this module only authenticates and answers.
"""

from __future__ import annotations

from aiohttp import web

from service import keys
from service.intake import auth, humans, responses


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
    return await _switch(request, paused=True)


async def resume(request: web.Request) -> web.Response:
    return await _switch(request, paused=False)


async def _switch(request: web.Request, *, paused: bool) -> web.Response:
    who = approver(request)
    if isinstance(who, web.Response):
        return who
    return answer(await humans.switch(request.app, paused=paused, who=who))


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
