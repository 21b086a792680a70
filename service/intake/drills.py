"""``POST /v1/drills``: a runbook drill of one rule, as the runbooks ask every quarter (approver token).

The body is ``{"rule": NAME, "alert": {"labels", "annotations"}}``; without ``alert`` the scenario is the
first case of the rule's own test file (``<rules dir>/tests/<rule>.test.yaml``, the ``remediator rules test``
format). The alert is validated as intake validates any alert, must match the rule, and is stored as a
drill: an inbox row with ``drill`` true, its own fingerprint (``drill-<id>``: no episode of a real alert),
``startsAt`` now. From there the pipeline takes it like any alert, with the drill's differences (its own
incident labelled ``drill``, never attached to or linked with a real one; every action dry-run; every
notification to ``REMEDIATOR_DRILL_CHANNEL`` only, marked ``[DRILL]``).

Answers 201 ``{incident, fingerprint, inbox, rule}`` once the drill incident is open (within ``WAIT_S``), else
202 with ``incident`` null — the incident opens later under ``GET /v1/incidents?rule=``. Never acts, pages or
writes to the cluster itself: it only stores the alert and wakes the dispatcher.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import structlog
import yaml
from aiohttp import web
from pydantic import ValidationError

from service import errors, keys, ruletests
from service.intake import control, responses, webhook
from service.model import alerts
from service.records import inbox
from service.records.ids import new_id

log = structlog.get_logger(__name__)

#: how long the answer waits for the drill incident to open (probes run after that, in the background)
WAIT_S = 10.0
#: the receiver a drill's alert is stored under (no Alertmanager sent it)
RECEIVER = "remediator-drill"


class Refused(Exception):
    """A drill that cannot start: ``status``, the sentence, the request field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


async def post_drill(request: web.Request) -> web.Response:
    who = control.approver(request)
    if isinstance(who, web.Response):
        return who
    app, now = request.app, time.time()
    try:
        body = _object(await request.read())
        name = body.get("rule")
        if not isinstance(name, str) or not name:
            raise Refused(400, "rule is required (the name of a loaded rule)", "rule")
        rule = app[keys.RULES].by_name(name)
        if rule is None:
            raise Refused(404, f"no rule named {name[:100]!r} is loaded", "rule")
        spec = body.get("alert")
        if spec is None:
            spec = scenario(Path(app[keys.SETTINGS].rules_dir) / "tests" / f"{name}.test.yaml")
        alert, raw = drill_alert(spec, now=now)
        if not rule.matches(alert.labels):
            shown = str(alert.labels)[:300]
            raise Refused(
                400, f"the scenario's alert does not match rule {name}: its labels {shown}", "alert"
            )
    except Refused as exc:
        return responses.error(exc.status, exc.message, field=exc.field)
    row = _row(alert, raw, name, now=now)
    try:
        row_id = await inbox.add_drill(app[keys.STORE], row)
    except errors.StoreUnavailable:
        return responses.retry_later("store unavailable; retry later")
    app[keys.DISPATCHER].wake()
    log.info("drill.started", rule=name, by=who, fingerprint=alert.fingerprint, inbox=row_id)
    incident = await _opened(app, alert.fingerprint)
    answer = {"incident": incident, "fingerprint": alert.fingerprint, "inbox": row_id, "rule": name}
    return responses.json_response(answer, status=201 if incident else 202)


def _object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise Refused(
            400, 'the body must be a JSON object: {"rule": NAME, "alert"?: {"labels", "annotations"}}'
        )
    return body


def scenario(path: Path) -> dict[str, Any]:
    """The alert of the first case of a rule-test file (``labels``, ``annotations``); 404 when the rule has
    none, 400 when the file is not a valid rule-test file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise Refused(
            404, f"no alert given and no scenario in {path.parent.name}/{path.name}", "alert"
        ) from None
    try:
        spec = ruletests.TestFile.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        first = str(exc).splitlines()[0][:200]
        raise Refused(400, f"{path.name} is not a rule-test file: {first}", "alert") from None
    return spec.tests[0].alert.model_dump()


def drill_alert(spec: Any, *, now: float) -> tuple[alerts.Alert, dict[str, Any]]:
    """The drill's firing alert (and the JSON it is stored as): the scenario's labels and annotations, a
    fingerprint of its own, started now; validated with intake's limits (400 naming the field)."""
    if not isinstance(spec, dict):
        raise Refused(400, "alert must be an object with labels (and annotations)", "alert")
    started = datetime.fromtimestamp(now, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    raw = {
        "status": "firing",
        "labels": spec.get("labels"),
        "annotations": spec.get("annotations") or {},
        "startsAt": started,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": f"drill-{new_id(now).lower()}",
    }
    try:
        alert = alerts.Alert.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        path = "alert." + webhook.field_path(tuple(first["loc"]))
        raise Refused(400, f"{path}: {alerts.describe(first)}", path) from None
    return alert, {**raw, "annotations": alert.annotations}


def _row(alert: alerts.Alert, raw: dict[str, Any], rule: str, *, now: float) -> dict[str, Any]:
    """The drill's inbox row: pending, the rule already chosen (``inbox.add_drill`` marks it a drill)."""
    return {
        "fingerprint": alert.fingerprint,
        "starts_at": webhook.episode_time(alert, raw["startsAt"]),
        "status": "firing",
        "alertname": alert.name[:256],
        "payload": orjson.dumps(raw).decode(),
        "receiver": RECEIVER,
        "group_key": f"drill:{alert.fingerprint}",
        "truncated": 0,
        "received_at": now,
        "state": inbox.PENDING,
        "attempts": 0,
        "outcome": None,
        "processed_at": None,
        "rule": rule,
    }


async def _opened(app: web.Application, fingerprint: str) -> str | None:
    """The drill incident once it is open, waiting at most ``WAIT_S``; None when it is not open by then."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        try:
            found = await inbox.drill_incident(app[keys.STORE], fingerprint)
        except errors.StoreUnavailable:
            found = None
        if found is not None or asyncio.get_running_loop().time() >= deadline:
            return found
        await asyncio.sleep(0.1)
