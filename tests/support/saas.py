"""Local stand-ins for the SaaS receivers the service pages: PagerDuty's Events API v2 and a Slack
incoming webhook. Each checks what the real API checks, answers as it answers, and records what it got.

PagerDuty (``POST /v2/enqueue``): JSON content type; ``routing_key`` of 32 characters (and, when
``known_keys`` is given, one of them); ``event_action`` trigger, acknowledge or resolve; ``dedup_key`` a
string of at most 255 (required for acknowledge and resolve); a trigger needs ``payload.summary`` (at most
1024), ``payload.source`` and ``payload.severity`` (critical, error, warning, info). Answers 202
``{"status": "success", "dedup_key": …}``, 400 with ``errors``, or 429 with Retry-After when one routing
key sends more than ``rate`` events within ``window_s``.

Slack (``POST /hooks``): a JSON object with ``text`` or ``blocks``; 200 ``ok``, or 400 ``invalid_payload``
(not JSON / not an object) or ``no_text``.

Slack's Web API (``SlackApi``: ``POST /api/chat.postMessage``, ``chat.update``, ``chat.postEphemeral``) for
the Slack app channel: bearer token, JSON, the fields each method requires, ``{"ok": …}`` answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

PD_ACTIONS = ("trigger", "acknowledge", "resolve")
PD_SEVERITIES = ("critical", "error", "warning", "info")
PD_STATES = {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}


def _invalid(*problems: str) -> web.Response:
    return web.json_response(
        {"status": "invalid event", "message": "Event object is invalid", "errors": list(problems)},
        status=400,
    )


@dataclass
class PagerDuty:
    """The Events API v2 stand-in: ``events`` (accepted, in order) and ``alerts`` by (routing key, dedup
    key) → triggered | acknowledged | resolved, as PagerDuty would show them."""

    known_keys: frozenset[str] | None = None
    rate: int = 120
    window_s: float = 60.0
    events: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[int, Any]] = field(default_factory=list)
    alerts: dict[tuple[str, str], str] = field(default_factory=dict)
    _sent: dict[str, list[float]] = field(default_factory=dict)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v2/enqueue", self.handle)
        return app

    def actions(self, routing_key: str) -> list[str]:
        """The ``event_action`` of every accepted event sent with ``routing_key``, in order."""
        return [e["event_action"] for e in self.events if e["routing_key"] == routing_key]

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if request.content_type != "application/json":
            self.refused.append((400, raw))
            return _invalid("Content-Type must be application/json")
        try:
            event = json.loads(raw)
        except ValueError:
            self.refused.append((400, raw))
            return _invalid("Malformed JSON")
        problems = self._problems(event)
        if problems:
            self.refused.append((400, event))
            return _invalid(*problems)
        if self._throttled(event["routing_key"]):
            self.refused.append((429, event))
            return web.json_response(
                {
                    "status": "throttle exceeded",
                    "message": "Requests for this service are arriving too quickly. Please retry later.",
                },
                status=429,
                headers={"Retry-After": "1"},
            )
        key = event.get("dedup_key") or uuid.uuid4().hex
        self.events.append({**event, "dedup_key": key})
        self.alerts[(event["routing_key"], key)] = PD_STATES[event["event_action"]]
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": key}, status=202
        )

    def _problems(self, event: Any) -> list[str]:
        if not isinstance(event, dict):
            return ["Event object must be a JSON object"]
        routing_key = event.get("routing_key")
        if not isinstance(routing_key, str) or len(routing_key) != 32:
            return ["Length of 'routing_key' is incorrect (should be 32 characters)"]
        if self.known_keys is not None and routing_key not in self.known_keys:
            return ["Invalid routing key"]
        action = event.get("event_action")
        if action not in PD_ACTIONS:
            return ["'event_action' is missing or blank"]
        key = event.get("dedup_key")
        if action != "trigger" and not key:
            return ["'dedup_key' is required for acknowledge and resolve"]
        if key is not None and (not isinstance(key, str) or len(key) > 255):
            return ["'dedup_key' must be a string of at most 255 characters"]
        return self._payload_problems(event.get("payload")) if action == "trigger" else []

    @staticmethod
    def _payload_problems(payload: Any) -> list[str]:
        if not isinstance(payload, dict):
            return ["'payload' is missing"]
        problems = [f"'payload.{f}' is missing or blank" for f in ("summary", "source") if not payload.get(f)]
        if payload.get("severity") not in PD_SEVERITIES:
            problems.append("'payload.severity' must be one of critical, error, warning, info")
        if len(str(payload.get("summary", ""))) > 1024:
            problems.append("'payload.summary' is longer than 1024 characters")
        return problems

    def _throttled(self, routing_key: str) -> bool:
        now = time.monotonic()
        recent = [t for t in self._sent.get(routing_key, []) if now - t < self.window_s]
        if len(recent) >= self.rate:
            self._sent[routing_key] = recent
            return True
        self._sent[routing_key] = [*recent, now]
        return False


@dataclass
class Slack:
    """The incoming-webhook stand-in: ``messages`` it accepted, in order."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[str, bytes]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hooks", self.handle)
        return app

    def texts(self) -> list[str]:
        """Every message as one string: its ``text`` and the text of its blocks."""
        return [json.dumps(m, ensure_ascii=False) for m in self.messages]

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self.refused.append(("invalid_payload", raw))
            return web.Response(status=400, text="invalid_payload")
        if not message.get("text") and not message.get("blocks"):
            self.refused.append(("no_text", raw))
            return web.Response(status=400, text="no_text")
        self.messages.append(message)
        return web.Response(status=200, text="ok")


