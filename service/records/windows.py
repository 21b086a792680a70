"""Maintenance windows: automation paused for one namespace, rule or target until a time.

Each window is its own row of ``service_state`` (key ``window:<id>``), so two approvers opening windows at
once never overwrite each other, and every replica reads the same windows from the shared store. A window
ended early keeps its row (who ended it and when) for the record; ``active`` returns the windows whose
``until`` is still ahead and that nobody ended. Scopes: ``namespace:NAME``, ``rule:NAME``,
``target:KIND/NAMESPACE/NAME`` — validated here, so a scope never holds anything but a DNS-1123-ish name.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

import orjson
import sqlalchemy as sa

from service.records import schema
from service.records.ids import new_id
from service.records.sqlite_inline import Conn
from service.records.store import Store, iso

S = schema.service_state
PREFIX = "window:"
ScopeKind = Literal["namespace", "rule", "target"]
_NAME = r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?"
_SCOPES = {
    "namespace": re.compile(rf"^{_NAME}$"),
    "rule": re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"),
    "target": re.compile(rf"^[A-Za-z][A-Za-z0-9]{{0,62}}/{_NAME}/{_NAME}$"),
}
MAX_REASON = 500


@dataclass(frozen=True)
class Window:
    """One maintenance window: automation on ``kind``/``value`` paused until ``until`` (epoch seconds)."""

    id: str
    kind: ScopeKind
    value: str
    until: float
    by: str
    reason: str
    created_at: float
    ended_at: float | None = None
    ended_by: str | None = None

    @property
    def scope(self) -> str:
        return f"{self.kind}:{self.value}"

    def covers(self, *, rule: str, kind: str, namespace: str, name: str) -> bool:
        """Whether this window pauses automation of ``rule`` on the target ``kind/namespace/name``."""
        if self.kind == "namespace":
            return self.value == namespace
        if self.kind == "rule":
            return self.value == rule
        return self.value == f"{kind}/{namespace}/{name}"

    def sentence(self) -> str:
        """What a human reads on a blocked action."""
        why = f" ({self.reason})" if self.reason else ""
        return f"maintenance window on {self.scope} until {iso(self.until)}, opened by {self.by}{why}"

    def public(self) -> dict[str, Any]:
        """The window as the API shows it (times RFC 3339)."""
        data = asdict(self)
        data.update(scope=self.scope, until=iso(self.until), created_at=iso(self.created_at))
        data["ended_at"] = iso(self.ended_at) if self.ended_at is not None else None
        return data


def parse_scope(text: str) -> tuple[ScopeKind, str]:
    """``namespace:shop`` → ("namespace", "shop"); raises ValueError naming what is wrong."""
    kind, sep, value = text.strip().partition(":")
    if not sep or kind not in _SCOPES:
        raise ValueError("scope must be namespace:NAME, rule:NAME or target:KIND/NAMESPACE/NAME")
    if not _SCOPES[kind].match(value):
        raise ValueError(f"{kind} {value[:100]!r} is not a valid {kind} name")
    return kind, value  # type: ignore[return-value]  # kind is one of _SCOPES' keys


async def open_window(
    store: Store, *, kind: ScopeKind, value: str, until: float, by: str, reason: str, now: float
) -> Window:
    """Store a new window; its id is returned with it."""
    window = Window(new_id(now), kind, value, until, by, reason[:MAX_REASON], now)
    async with store.write() as conn:
        await conn.execute(sa.insert(S).values(key=PREFIX + window.id, value=_dump(window), updated_at=now))
    return window


async def end_window(store: Store, window_id: str, *, by: str, now: float) -> Window | None:
    """End a window early (kept for the record); None when there is no such window still active."""
    async with store.write() as conn:
        found = await _get(conn, window_id)
        if found is None or found.ended_at is not None or found.until <= now:
            return None
        ended = Window(**{**asdict(found), "ended_at": now, "ended_by": by})
        await conn.execute(
            sa.update(S).where(S.c.key == PREFIX + window_id).values(value=_dump(ended), updated_at=now)
        )
    return ended


async def active(store: Store, now: float) -> list[Window]:
    """The windows in force at ``now``, soonest to end first."""
    async with store.read() as conn:
        rows = (await conn.execute(sa.select(S.c.value).where(S.c.key.startswith(PREFIX)))).scalars().all()
    windows = [_load(v) for v in rows]
    return sorted((w for w in windows if w.ended_at is None and w.until > now), key=lambda w: w.until)


async def _get(conn: Conn, window_id: str) -> Window | None:
    value = await conn.scalar(sa.select(S.c.value).where(S.c.key == PREFIX + window_id))
    return _load(value) if value else None


def _dump(window: Window) -> str:
    return orjson.dumps(asdict(window)).decode()


def _load(value: str) -> Window:
    return Window(**orjson.loads(value))
