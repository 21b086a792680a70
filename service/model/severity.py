"""Severity of alerts and incidents (pure): an alert's own ``severity`` label when it names a known level,
the rule's severity otherwise; an incident is as severe as its most severe alert."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

LEVELS = ("critical", "high", "warning", "info")
_RANK = {name: len(LEVELS) - i for i, name in enumerate(LEVELS)}  # critical 4 … info 1


def of_alert(labels: Mapping[str, str], rule_severity: str) -> str:
    """The alert's ``severity`` label (case-insensitive) when it is a known level, else the rule's."""
    label = labels.get("severity", "").strip().lower()
    return label if label in _RANK else rule_severity


def rank(severity: str | None) -> int:
    """critical 4, high 3, warning 2, info 1; anything else 0."""
    return _RANK.get(severity or "", 0)


def highest(severities: Iterable[str | None]) -> str | None:
    """The most severe of ``severities`` (None when there is none)."""
    known = [s for s in severities if rank(s)]
    return max(known, key=rank) if known else None
