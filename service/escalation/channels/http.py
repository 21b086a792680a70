"""HTTP delivery, shared by every HTTP channel: one POST, and the answers that mean "try again".

``post`` turns a network failure or timeout into ``errors.Transient`` (never with a secret URL in the
message) and ``busy`` turns 429 and 5xx into ``errors.Transient`` with Retry-After as its delay. Never
retries by itself: the outbox worker does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp

from service import errors
from service.model import retry


@dataclass(frozen=True)
class Answer:
    """What a receiver said: status, Retry-After in seconds (or None) and the start of the body."""

    status: int
    retry_after: float | None
    text: str


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header, either form, as of now (``model.retry.retry_after``)."""
    return retry.retry_after(value, now=time.time())


async def post(
    session: aiohttp.ClientSession,
    url: str,
    data: bytes,
    headers: dict[str, str],
    *,
    channel: str,
    secret_url: bool = False,
    timeout_s: float = 10.0,
) -> Answer:
    """POST ``data``; a network failure or timeout raises ``errors.Transient``.

    With ``secret_url`` (a Slack webhook URL is its own credential) the error names only the host.
    """
    try:
        async with session.post(
            url, data=data, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as response:
            text = await response.text(errors="replace")
            return Answer(response.status, retry_after(response.headers.get("Retry-After")), text[:1000])
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        if isinstance(exc, aiohttp.ClientConnectorError):
            detail = f"cannot connect to {exc.host}:{exc.port}"
        elif secret_url or isinstance(exc, aiohttp.InvalidURL):
            detail = "request failed"  # the message may quote the URL, which holds the credential
        else:
            detail = str(exc)
        raise errors.Transient(f"{channel} unreachable: {type(exc).__name__}: {detail}") from exc


def busy(answer: Answer, channel: str) -> None:
    """Raise ``errors.Transient`` (with Retry-After) when the receiver said 429 or 5xx."""
    if answer.status == 429 or answer.status >= 500:
        raise errors.Transient(
            f"{channel} answered {answer.status}: {answer.text[:200]}", delay=answer.retry_after
        )
