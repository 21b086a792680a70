"""How the console's templates show times, durations and structured values (Jinja2 filters; pure).

They return plain text: the template escapes it like any other value."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson


def when(value: str | datetime | None) -> str:
    """An RFC 3339 time (or datetime) as ``2026-12-06 06:15:44 UTC``; empty for none."""
    if value is None or value == "":
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    text = text.replace("+00:00", "Z").replace("T", " ")
    head, _, _ = text.rstrip("Z").partition(".")
    return f"{head} UTC"


def duration(seconds: float | None) -> str:
    """``4m 12s``, ``1h 03m``, ``2d 4h``."""
    if seconds is None:
        return ""
    whole = int(max(0.0, float(seconds)))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def compact(value: Any, limit: int = 600) -> str:
    """A structured value on one line (JSON), cut at ``limit`` characters."""
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


FILTERS = {"when": when, "duration": duration, "compact": compact}
