"""When to try again: the one ``Retry-After`` parser and the one backoff with jitter (pure).

``retry_after`` reads both forms of RFC 9110 §10.2.3 — delta-seconds (``120``) and an HTTP-date
(``Wed, 21 Oct 2026 07:28:00 GMT``, measured against the ``now`` the caller passes) — and answers None for
anything else (absent, negative, garbage), capped so that a receiver cannot park a retry for days.
``backoff`` is the delay before attempt ``attempt + 1``: a server's Retry-After when it gave one, else
exponential from ``base`` with full jitter (uniform between 0 and the exponential step, capped), so that
many deliveries that failed together do not retry together. Never sleeps, never reads the clock.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import UTC
from email.utils import parsedate_to_datetime

CAP_S = 3600.0
"""The longest Retry-After honoured (one hour): a longer one is taken as this."""

_DELTA = re.compile(r"^[0-9]+$")


def retry_after(value: str | None, *, now: float, cap: float = CAP_S) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, between 0 and ``cap``; None when absent or
    unparsable. ``now`` (Unix seconds) is what an HTTP-date is measured against; a date in the past is 0."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELTA.match(text):  # delta-seconds: 1*DIGIT, nothing else (no sign, no fraction)
        return min(float(text), cap)
    if text[0].isdigit() or text[0] in "+-.":
        return None  # a number that is not delta-seconds ("-5", "1.5", "1e3")
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; "-0000" and asctime's zoneless form parse as naive
        when = when.replace(tzinfo=UTC)
    return _until(when.timestamp(), now, cap)


def _until(at: float, now: float, cap: float) -> float:
    return min(max(0.0, at - now), cap)


def backoff(
    attempt: int,
    base: float,
    cap: float,
    retry_after: float | None = None,
    *,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds before the next try after ``attempt`` failed tries (1 = the first failed).

    With a server's ``retry_after`` (as ``retry_after()`` parsed it, so at most ``CAP_S``): that — the
    receiver said when, and a shorter ``cap`` must not make us knock earlier. Otherwise full jitter: uniform
    in [0, min(cap, base · 2^(attempt-1))). ``rand`` returns a float in [0, 1) (tests pass their own).
    """
    if retry_after is not None:
        return min(max(0.0, retry_after), CAP_S)
    step = min(cap, base * 2.0 ** min(max(0, attempt - 1), 64))
    return step * rand()
