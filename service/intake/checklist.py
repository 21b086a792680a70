"""An incident's post-incident checklist, and finding the item a human names.

Humans tick items with ``POST /v1/incidents/{id}/checklist/{item}`` (``intake.humans.tick``, approver token):
``item`` is the item's id (``root-cause-identified``) or its number in the runbook's order (1–12). An unknown
incident or item is 404; an item ticked before is 409 naming who ticked it and when (the first tick stands).
Ticking is allowed in every state, resolved included: most of the checklist is done after the incident.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.matching.loader import RuleSet
from service.model import rules
from service.records import incidents as incident_rows


def items_of(incident: dict[str, Any], ruleset: RuleSet) -> list[rules.ChecklistItem]:
    """The incident's checklist: its rule's (when loaded), else its bundle's, else the default."""
    rule = ruleset.by_name(incident["rule"])
    if rule is not None:
        return rule.rule.checklist.items()
    stored = incident_rows.load_bundle(incident["bundle"])
    if stored is not None and stored.checklist:
        return [rules.ChecklistItem(id=e.id, band=e.band, text=e.text) for e in stored.checklist]
    return rules.DEFAULT_CHECKLIST.items()


def find(items: Sequence[rules.ChecklistItem], wanted: str) -> rules.ChecklistItem | None:
    """The item named by id, or by its 1-based number."""
    for item in items:
        if item.id == wanted:
            return item
    if wanted.isdigit() and 1 <= int(wanted) <= len(items):
        return items[int(wanted) - 1]
    return None