#: the Slack Web API methods of the war room the stand-in answers (besides chat.*)
ROOM_METHODS = (
    "conversations.create",
    "conversations.invite",
    "conversations.archive",
    "pins.add",
    "usergroups.users.list",
)
ROOM_NAME = re.compile(r"[a-z0-9_-]{1,80}")


@dataclass
class SlackApi:
    """The Slack Web API stand-in (``POST /api/chat.postMessage``, ``/api/chat.update``,
    ``/api/chat.postEphemeral``), answering as Slack does: HTTP 200 with ``{"ok": true, …}`` or
    ``{"ok": false, "error": …}``.

    Checks the bearer token (``not_authed`` / ``invalid_auth``), the JSON content type, ``channel`` (one
    of ``channels``, else ``channel_not_found``), ``text`` or ``blocks`` (``no_text``), for an update a
    ``ts`` it issued in that channel (``message_not_found``), for a thread reply a ``thread_ts`` it issued,
    for an ephemeral a ``user``. ``calls`` records every call (method, body) it accepted; ``messages``
    holds each top-level message as it stands now, by ts; ``ratelimit(n)`` answers the next n calls 429
    ``ratelimited`` with Retry-After; ``delay_s`` holds every answer that long.

    The war room's methods: ``conversations.create`` (Slack's name rules: lower case, ≤ 80 characters,
    letters, digits, ``-``, ``_``; ``name_taken`` for a name in ``taken`` or already created), then
    ``conversations.invite`` (``users`` comma-separated; ``already_in_channel`` when none is new),
    ``pins.add`` (a ts posted in that channel; ``already_pinned``), ``conversations.archive``
    (``already_archived``; posting there then answers ``is_archived``) and ``usergroups.users.list``
    (``groups``: members by user-group id; else ``no_such_subteam``). ``rooms`` holds each created
    channel by id: name, members, pins, archived; ``room_messages`` the messages posted there (not in
    ``messages``)."""

    token: str = "xoxb-test-token"
    channels: frozenset[str] = frozenset({"C0INCIDENTS"})
    delay_s: float = 0.0
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    rooms: dict[str, dict[str, Any]] = field(default_factory=dict)
    room_messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # the war rooms' ``messages``
    taken: set[str] = field(default_factory=set)
    groups: dict[str, list[str]] = field(default_factory=dict)
    _limited: int = 0
    _next_ts: int = 1700000000

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/{method}", self.handle)
        return app

    def ratelimit(self, times: int = 1) -> None:
        self._limited += times

    def of(self, method: str) -> list[dict[str, Any]]:
        """The bodies of the accepted calls of ``method``, in order."""
        return [body for name, body in self.calls if name == method]

    def posts(self) -> list[dict[str, Any]]:
        """Top-level messages posted (not thread replies), outside the war rooms (``posted_in`` those)."""
        return [
            b for b in self.of("chat.postMessage") if "thread_ts" not in b and b["channel"] not in self.rooms
        ]

    def replies(self, ts: str) -> list[str]:
        """The texts of the thread replies to the message ``ts``."""
        return [b["text"] for b in self.of("chat.postMessage") if b.get("thread_ts") == ts]

    async def handle(self, request: web.Request) -> web.Response:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        method = request.match_info["method"]
        if self._limited:
            self._limited -= 1
            return self._no(method, "ratelimited", status=429, headers={"Retry-After": "1"})
        auth = request.headers.get("Authorization", "")
        if not auth:
            return self._no(method, "not_authed")
        if auth != f"Bearer {self.token}":
            return self._no(method, "invalid_auth")
        if request.content_type != "application/json":
            return self._no(method, "invalid_form_data")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._no(method, "invalid_json")
        body = body if isinstance(body, dict) else {}
        if method in ROOM_METHODS:
            return self._room(method, body)
        if method not in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            return self._no(method, "unknown_method", status=404)
        if self.rooms.get(str(body.get("channel")), {}).get("archived"):
            return self._no(method, "is_archived")
        return self._answer(method, body)

    def room_named(self, name: str) -> dict[str, Any]:
        """The created channel called ``name`` (KeyError when there is none)."""
        return next(r for r in self.rooms.values() if r["name"] == name)

    def posted_in(self, channel: str) -> list[dict[str, Any]]:
        """The bodies of the messages posted in ``channel``, in order."""
        return [b for b in self.of("chat.postMessage") if b.get("channel") == channel]

    def _room(self, method: str, body: dict[str, Any]) -> web.Response:
        if method == "conversations.create":
            return self._create(body)
        if method == "usergroups.users.list":
            if str(body.get("usergroup")) not in self.groups:
                return self._no(method, "no_such_subteam")
            self.calls.append((method, body))
            return web.json_response({"ok": True, "users": self.groups[str(body["usergroup"])]})
        room = self.rooms.get(str(body.get("channel")))
        if room is None:
            return self._no(method, "channel_not_found")
        if room["archived"]:
            refused = "already_archived" if method == "conversations.archive" else "is_archived"
            return self._no(method, refused)
        if method == "conversations.invite":
            new = [u for u in str(body.get("users") or "").split(",") if u and u not in room["members"]]
            if not new:
                return self._no(method, "already_in_channel")
            room["members"].extend(new)
        elif method == "pins.add":
            ts = str(body.get("timestamp"))
            if self.room_messages.get(ts, {}).get("channel") != room["id"]:
                return self._no(method, "message_not_found")
            if ts in room["pins"]:
                return self._no(method, "already_pinned")
            room["pins"].append(ts)
        else:
            room["archived"] = True
        self.calls.append((method, body))
        return web.json_response({"ok": True, "channel": {"id": room["id"], "name": room["name"]}})

    def _create(self, body: dict[str, Any]) -> web.Response:
        name = str(body.get("name") or "")
        if not name:
            return self._no("conversations.create", "invalid_name_required")
        if len(name) > 80:
            return self._no("conversations.create", "invalid_name_maxlength")
        if not ROOM_NAME.fullmatch(name):
            return self._no("conversations.create", "invalid_name_specials")
        if name in self.taken or any(r["name"] == name for r in self.rooms.values()):
            return self._no("conversations.create", "name_taken")
        room_id = f"C0ROOM{len(self.rooms) + 1:04d}"
        self.rooms[room_id] = {"id": room_id, "name": name, "members": [], "pins": [], "archived": False}
        self.channels = self.channels | {room_id}
        self.calls.append(("conversations.create", body))
        return web.json_response({"ok": True, "channel": {"id": room_id, "name": name, "is_channel": True}})

    def _answer(self, method: str, body: dict[str, Any]) -> web.Response:
        channel = body.get("channel")
        if channel not in self.channels:
            return self._no(method, "channel_not_found")
        if not body.get("text") and not body.get("blocks"):
            return self._no(method, "no_text")
        if method == "chat.postEphemeral":
            if not body.get("user"):
                return self._no(method, "user_not_in_channel")
            self.calls.append((method, body))
            return web.json_response({"ok": True, "message_ts": self._ts()})
        known = body.get("ts") if method == "chat.update" else body.get("thread_ts")
        if (method == "chat.update" or known is not None) and self.messages.get(str(known), {}).get(
            "channel"
        ) != channel:
            return self._no(method, "message_not_found" if method == "chat.update" else "thread_not_found")
        self.calls.append((method, body))
        ts = str(known) if method == "chat.update" else self._ts()
        message = {"channel": channel, "ts": ts, "text": body.get("text"), "blocks": body.get("blocks")}
        if method == "chat.update" or known is None:
            (self.room_messages if channel in self.rooms else self.messages)[ts] = message
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": message})

    def _ts(self) -> str:
        self._next_ts += 1
        return f"{self._next_ts}.000100"

    def _no(
        self, method: str, error: str, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        self.refused.append((method, error))
        return web.json_response({"ok": False, "error": error}, status=status, headers=headers)


def slack_click(
    secret: str,
    *,
    user: str,
    action_id: str,
    value: str,
    channel: str = "C0INCIDENTS",
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A ``block_actions`` request as Slack sends it when ``user`` presses a button: the form body and
    its headers, signed v0 with ``secret`` at ``timestamp`` (default: now)."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEAM"},
        "team": {"id": "T0TEAM", "domain": "example"},
        "container": {"type": "message", "message_ts": "1700000001.000100", "channel_id": channel},
        "channel": {"id": channel, "name": "incidents"},
        "response_url": "https://hooks.slack.com/actions/T0TEAM/1/abc",
        "trigger_id": "1.2.3",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "remediator",
                "value": value,
                "action_ts": "1700000002.000200",
            }
        ],
    }
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    when = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{when}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": when,
        "X-Slack-Signature": f"v0={digest}",
    }
    return body, headers


