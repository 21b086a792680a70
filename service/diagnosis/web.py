"""HTTP probes: ``http.get`` (status, latency, body check) and ``http.json`` (facts picked with JMESPath).

A refused connection, a DNS failure or no answer in time is the finding itself (``failed``, ``reachable:
false``), not an error of ours. Rules may not send ``Authorization`` headers of their own: a bearer token
comes only from a file (``bearer_token_file``, e.g. a mounted Secret) and never appears in a finding.
Only ``GET``, never a redirect followed, never more than a bounded part of the body read.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from pathlib import Path
from typing import Any

import jmespath
import jmespath.exceptions
import jmespath.parser
import orjson
from pydantic import Field, PrivateAttr, field_validator, model_validator

from service import errors
from service.clients import http
from service.diagnosis import net, redact
from service.diagnosis.base import Observation, Params, ProbeContext, ProbeDef, probe

EVIDENCE_BODY_BYTES = 1024
GET_MAX_BODY = 64 * 1024
JSON_MAX_BODY = 1024 * 1024
FACT_MAX_BYTES = 2048  # an extracted value larger than this (as JSON) is dropped: use length() or a filter
_FORBIDDEN_HEADERS = frozenset({"authorization", "proxy-authorization"})
_FACT_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_JSON_RESERVED = frozenset({"status_code", "latency_ms", "reachable", "timeout"})


class _HttpParams(Params):
    url: str
    expect_status: list[int] = Field(default_factory=lambda: [200], min_length=1)
    timeout_s: float | None = Field(None, gt=0, le=120)
    headers: dict[str, str] = Field(default_factory=dict)
    bearer_token_file: Path | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            http.check_url(value)
        except errors.Permanent as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("expect_status", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, int) else value

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        bad = [code for code in value if not 100 <= code <= 599]
        if bad:
            raise ValueError(f"HTTP status codes are 100-599, not {bad}")
        return value

    @field_validator("headers")
    @classmethod
    def _no_credentials(cls, value: dict[str, str]) -> dict[str, str]:
        named = sorted(name for name in value if name.strip().lower() in _FORBIDDEN_HEADERS)
        if named:
            raise ValueError(f"{named[0]} headers are not allowed in rules; use bearer_token_file")
        return value


class HttpGetParams(_HttpParams):
    max_latency_ms: float | None = Field(None, gt=0)
    contains: str | None = Field(None, min_length=1)


class Threshold(Params):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> Threshold:
        if self.min is None and self.max is None:
            raise ValueError("a threshold needs min or max")
        return self


class HttpJsonParams(_HttpParams):
    facts: dict[str, str] = Field(min_length=1)
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    _compiled: dict[str, jmespath.parser.ParsedResult] = PrivateAttr(default_factory=dict)

    @field_validator("facts")
    @classmethod
    def _expressions(cls, value: dict[str, str]) -> dict[str, str]:
        for name, expression in value.items():
            if not _FACT_NAME.match(name) or name in _JSON_RESERVED:
                raise ValueError(
                    f"fact name {name!r} must be snake_case and not one of {sorted(_JSON_RESERVED)}"
                )
            try:
                jmespath.compile(expression)
            except jmespath.exceptions.JMESPathError as exc:
                raise ValueError(f"{name}: invalid JMESPath expression {expression!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _thresholds_name_facts(self) -> HttpJsonParams:
        unknown = sorted(set(self.thresholds) - set(self.facts))
        if unknown:
            raise ValueError(f"thresholds name facts that are not extracted: {unknown}")
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._compiled = {name: jmespath.compile(expr) for name, expr in self.facts.items()}

    @property
    def compiled(self) -> dict[str, jmespath.parser.ParsedResult]:
        return self._compiled


@probe("http.get", HttpGetParams)
async def get(ctx: ProbeContext, params: HttpGetParams) -> Observation:
    """``GET url`` and judge the answer.

    Params: ``url`` (http/https), ``expect_status`` (an int or a list; default 200), ``timeout_s``,
    ``headers`` (no Authorization), ``bearer_token_file``, ``max_latency_ms`` (over it → degraded),
    ``contains`` (a substring the first 64 KiB of the body must hold).

    Facts: ``reachable``, ``timeout``, ``status_code``, ``latency_ms``, ``body_bytes`` (bytes read, at most
    64 KiB), ``truncated``, ``location`` (redirect target or null), ``contains`` (bool, null if not asked).
    Status: unreachable, unexpected status or body without ``contains`` → failed; slow → degraded.
    """
    token = _token(params.bearer_token_file)
    try:
        result = await _fetch(ctx, params, token, GET_MAX_BODY)
    except http.Unreachable as exc:
        facts = {**_unreachable(exc), "body_bytes": 0, "truncated": False, "location": None, "contains": None}
        return Observation("failed", f"GET {params.url}: {exc}", facts=facts)
    found = None if params.contains is None else params.contains.encode() in result.body
    facts = {
        "reachable": True,
        "timeout": False,
        "status_code": result.status,
        "latency_ms": result.elapsed_ms,
        "body_bytes": len(result.body),
        "truncated": result.truncated,
        "location": _location(result, token),
        "contains": found,
    }
    head = f"GET {params.url} → {result.status} in {result.elapsed_ms:.0f} ms"
    evidence = _evidence(result, token)
    if result.status not in params.expect_status:
        return Observation("failed", f"{head} ({_expected(params, result, token)})", facts, evidence)
    if found is False:
        return Observation("failed", f"{head}, body lacks {params.contains!r}", facts, evidence)
    if params.max_latency_ms is not None and result.elapsed_ms > params.max_latency_ms:
        return Observation("degraded", f"{head} (over {params.max_latency_ms:g} ms)", facts, evidence)
    return Observation("ok", head, facts, evidence)


@probe("http.json", HttpJsonParams)
async def get_json(ctx: ProbeContext, params: HttpJsonParams) -> Observation:
    """``GET url``, parse the JSON body and extract facts with JMESPath.

    Params: ``url``, ``facts`` (fact name → JMESPath expression, e.g. ``{peers: "length(peers)"}``),
    ``expect_status`` (default 200), ``thresholds`` (fact name → ``{min, max}``), ``timeout_s``,
    ``headers``, ``bearer_token_file``.

    Facts: each extracted value (null when the path is absent, the expression fails on the data, or the
    value is larger than 2 KiB as JSON), plus ``reachable``, ``timeout``, ``status_code``, ``latency_ms``.
    Status: unreachable or unexpected status → failed; a body that is not JSON (or over 1 MiB) → error; a
    threshold violated (or a thresholded fact that is not a number) → degraded.
    """
    token = _token(params.bearer_token_file)
    empty: dict[str, Any] = dict.fromkeys(params.facts)
    try:
        result = await _fetch(ctx, params, token, JSON_MAX_BODY)
    except http.Unreachable as exc:
        return Observation("failed", f"GET {params.url}: {exc}", facts={**_unreachable(exc), **empty})
    base = {
        "reachable": True,
        "timeout": False,
        "status_code": result.status,
        "latency_ms": result.elapsed_ms,
    }
    head = f"GET {params.url} → {result.status} in {result.elapsed_ms:.0f} ms"
    evidence = _evidence(result, token)
    if result.status not in params.expect_status:
        summary = f"{head} ({_expected(params, result, token)})"
        return Observation("failed", summary, {**base, **empty}, evidence)
    if result.truncated:
        summary = f"{head}: body is larger than {JSON_MAX_BODY} bytes, not parsed"
        return Observation("error", summary, {**base, **empty}, evidence)
    try:
        document = orjson.loads(result.body)
    except orjson.JSONDecodeError as exc:
        summary = f"{head}: body is not JSON ({exc})"
        return Observation("error", summary, {**base, **empty}, evidence)
    values, notes = _extract(params, document)
    problems = _violations(params, values)
    shown = ", ".join(f"{name}={_short(value)}" for name, value in values.items())
    details = "\n".join([*notes, *problems])
    evidence = f"{details}\n{evidence}" if details else evidence
    if problems:
        return Observation("degraded", f"{head}: {'; '.join(problems)}", {**base, **values}, evidence)
    return Observation("ok", f"{head}: {shown}", {**base, **values}, evidence)


async def _fetch(ctx: ProbeContext, params: _HttpParams, token: str | None, max_body: int) -> http.HttpResult:
    headers = dict(params.headers)
    if token is not None:
        host = (urllib.parse.urlsplit(params.url).hostname or "").lower()
        if host not in ctx.clients.credential_hosts:
            raise errors.Permanent(
                f"bearer_token_file is only sent to REMEDIATOR_MONITOR_HOSTS, and {host!r} is not one of them"
            )
        headers["Authorization"] = f"Bearer {token}"
    timeout = net.inner_timeout(ctx, params.timeout_s)
    return await ctx.clients.http.get(params.url, timeout=timeout, headers=headers, max_body=max_body)


def _token(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise errors.Permanent(f"bearer_token_file {path}: {exc.strerror}") from exc
    if not token:
        raise errors.Permanent(f"bearer_token_file {path} is empty")
    return token


def _unreachable(exc: http.Unreachable) -> dict[str, Any]:
    return {"reachable": False, "timeout": exc.timed_out, "status_code": None, "latency_ms": None}


def _location(result: http.HttpResult, token: str | None) -> str | None:
    location = result.location
    return None if location is None else redact.redact(location, _secrets(token))


def _expected(params: _HttpParams, result: http.HttpResult, token: str | None) -> str:
    wanted = ", ".join(str(code) for code in params.expect_status)
    location = _location(result, token)
    return f"expected {wanted}" + (f"; Location: {location}" if location else "")


def _evidence(result: http.HttpResult, token: str | None) -> str:
    lines = [f"HTTP {result.status}"]
    for name in ("content-type", "location", "retry-after"):
        if name in result.headers:
            lines.append(f"{name}: {result.headers[name]}")
    body = result.body[:EVIDENCE_BODY_BYTES].decode("utf-8", errors="replace")
    more = len(result.body) > EVIDENCE_BODY_BYTES or result.truncated
    text = "\n".join(lines) + "\n\n" + body + ("\n…" if more else "")
    return redact.redact(text, _secrets(token))


def _secrets(token: str | None) -> list[str]:
    return [token] if token else []


def _extract(params: HttpJsonParams, document: Any) -> tuple[dict[str, Any], list[str]]:
    values: dict[str, Any] = {}
    notes: list[str] = []
    for name, compiled in params.compiled.items():
        try:
            value = compiled.search(document)
        except jmespath.exceptions.JMESPathError as exc:
            values[name] = None
            notes.append(f"{name}: {params.facts[name]!r} failed on this body: {exc}")
            continue
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        if len(orjson.dumps(value)) > FACT_MAX_BYTES:
            notes.append(
                f"{name}: value larger than {FACT_MAX_BYTES} bytes dropped (use length() or a filter)"
            )
            value = None
        values[name] = value
    return values, notes


def _violations(params: HttpJsonParams, values: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for name, bound in params.thresholds.items():
        value = values.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{name} is {_short(value)}, not a number")
        elif bound.min is not None and value < bound.min:
            problems.append(f"{name}={_short(value)} below min {bound.min:g}")
        elif bound.max is not None and value > bound.max:
            problems.append(f"{name}={_short(value)} above max {bound.max:g}")
    return problems


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 60 else text[:57] + "…"


PROBES: tuple[ProbeDef, ...] = (get, get_json)
