"""The HTTP client adapter probes use: one ``GET`` over a shared ``aiohttp.ClientSession``, bounded.

Owns aiohttp's exceptions and translates them at this edge::

    errors.Transient
    └── Unreachable        no HTTP response: refused, reset, DNS failure, TLS failure, timeout
    errors.Permanent       the URL is not an absolute http(s) URL, or carries userinfo (``user@host``)

An HTTP error status is *not* an exception here: a 503 is an answer, and the probe judges it. The body is
read with a limit (never the whole of a huge body) and redirects are not followed (the ``Location`` is
reported). Never sends a request other than ``GET``; never reads the body past ``max_body``.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
import yarl

from service import errors

_SCHEMES = frozenset({"http", "https"})


class Unreachable(errors.Transient):
    """No HTTP response arrived: the connection failed or nothing answered in time (``timed_out``)."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True)
class HttpResult:
    """One response: ``headers`` keys are lower-case; ``body`` holds at most ``max_body`` bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed_ms: float
    truncated: bool

    @property
    def location(self) -> str | None:
        return self.headers.get("location")


def check_url(url: str) -> yarl.URL:
    """``url`` parsed, if it is an absolute ``http``/``https`` URL with a host; else ``errors.Permanent``."""
    try:
        parsed = yarl.URL(url)
    except (ValueError, TypeError) as exc:
        raise errors.Permanent(f"invalid URL: {exc}") from exc
    if parsed.scheme not in _SCHEMES or not parsed.host:
        raise errors.Permanent(f"only absolute http:// or https:// URLs are allowed, not {url[:200]!r}")
    if parsed.user is not None or parsed.password is not None or "@" in parsed.raw_authority:
        # userinfo in a URL hides the real host from a reader (``http://coordinator@169.254.169.254/``);
        # credentials come from files (``bearer_token_file``), never from a URL
        shown = str(parsed.with_user(None)) if parsed.host else "the URL"  # never the password itself
        raise errors.Permanent(f"URLs with userinfo (user@host) are not allowed: {shown[:200]!r}")
    return parsed


async def read_limited(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether more was there (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await response.content.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = b"".join(chunks)
    return data[:limit], size > limit


def os_reason(exc: OSError) -> str:
    """The system's words for an OS error ("Connection refused"), not asyncio's ("Connect call failed")."""
    if isinstance(exc, socket.gaierror):
        return exc.strerror or str(exc)
    if exc.errno is not None:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


class HttpClient:
    """``GET`` with a timeout and a body limit over one session (owned by whoever created it)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def get(
        self,
        url: str,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        max_body: int = 65536,
        allow_redirects: bool = False,
    ) -> HttpResult:
        """The response to ``GET url`` (any status), or ``Unreachable`` / ``errors.Permanent``."""
        target = check_url(url)
        started = time.perf_counter()
        try:
            async with self._session.get(
                target,
                headers=dict(headers or {}),
                allow_redirects=allow_redirects,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                body, truncated = await read_limited(response, max_body)
                if truncated:
                    response.close()  # drop the connection rather than drain a huge body
                return HttpResult(
                    status=response.status,
                    headers={key.lower(): value for key, value in response.headers.items()},
                    body=body,
                    elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
                    truncated=truncated,
                )
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise Unreachable(f"no response within {timeout:g}s", timed_out=True) from exc
        except aiohttp.ClientConnectorDNSError as exc:
            raise Unreachable(f"cannot resolve {target.host}: {os_reason(exc.os_error)}") from exc
        except aiohttp.ClientSSLError as exc:
            raise Unreachable(f"TLS handshake with {target.host} failed: {exc}") from exc
        except aiohttp.ClientConnectorError as exc:
            reason = os_reason(exc.os_error)
            raise Unreachable(f"cannot connect to {target.host}:{target.port}: {reason}") from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            raise Unreachable(f"connection to {target.host}:{target.port} lost: {exc}") from exc
        except aiohttp.ClientError as exc:  # malformed response, payload errors
            raise errors.Transient(f"bad HTTP response from {target.host}: {type(exc).__name__}") from exc
