"""The OpenAPI 3.1 document served at ``/v1/openapi.json`` (hand-written: it is the public contract).

The payload limits come from ``model.alerts`` (docs/security-limits.md has them as a table); every endpoint
but the probes may answer 503 + Retry-After when the service is busy (``intake.limits``).
"""

from __future__ import annotations

import typing
from typing import Any

from service.model import alerts as limits
from service.model import incidents
from service.records import findings, windows

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
}


def _err(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _retry(description: str) -> dict[str, Any]:
    """A 503 that says when to come back (Alertmanager retries 5xx, never 4xx)."""
    return {
        **_err(description),
        "headers": {
            "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
        },
    }


_BUSY = (
    "busy: REMEDIATOR_MAX_INFLIGHT requests, or REMEDIATOR_MAX_LARGE_BODIES large bodies (over 64 KiB, "
    "chunked or compressed), in flight"
)
#: no character of Unicode category Cc nor U+2028/U+2029 (``model.alerts.CONTROL``), as a JSON-schema pattern
_NO_CONTROL = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$"
_PATH_400 = _err("a path parameter or query value holds a control character; `field` names it")


def _labels(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "maxProperties": limits.MAX_LABELS,
        "propertyNames": {"minLength": 1, "maxLength": limits.MAX_NAME_CHARS, "pattern": _NO_CONTROL},
        "additionalProperties": {
            "type": "string",
            "maxLength": limits.MAX_LABEL_VALUE_CHARS,
            "pattern": "^[^\\u0000]*$",
        },
    }


def _annotations(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "maxProperties": limits.MAX_ANNOTATIONS,
        "propertyNames": {"minLength": 1, "maxLength": limits.MAX_NAME_CHARS, "pattern": _NO_CONTROL},
        "additionalProperties": {"type": "string"},
    }


_STATES = typing.get_args(incidents.IncidentState)

_TARGET = {
    "type": "object",
    "required": ["kind", "namespace", "name", "valid"],
    "properties": {
        "kind": {"type": "string"},
        "namespace": {"type": "string"},
        "name": {"type": "string"},
        "selector": {"type": ["string", "null"]},
        "valid": {"type": "boolean"},
        "error": {"type": ["string", "null"]},
    },
}

_SUMMARY = {
    "type": "object",
    "required": ["id", "rule", "state", "severity", "target", "opened_at", "mitigated_at", "resolved_at"],
    "properties": {
        "id": {"type": "string"},
        "rule": {"type": "string"},
        "state": {"enum": list(_STATES)},
        "severity": {"type": "string"},
        "target": {"$ref": "#/components/schemas/Target"},
        "reason": {"type": ["string", "null"]},
        "opened_at": {"type": "string", "format": "date-time"},
        "mitigated_at": {"type": ["string", "null"], "format": "date-time"},
        "resolved_at": {"type": ["string", "null"], "format": "date-time"},
    },
}

_ALERT = {
    "type": "object",
    "required": ["status", "labels", "startsAt", "fingerprint"],
    "properties": {
        "status": {"enum": ["firing", "resolved"]},
        "labels": {
            **_labels("label names and the alertname value hold no control character; no value holds NUL"),
            "minProperties": 1,
        },
        "annotations": _annotations(
            f"a value longer than {limits.MAX_ANNOTATION_VALUE_CHARS} characters is stored cut to that "
            "length, ending with `…[truncated N chars]`"
        ),
        "startsAt": {
            "type": "string",
            "format": "date-time",
            "description": "with a time zone; in UTC it must fall within the years 1 to 9999",
        },
        "endsAt": {"type": "string", "format": "date-time"},
        "generatorURL": {"type": "string", "maxLength": limits.MAX_URL_CHARS},
        "fingerprint": {
            "type": "string",
            "pattern": "^[!-~]+$",
            "maxLength": limits.MAX_FINGERPRINT_CHARS,
            "description": "printable ASCII without spaces (Alertmanager sends 16 hex digits)",
        },
    },
}

_WEBHOOK = {
    "type": "object",
    "required": ["version", "status", "alerts"],
    "properties": {
        "version": {"const": "4"},
        "status": {"enum": ["firing", "resolved"]},
        "receiver": {"type": "string", "maxLength": limits.MAX_RECEIVER_CHARS},
        "alerts": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/Alert"},
            "maxItems": limits.MAX_ALERTS,
        },
        "groupKey": {
            "type": "string",
            "description": f"a key longer than {limits.MAX_GROUP_KEY_CHARS} characters is stored as a prefix "
            "and a SHA-256 digest of the whole, of that length",
        },
        "truncatedAlerts": {"type": "integer", "minimum": 0, "maximum": limits.MAX_TRUNCATED_ALERTS},
        "groupLabels": _labels("as an alert's labels"),
        "commonLabels": _labels("as an alert's labels"),
        "commonAnnotations": _annotations("as an alert's annotations"),
        "externalURL": {"type": "string", "maxLength": limits.MAX_URL_CHARS},
    },
    "description": "receiver and groupKey hold no control character (Unicode Cc, U+2028, U+2029)",
}

