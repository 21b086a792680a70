"""The escalation matrix of the runbooks (pure): level 1 at once, level 2 after 15 min, level 3 after 30 min,
level 4 after 60 min for critical incidents only — counted from the escalation, stopped by ack or resolve."""

from __future__ import annotations

#: level → seconds after the escalation at which it is due
OFFSETS = {2: 15 * 60.0, 3: 30 * 60.0, 4: 60 * 60.0}
CRITICAL_ONLY = {4}


def next_level(level: int, severity: str, escalated_at: float) -> tuple[int, float] | None:
    """The level after ``level`` and when it is due, or None when the matrix ends here."""
    following = level + 1
    if following not in OFFSETS or (following in CRITICAL_ONLY and severity != "critical"):
        return None
    return following, escalated_at + OFFSETS[following]