@asynccontextmanager
async def serving(app: web.Application, path: str) -> AsyncIterator[str]:
    """Serve ``app`` on a free local port; yields the URL of ``path``."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url(path))
    finally:
        await server.close()


SP_STATUSES = ("investigating", "identified", "monitoring", "resolved")
SP_COMPONENT_STATUSES = ("operational", "degraded_performance", "partial_outage", "major_outage")


@dataclass
class Statuspage:
    """Atlassian Statuspage v1 stand-in (``POST /v1/pages/{page}/incidents``, ``PATCH …/incidents/{id}``):
    ``Authorization: OAuth <api_key>`` (401 otherwise), the known ``page_id`` (404 otherwise), a JSON
    ``{"incident": {…}}`` with a ``status`` of the four, a ``name`` on create, ``components`` statuses of the
    four; answers the incident with its ``id``. ``calls`` records (method, incident id, body) accepted;
    ``incidents`` is the page as a visitor sees it (id → the latest fields)."""

    api_key: str = "sp-test-key"
    page_id: str = "page123"
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: list[tuple[int, str]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/pages/{page}/incidents", self.handle)
        app.router.add_patch("/v1/pages/{page}/incidents/{incident}", self.handle)
        return app

    def _refuse(self, status: int, message: str) -> web.Response:
        self.refused.append((status, message))
        return web.json_response({"error": message}, status=status)

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"OAuth {self.api_key}":
            return self._refuse(401, "Could not authenticate")
        if request.match_info["page"] != self.page_id:
            return self._refuse(404, "page not found")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._refuse(400, "body is not JSON")
        fields = body.get("incident") if isinstance(body, dict) else None
        problem = self._problem(fields, creating=request.method == "POST")
        if problem:
            return self._refuse(422, problem)
        assert isinstance(fields, dict)
        ident = request.match_info.get("incident") or uuid.uuid4().hex[:12]
        if request.method == "PATCH" and ident not in self.incidents:
            return self._refuse(404, "incident not found")
        self.calls.append((request.method, ident, fields))
        self.incidents[ident] = {**self.incidents.get(ident, {}), **fields, "id": ident}
        return web.json_response(self.incidents[ident], status=201 if request.method == "POST" else 200)

    @staticmethod
    def _problem(fields: Any, *, creating: bool) -> str:
        if not isinstance(fields, dict):
            return "incident is required (an object)"
        if fields.get("status") not in SP_STATUSES:
            return "status must be investigating, identified, monitoring or resolved"
        if creating and not (isinstance(fields.get("name"), str) and fields["name"].strip()):
            return "name is required"
        if not isinstance(fields.get("body", ""), str):
            return "body must be a string"
        components = fields.get("components", {})
        if not isinstance(components, dict) or any(
            v not in SP_COMPONENT_STATUSES for v in components.values()
        ):
            return "components must map ids to a component status"
        return ""
