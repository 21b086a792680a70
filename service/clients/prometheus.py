"""The Prometheus client adapter: instant queries over the HTTP API (``GET /api/v1/query``) with aiohttp.

prometheus-api-client is synchronous and would block the event loop, so this talks to the API directly.
Translation at this edge::

    errors.Transient     Prometheus unreachable, timed out, 503 (query timeout, overloaded), other 5xx,
                         429 (``delay`` from Retry-After)
    errors.Permanent     bad PromQL (``bad_data``), execution errors (422), other 4xx, a matrix or string
                         result, a response that is not the API's JSON

Never queries anything but ``/api/v1/query``; never reads more than ``max_body`` of a response.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from service import errors
from service.clients import http
from service.model import retry

_MAX_BODY = 8 * 1024 * 1024


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector (its labels, ``__name__`` included) or a scalar (no labels)."""

    labels: dict[str, str]
    value: float


class PrometheusClient:
    """Instant queries against one Prometheus (``base_url`` such as ``http://prometheus:9090``)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, *, max_body: int = _MAX_BODY) -> None:
        self._session = session
        self._endpoint = http.check_url(base_url.rstrip("/") + "/api/v1/query")
        self._max_body = max_body

    async def query(self, promql: str, *, timeout: float) -> list[Sample]:
        """The samples of ``promql`` evaluated now (vector or scalar results)."""
        params = {"query": promql, "timeout": f"{max(1, int(timeout * 1000))}ms"}  # Prometheus's own deadline
        try:
            async with self._session.get(
                self._endpoint, params=params, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                body, truncated = await http.read_limited(response, self._max_body)
                if truncated:
                    response.close()
                status, retry_after = response.status, response.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise errors.Transient(f"Prometheus did not answer within {timeout:g}s") from exc
        except aiohttp.ClientError as exc:
            raise errors.Transient(f"Prometheus unreachable: {_reason(exc)}") from exc
        if truncated:
            raise errors.Permanent(
                f"Prometheus answer is larger than {self._max_body} bytes; narrow the query"
            )
        return _samples(status, body, retry_after)


def _reason(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return http.os_reason(exc.os_error)
    return str(exc) or type(exc).__name__


def _samples(status: int, body: bytes, retry_after: str | None) -> list[Sample]:
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        payload = {}
    reason = f"{payload.get('errorType', f'HTTP {status}')}: {payload.get('error', 'no reason given')}"
    if status == 429 or status >= 500:  # 503: the query timed out or was cancelled; overloaded
        raise errors.Transient(f"Prometheus {reason}", delay=retry.retry_after(retry_after, now=time.time()))
    if payload.get("status") != "success":
        if "errorType" in payload:
            raise errors.Permanent(f"Prometheus rejected the query: {reason}")
        raise errors.Permanent(f"Prometheus answered HTTP {status} without the API's JSON")
    data = payload.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "vector" and isinstance(result, list):
        return [
            Sample(labels=dict(item.get("metric") or {}), value=float(item["value"][1])) for item in result
        ]
    if kind == "scalar" and isinstance(result, list):
        return [Sample(labels={}, value=float(result[1]))]
    raise errors.Permanent(f"query returned a {kind} result; only instant vectors and scalars are supported")
