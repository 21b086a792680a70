"""Atlassian Statuspage v1: open an incident for an update's first step (``POST /v1/pages/{page}/incidents``),
then update or resolve it (``PATCH /v1/pages/{page}/incidents/{id}``), setting the configured component's
status with each step. Authenticates with ``Authorization: OAuth <key>`` (the key read from a file); the
key is never logged or put in an error. Failures are translated here: a timeout, a dropped connection, 429
or 5xx → ``errors.Transient``; any other refusal → ``errors.Permanent``. Sends only what it is given.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp

from service import errors
from service.comms import drafts

TIMEOUT_S = 10.0


def read_key(path: Path | None) -> str:
    """The API key from its file (a mounted Secret); Permanent when it is not configured or unreadable."""
    if path is None:
        raise errors.Permanent("REMEDIATOR_STATUSPAGE_API_KEY_FILE is not set")
    try:
        key = path.read_text().strip()
    except OSError as exc:
        raise errors.Permanent(f"cannot read the Statuspage API key file: {exc.strerror}") from exc
    if not key:
        raise errors.Permanent("the Statuspage API key file is empty")
    return key


class Statuspage:
    """One page of Atlassian Statuspage, over the caller's ``aiohttp`` session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        page_id: str,
        api_key: str,
        component_id: str = "",
    ) -> None:
        self._session = session
        quoted = urllib.parse.quote(page_id, safe="")
        self._incidents = f"{base_url.rstrip('/')}/v1/pages/{quoted}/incidents"
        self._headers = {"Authorization": f"OAuth {api_key}", "Content-Type": "application/json"}
        self._component = component_id

    async def create(self, draft: drafts.Draft, *, severity: str) -> str:
        """Open the page's incident with the draft (its status the draft's step); its Statuspage id."""
        body = {"name": draft.title, **self._fields(draft, severity)}
        answer = await self._send("POST", self._incidents, {"incident": body})
        ident = answer.get("id")
        if not isinstance(ident, str) or not ident:
            raise errors.Permanent("Statuspage answered without an incident id")
        return ident

    async def update(self, incident_id: str, draft: drafts.Draft, *, severity: str) -> str:
        """Post the draft as the next update of the page's incident (``resolved`` resolves it)."""
        url = f"{self._incidents}/{urllib.parse.quote(incident_id, safe='')}"
        await self._send("PATCH", url, {"incident": self._fields(draft, severity)})
        return incident_id

    def _fields(self, draft: drafts.Draft, severity: str) -> dict[str, Any]:
        fields: dict[str, Any] = {"status": draft.step, "body": draft.body}
        if self._component:
            fields["component_ids"] = [self._component]
            fields["components"] = {self._component: drafts.component_status(draft.step, severity)}
        return fields

    async def _send(self, method: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with self._session.request(
                method, url, json=body, headers=self._headers, timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)
            ) as response:
                if response.status == 429 or response.status >= 500:
                    raise errors.Transient(f"Statuspage answered {response.status}")
                if response.status >= 400:
                    raise errors.Permanent(f"Statuspage refused the update: {response.status}")
                answer = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise errors.Transient(f"Statuspage unreachable: {type(exc).__name__}") from exc
        except ValueError as exc:
            raise errors.Permanent("Statuspage answered something that is not JSON") from exc
        return answer if isinstance(answer, dict) else {}
