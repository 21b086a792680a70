"""``POST /v1/alerts``: the Alertmanager webhook. Answers 200 only after the alerts are committed.

Order of checks: credentials (401) → content type (415) → declared size (413, before reading) →
read with the limit and the body timeout (413, 408; 400 when its encoding does not decode) → JSON (400) →
schema and limits (400 naming the field; ``model.alerts`` has the limits) → commit (200 or 503).
What is stored is what was validated: annotation values truncated at validation are stored truncated.

A firing alert that no rule matches is decided here (stored as done, outcome ``unmatched``): matching is
pure and costs about a microsecond, and the dispatcher then never touches the alerts that are not ours.
"""

from __future__ import annotations

import time
from datetime import UTC
from typing import Any

import orjson
import structlog
from aiohttp import web
from pydantic import ValidationError

from service import errors, keys, observability
from service.intake import auth, committer, limits, responses
from service.matching import select
from service.matching.compiled import RuleSet
from service.model import alerts
from service.records import inbox

log = structlog.get_logger(__name__)


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("alerts", 0, "startsAt")`` → ``alerts[0].startsAt``. A key (a label name) is cut to
    ``_FIELD_KEY_CHARS`` and its unprintable characters escaped: it may be anything the sender chose."""
    path = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for an error in the key itself: the path already names it
            continue
        text = f"[{part}]" if isinstance(part, int) else _printable(part)
        path += text if isinstance(part, int) else (f".{text}" if path else text)
    return path or "body"


_FIELD_KEY_CHARS = 64


def _printable(key: str) -> str:
    if not key:
        return '""'
    if len(key) > _FIELD_KEY_CHARS:
        key = key[:_FIELD_KEY_CHARS] + "…"
    if key.isprintable():
        return key
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in key)


def episode_time(alert: alerts.Alert, raw: object = None) -> str:
    """``startsAt`` in UTC, always with microseconds: one instant, one key (``…T10:00:00.000000Z``).

    ``raw`` is the string the alert was validated from: when it is already UTC (``…Z``, as Alertmanager
    sends it) the key is cut from it — the same digits as the parsed time, which truncates to microseconds —
    at a fifth of the cost of formatting the datetime."""
    if (
        isinstance(raw, str)
        and len(raw) >= 20
        and raw[-1] == "Z"
        and raw[10] == "T"
        and (len(raw) == 20 or raw[19] == ".")
    ):
        return raw[:19] + "." + (raw[20:-1] + "000000")[:6] + "Z"
    when = alert.starts_at
    if when.utcoffset():
        when = when.astimezone(UTC)
    return when.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


async def post_alerts(request: web.Request) -> web.StreamResponse:
    started = time.perf_counter()
    metrics = request.app[keys.METRICS]
    response = await _handle(request)
    metrics.intake_request(response.status).inc()
    if response.status == 200:
        metrics.intake_latency.observe(time.perf_counter() - started)
    return response


async def _handle(request: web.Request) -> web.Response:
    app = request.app
    settings = app[keys.SETTINGS]
    denial = auth.webhook_denial(request, settings.webhook_token)
    if denial is not None:
        return auth.unauthorized(denial)
    if request.content_type != "application/json" and not request.content_type.endswith("+json"):
        return responses.error(415, f"expected Content-Type application/json, got {request.content_type!r}")
    body = await limits.read_body(request, limit=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    if isinstance(body, web.Response):
        return body
    parsed = _parse(body)
    if isinstance(parsed, web.Response):
        return parsed
    notification, data = parsed
    rows = _rows(notification, data, app[keys.RULES], now=time.time())
    try:
        committed = await app[keys.COMMITTER].submit(rows, timeout=settings.store_timeout_s)
    except errors.StoreUnavailable as exc:
        log.warning("intake.unavailable", reason=str(exc)[:300], alerts=len(rows))
        return responses.retry_later("store unavailable; retry later")
    except errors.Permanent as exc:  # the store refused these rows themselves (the others' commit went on)
        log.error("intake.rows_refused", reason=str(exc)[:300], alerts=len(rows))
        return responses.error(400, f"the alerts could not be stored: {str(exc)[:200]}", field="alerts")
    _count(app[keys.METRICS], committed, rows)
    if notification.truncated_alerts:
        log.warning(
            "intake.truncated_group",
            group_key=notification.group_key[:200],
            truncated=notification.truncated_alerts,
        )
    return responses.json_response({"accepted": committed.accepted, "duplicates": committed.duplicates})


def _parse(body: bytes) -> tuple[alerts.Notification, dict[str, Any]] | web.Response:
    """The notification (and the JSON it came from), or the 400 that names what is wrong."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return responses.error(400, f"invalid JSON: {exc}", field="body")
    try:
        notification = alerts.Notification.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        path = field_path(tuple(first["loc"]))
        return responses.error(400, f"{path}: {alerts.describe(first)}", field=path)
    return notification, data


def _count(
    metrics: observability.Metrics, committed: committer.Committed, rows: list[dict[str, Any]]
) -> None:
    """The intake counters of one committed request."""
    metrics.alerts_received.inc(committed.accepted)
    if committed.duplicates:
        metrics.alerts_duplicate.inc(committed.duplicates)
    if committed.decided:
        metrics.alerts_unmatched.inc(committed.decided)
        log.info("alert.unmatched", count=committed.decided, first=_first_unmatched(rows))
    if committed.accepted > committed.decided:
        metrics.inbox_pending(committed.accepted - committed.decided)


def _first_unmatched(rows: list[dict[str, Any]]) -> str:
    return next((r["alertname"] for r in rows if r["state"] == inbox.DONE), "")


def _rows(
    notification: alerts.Notification, data: dict[str, Any], rules: RuleSet, *, now: float
) -> list[dict[str, Any]]:
    rows = []
    for alert, raw in zip(notification.alerts, data["alerts"], strict=True):
        rule = select.select_rule(rules, alert.labels) if alert.status == "firing" else None
        ours = alert.status != "firing" or rule is not None
        rows.append(
            {
                "fingerprint": alert.fingerprint,
                "starts_at": episode_time(alert, raw.get("startsAt")),
                "status": alert.status,
                "alertname": alert.name[:256],
                "payload": orjson.dumps(_as_validated(raw, alert)).decode(),
                "receiver": notification.receiver,
                "group_key": notification.group_key,
                "truncated": notification.truncated_alerts,
                "received_at": now,
                "state": inbox.PENDING if ours else inbox.DONE,
                "attempts": 0,
                "outcome": None if ours else "unmatched",
                "processed_at": None if ours else now,
                "rule": rule.name if rule is not None else None,  # the pipeline does not match again
            }
        )
    return rows


def _as_validated(raw: dict[str, Any], alert: alerts.Alert) -> dict[str, Any]:
    """The alert as received (unknown fields kept for the versions to come), with the annotations as
    validated: a value truncated there is stored truncated. Comparing costs next to nothing when nothing
    changed (the same string objects)."""
    annotations = raw.get("annotations")
    if annotations is None or annotations == alert.annotations:
        return raw
    return {**raw, "annotations": alert.annotations}