_WINDOW = {
    "type": "object",
    "description": "a maintenance window: automation paused for one namespace, rule or target until a time",
    "required": ["id", "scope", "until", "by"],
    "properties": {
        "id": {"type": "string"},
        "scope": {"type": "string", "description": "namespace:NAME, rule:NAME or target:KIND/NAMESPACE/NAME"},
        "kind": {"enum": ["namespace", "rule", "target"]},
        "value": {"type": "string"},
        "until": {"type": "string", "format": "date-time"},
        "by": {"type": "string"},
        "reason": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "ended_at": {"type": ["string", "null"], "format": "date-time"},
        "ended_by": {"type": ["string", "null"]},
    },
}

_NO_BODY = {"type": "object", "maxProperties": 0, "description": "no body, or {}: the kill switch"}

_WINDOW_REQUEST = {
    "type": "object",
    "required": ["scope", "until"],
    "properties": {
        "scope": {
            "type": "string",
            "pattern": "^\\s*(namespace|rule|target):",
            "description": "namespace:NAME, rule:NAME or target:KIND/NAMESPACE/NAME",
        },
        "until": {"type": "string", "description": "RFC 3339 with a zone, or a duration from now (90m, 2h)"},
        "reason": {"type": "string", "maxLength": windows.MAX_REASON},
    },
}

_AUTOMATION = {
    "type": "object",
    "required": ["paused", "windows"],
    "properties": {
        "paused": {"type": "boolean", "description": "the kill switch: every automatic action stopped"},
        "by": {"type": ["string", "null"]},
        "since": {"type": ["string", "null"], "format": "date-time"},
        "windows": {"type": "array", "items": {"$ref": "#/components/schemas/Window"}},
    },
}


_WHEN = {"type": ["string", "null"], "format": "date-time"}

_ACTION = {
    "type": "object",
    "description": "an action record: `guard` is the code of the guard that blocked it, `reason` the "
    "sentence a human reads",
    "required": ["id", "action", "safety", "status"],
    "properties": {
        "id": {"type": "string"},
        "action": {"type": "string"},
        "safety": {"enum": ["safe", "unsafe"]},
        "status": {"enum": list(typing.get_args(incidents.ActionStatus))},
        "guard": {"type": ["string", "null"]},
        "reason": {"type": ["string", "null"]},
        "requested_at": _WHEN,
        "started_at": _WHEN,
        "finished_at": _WHEN,
        "approver": {"type": ["string", "null"]},
    },
}

_DETAIL = {
    "allOf": [
        {"$ref": "#/components/schemas/IncidentSummary"},
        {
            "type": "object",
            "required": ["alerts", "findings", "actions", "timeline", "bundle"],
            "properties": {
                "alerts": {"type": "array", "items": {"type": "object"}},
                "findings": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "probe", "status"],
                        "properties": {
                            "id": {"type": "string"},
                            "probe": {"type": "string"},
                            "status": {"type": "string"},
                            "summary": {"type": "string"},
                            "facts": {"type": "object"},
                        },
                    },
                },
                "rounds": {"type": "array", "items": {"type": "object"}},
                "actions": {"type": "array", "items": {"$ref": "#/components/schemas/ActionRecord"}},
                "timeline": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["at", "kind", "message"],
                        "properties": {
                            "at": {"type": "string", "format": "date-time"},
                            "kind": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
                "bundle": {"type": ["object", "null"]},
            },
        },
    ]
}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


