"""The escalation matrix of the runbooks (pure): level 1 at once, level 2 after 15 min, level 3 after 30 min,
level 4 after 60 min for critical incidents only — counted from the escalation, stopped by ack or resolve.

Who each level reaches is ``escalation.paging`` (``REMEDIATOR_ESCALATION_LEVELS``); a matrix of fewer
levels ends at its last one (``top``).
"""

from __future__ import annotations

#: level → seconds after the escalation at which it is due
OFFSETS = {2: 15 * 60.0, 3: 30 * 60.0, 4: 60 * 60.0}
CRITICAL_ONLY = {4}
TOP = 4


def next_level(level: int, severity: str, escalated_at: float, *, top: int = TOP) -> tuple[int, float] | None:
    """The level after ``level`` and when it is due, or None when the matrix ends here (after ``top``, or
    before level 4 for an incident that is not critical)."""
    following = level + 1
    if following not in OFFSETS or following > top:
        return None
    if following in CRITICAL_ONLY and severity != "critical":
        return None
    return following, escalated_at + OFFSETS[following]