_TEXT = {"type": "string"}
_DRILL = _object(
    ["incident", "fingerprint", "inbox", "rule"],
    incident={"type": ["string", "null"]},
    fingerprint=_TEXT,
    inbox={"type": "integer"},
    rule=_TEXT,
)
_READY = _object(
    ["status", "store", "coordination"],
    status=_TEXT,
    store={**_TEXT, "description": "ok or unavailable"},
    coordination={
        **_TEXT,
        "description": "ok or unavailable: automatic actions are refused while it is down",
    },
)
_SWITCH_OR_WINDOW = {
    "type": "object",
    "properties": {
        "paused": {"type": "boolean"},
        "by": {"type": "string"},
        "window": {"$ref": "#/components/schemas/Window"},
    },
}


def _console_paths() -> dict[str, Any]:
    """The console's routes (``service.console``): HTML for a browser, behind the session cookie of
    ``POST /ui/login``; pages without a session redirect to the sign-in page (303), the live endpoints answer
    401, and every form post needs its CSRF token and an approver session (403 otherwise)."""
    page = {"200": {"description": "an HTML page"}, "303": {"description": "not signed in: to /ui/login"}}
    live = {"200": {"description": "JSON or an HTML fragment"}, "401": {"description": "not signed in"}}
    form = {
        "303": {"description": "back to the page, with a flash message"},
        "200": {"description": "with Accept: application/json, {ok, status, message}"},
        "403": {"description": "no session, CSRF token missing or wrong, or a read-only session"},
    }
    params = {
        name: {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in ("id", "action", "item", "name", "kind", "step")
    }

    def op(method: str, summary: str, answers: dict[str, Any], *names: str) -> dict[str, Any]:
        return {method: {"summary": summary, "parameters": [params[n] for n in names], "responses": answers}}

    return {
        "/ui": op("get", "the console: redirects to /ui/", {"303": {"description": "to /ui/"}}),
        "/ui/": op("get", "incident list (filters state, rule, over; limit; cursor)", page),
        "/ui/fragment": op("get", "the incident list's live part (HTML)", live),
        "/ui/version": op("get", "the incident list's version, polled every 3 s", live),
        "/ui/login": {
            **op("get", "sign-in form", {"200": {"description": "an HTML page"}}),
            **op(
                "post",
                "sign in with an approver token or the webhook token (read-only)",
                {
                    "303": {"description": "signed in: session cookie set"},
                    "401": {"description": "unknown token: the form again"},
                },
            ),
        },
        "/ui/logout": op("post", "sign out", {"303": {"description": "to /ui/login"}, "403": form["403"]}),
        "/ui/pause": op("post", "kill switch: pause automation", form),
        "/ui/resume": op("post", "resume automation", form),
        "/ui/static/{name}": op(
            "get", "the console's script and style sheet", {"200": {"description": "file"}}, "name"
        ),
        "/ui/incidents/{id}": op("get", "incident page", page, "id"),
        "/ui/incidents/{id}/fragment": op("get", "the incident page's live part (HTML)", live, "id"),
        "/ui/incidents/{id}/version": op("get", "the incident's version, polled every 3 s", live, "id"),
        "/ui/incidents/{id}/report.md": op("get", "the Markdown report, as a download", page, "id"),
        "/ui/incidents/{id}/actions/{action}/approve": op("post", "approve a proposal", form, "id", "action"),
        "/ui/incidents/{id}/actions/{action}/reject": op("post", "reject a proposal", form, "id", "action"),
        "/ui/incidents/{id}/ack": op("post", "acknowledge", form, "id"),
        "/ui/incidents/{id}/checklist/{item}": op("post", "tick a checklist item", form, "id", "item"),
        "/ui/incidents/{id}/comms/{kind}/{step}/publish": op(
            "post", "publish a customer-facing draft once", form, "id", "kind", "step"
        ),
    }


DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "remediator", "version": "1", "description": "Alert remediation service API"},
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "basic": {"type": "http", "scheme": "basic"},
        },
        "schemas": {
            "Error": _ERROR,
            "Target": _TARGET,
            "IncidentSummary": _SUMMARY,
            "Alert": _ALERT,
            "Webhook": _WEBHOOK,
            "Window": _WINDOW,
            "ActionRecord": _ACTION,
            "IncidentDetail": _DETAIL,
        },
    },
    "paths": {
        "/v1/alerts": {
            "post": {
                "summary": "Alertmanager webhook (v4); 200 only after the alerts are stored",
                "security": [{"bearer": []}, {"basic": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Webhook"}}},
                },
                "responses": {
                    "200": {
                        "description": "stored",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["accepted", "duplicates"],
                                    "properties": {
                                        "accepted": {"type": "integer"},
                                        "duplicates": {"type": "integer"},
                                    },
                                }
                            }
                        },
                    },
                    "400": _err(
                        "invalid JSON, schema or a value over its limit (`field` names it), or a body "
                        "whose Content-Encoding does not decode (`field`: body)"
                    ),
                    "401": _err("missing or invalid credentials"),
                    "408": _err("the body did not arrive within REMEDIATOR_BODY_TIMEOUT_S"),
                    "413": _err("body over the limit (REMEDIATOR_MAX_BODY_BYTES, after decompression)"),
                    "415": _err("not JSON"),
                    "503": _retry(f"store unavailable, or {_BUSY}; Alertmanager retries"),
                },
            }
        },
        "/v1/incidents": {
            "get": {
                "summary": "Incidents, newest first",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "state", "in": "query", "schema": {"enum": ["", *_STATES]}},
                    {"name": "rule", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                    },
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "over_target",
                        "in": "query",
                        "description": "true: only incidents open longer than their MTTR target; "
                        "false: within it",
                        "schema": {"enum": ["", "true", "false"]},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "a page",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["incidents"],
                                    "properties": {
                                        "incidents": {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/IncidentSummary"},
                                        },
                                        "next": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "400": _err("bad query parameter"),
                    "401": _err("missing or invalid credentials"),
                },
            }
        },
        "/v1/incidents/{id}": {
            "get": {
                "summary": "The full incident: alerts, findings, rounds, actions, timeline, bundle",
                "description": (
                    "`findings` are those of the latest round. `rounds` keeps every round of probes with its"
                    " phase (`diagnosis`, `re-diagnosis`, `verification`) and time, oldest first, as"
                    f" `{{round, phase, at, findings}}`; the newest {findings.MAX_ROUNDS} are returned."
                    " Each action record's `round` names the round it acted on (null: no probe ran)."
                ),
                "security": [{"bearer": []}],
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": _json("the incident", {"$ref": "#/components/schemas/IncidentDetail"}),
                    "401": _err("missing or invalid credentials"),
                    "404": _err("no such incident"),
                },
            }
        },
        "/v1/incidents/{id}/report": {
            "get": {
                "summary": "The Markdown incident report: timeline, MTTR against its target, checklist",
                "security": [{"bearer": []}],
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "the report", "content": {"text/markdown": {}}},
                    "401": _err("missing or invalid credentials"),
                    "404": _err("no such incident"),
                },
            }
        },
        "/v1/incidents/{id}/ack": {
            "post": {
                "summary": "Acknowledge: stop the escalation timers (approver token)",
                "security": [{"bearer": []}],
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": _json(
                        "acknowledged", _object(["id", "acknowledged_by"], id=_TEXT, acknowledged_by=_TEXT)
                    ),
                    "401": _err("missing or unknown token"),
                    "403": _err("not an approver"),
                    "404": _err("no such incident"),
                    "409": _err("already resolved or acknowledged"),
                },
            }
        },
        "/v1/incidents/{id}/checklist/{item}": {
            "post": {
                "summary": "Tick a post-incident checklist item (approver token; who and when: the timeline)",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "item",
                        "in": "path",
                        "required": True,
                        "description": "the item's id (e.g. root-cause-identified) or its number, 1-12",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": _json(
                        "ticked",
                        _object(
                            ["id", "item", "band", "ticked_by", "ticked_at"],
                            id=_TEXT,
                            item=_TEXT,
                            band=_TEXT,
                            text=_TEXT,
                            ticked_by=_TEXT,
                            ticked_at={"type": "string", "format": "date-time"},
                        ),
                    ),
                    "401": _err("missing or unknown token"),
                    "403": _err("not an approver"),
                    "404": _err("no such incident or checklist item"),
                    "409": _err("already ticked (by whom and when)"),
                },
            }
        },
        "/v1/incidents/{id}/comms/{kind}/{step}/publish": {
            "post": {
                "summary": "Publish a customer-facing draft once: Statuspage (the page's incident created,"
                " then updated) or email (one message); ticks its checklist item (approver token; audited)",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "kind",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": ["statuspage", "email"]},
                    },
                    {
                        "name": "step",
                        "in": "path",
                        "required": True,
                        "schema": {
                            "type": "string",
                            "enum": ["investigating", "identified", "monitoring", "resolved"],
                        },
                    },
                ],
                "responses": {
                    "200": _json(
                        "published",
                        _object(
                            ["id"],
                            id=_TEXT,
                            kind={"enum": ["statuspage", "email"]},
                            step=_TEXT,
                            text=_TEXT,
                            published_by={"type": ["string", "null"]},
                            published_at=_WHEN,
                        ),
                    ),
                    "401": _err("missing or unknown token"),
                    "403": _err("not an approver"),
                    "404": _err("no such incident or draft"),
                    "409": _err("already published (by whom and when), being published, or a drill"),
                    "502": _err("the status page or the SMTP server refused or could not be reached"),
                },
            }
        },
        "/v1/incidents/{id}/actions/{action}/approve": {
            "post": {
                "summary": "Run a proposed action (approver token); the approver is journaled",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "action", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json(
                        "the action record after it ran", {"$ref": "#/components/schemas/ActionRecord"}
                    ),
                    "401": _err("missing or unknown token"),
                    "403": _err("a known token that may not approve"),
                    "404": _err("no such incident or action"),
                    "409": _json(
                        "already decided (an error naming who decided), or approved and then refused by a "
                        "guard or failed (the action record, with `guard` and `reason`)",
                        {
                            "anyOf": [
                                {"$ref": "#/components/schemas/Error"},
                                {"$ref": "#/components/schemas/ActionRecord"},
                            ]
                        },
                    ),
                },
            }
        },
        "/v1/incidents/{id}/actions/{action}/reject": {
            "post": {
                "summary": "Refuse a proposed action (approver token)",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "action", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": _json("the action record", {"$ref": "#/components/schemas/ActionRecord"}),
                    "401": _err("missing or unknown token"),
                    "403": _err("not an approver"),
                    "404": _err("no such action"),
                    "409": _err("already decided"),
                },
            }
        },
        "/v1/pause": {
            "get": {
                "summary": "Whether automation is paused (kill switch) and the maintenance windows in force",
                "security": [{"bearer": []}],
                "responses": {
                    "200": {
                        "description": "the switch and the windows, soonest to end first",
                        "content": {"application/json": {"schema": _AUTOMATION}},
                    },
                    "401": _err("missing or invalid credentials"),
                },
            },
            "post": {
                "summary": "Without a body: the kill switch, every automatic action stops. With "
                "{scope, until, reason}: a maintenance window, automation paused for that scope only "
                "(approver token)",
                "security": [{"bearer": []}],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": {"oneOf": [_NO_BODY, _WINDOW_REQUEST]}}},
                },
                "responses": {
                    "200": _json(
                        "paused: `{paused, by}`, or the window opened: `{window}`", _SWITCH_OR_WINDOW
                    ),
                    "400": _err(
                        "a body that is not a JSON object, or a bad scope, until or reason (`field`)"
                    ),
                    "401": _err("unauthorized"),
                    "403": _err("not an approver"),
                },
            },
        },
        "/v1/slack/interactions": {
            "post": {
                "summary": "The Slack app's buttons (Approve, Reject, Acknowledge): Slack's block_actions, "
                "signed with the app's signing secret (v0, 5-minute window); the Slack user must be on "
                "REMEDIATOR_SLACK_APPROVERS; answered at once, the action runs in the background",
                "security": [],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "required": ["payload"],
                                "properties": {"payload": {"type": "string", "description": "JSON"}},
                            }
                        }
                    },
                },
                "responses": {
                    "200": {"description": "handled (an ephemeral text says what happened, or why not)"},
                    "400": _err("no payload field holding a JSON object"),
                    "401": _err("missing, wrong or stale X-Slack-Signature / X-Slack-Request-Timestamp"),
                    "404": _err("the Slack app is not configured (REMEDIATOR_SLACK_SIGNING_SECRET)"),
                },
            }
        },
        "/v1/resume": {
            "post": {
                "summary": "Without a body: lift the kill switch. With {window: ID}: end that maintenance "
                "window early (approver token)",
                "security": [{"bearer": []}],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    _NO_BODY,
                                    _object(["window"], window={"type": "string", "description": "its id"}),
                                ]
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        "resumed: `{paused, by}`, or the window ended: `{window}`", _SWITCH_OR_WINDOW
                    ),
                    "400": _err("a body that is not a JSON object, or without a window id"),
                    "401": _err("unauthorized"),
                    "403": _err("not an approver"),
                    "404": _err("no such maintenance window in force"),
                },
            }
        },
        "/v1/drills": {
            "post": {
                "summary": "Run a runbook drill of a rule (approver token): its scenario alert, stored "
                "as a drill, runs the full diagnosis and decision with every action dry-run; notifications "
                "go only to REMEDIATOR_DRILL_CHANNEL, marked [DRILL]",
                "security": [{"bearer": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["rule"],
                                "properties": {
                                    "rule": {
                                        "type": "string",
                                        "minLength": 1,
                                        "description": "the rule's name",
                                    },
                                    "alert": {
                                        "type": "object",
                                        "description": "the scenario's alert (default: the first case of "
                                        "the rule's tests/<rule>.test.yaml in the rules directory)",
                                        "properties": {
                                            "labels": _labels("labels of the drill alert"),
                                            "annotations": _annotations("annotations of the drill alert"),
                                        },
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json("the drill incident is open", _DRILL),
                    "202": _json(
                        "stored, its incident not open yet (null): poll `/v1/incidents?rule=`", _DRILL
                    ),
                    "400": _err(
                        "a body that is not a JSON object, a bad alert, or one the rule does not match"
                    ),
                    "401": _err("missing or unknown token"),
                    "403": _err("not an approver"),
                    "404": _err("no such rule, or no scenario for it"),
                },
            }
        },
        "/v1/openapi.json": {
            "get": {
                "summary": "This document (OpenAPI 3.1)",
                "responses": {
                    "200": _json(
                        "the document", _object(["openapi", "info", "paths"], openapi={"const": "3.1.0"})
                    )
                },
            }
        },
        **_console_paths(),  # the incident console (service.console): HTML pages behind a session cookie
        "/healthz": {
            "get": {
                "summary": "liveness",
                "responses": {"200": _json("alive", _object(["status"], status={"const": "ok"}))},
            }
        },
        "/readyz": {
            "get": {
                "summary": "readiness: the store answers (coordination and other dependencies are reported, "
                "they do not take intake off the Service)",
                "responses": {
                    "200": _json("ready: the store answers", _READY),
                    "503": _json("not ready: the store does not answer", _READY),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus exposition",
                "responses": {
                    "200": {
                        "description": "metrics (text format 0.0.4 or 1.0.0)",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    },
}


_REQUEST_ID = {
    "description": "the request id (taken from the request's X-Request-Id when it is 1-128 of "
    "[A-Za-z0-9._-], else generated); every log line of the request carries it",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"},
}


def _plain_parameters(document: dict[str, Any]) -> None:
    """A free-text path or query value holds no control character (``limits.control_character_refusal``
    answers 400); a path segment is never empty."""
    for item in document["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", ()):
                schema = parameter["schema"]
                if schema.get("type") == "string" and "enum" not in schema:
                    schema.setdefault("pattern", _NO_CONTROL)
                    if parameter["in"] == "path":
                        schema.setdefault("minLength", 1)


def _busy_everywhere(document: dict[str, Any]) -> None:
    """Every answer carries ``X-Request-Id``. Every endpoint but the probes may be refused when busy; those
    with a path or query may 400."""
    for path, item in document["paths"].items():
        for operation in item.values():
            for answer in operation["responses"].values():
                answer.setdefault("headers", {})["X-Request-Id"] = _REQUEST_ID
        if path in ("/healthz", "/readyz", "/metrics"):
            continue
        for operation in item.values():
            answers = operation["responses"]
            answers.setdefault("503", _retry(f"{_BUSY}, or store unavailable"))
            if "{" in path or operation.get("parameters"):
                answers.setdefault("400", _PATH_400)


_plain_parameters(DOCUMENT)
_busy_everywhere(DOCUMENT)
