"""Selecting the rule of an alert: the first matching rule in load (file-name) order.

Owns the per-alert lookup. Only the candidates of the alert's ``alertname`` (rules with that top-level
``alertname="X"`` matcher, plus the rules without one, in load order) are tested, so one alert against
1,000 rules costs a dict lookup and a few matcher calls. Never does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from service.matching import compiled


def select_rule(ruleset: compiled.RuleSet, labels: Mapping[str, str]) -> compiled.CompiledRule | None:
    """The first rule (in load order) whose matchers all hold for ``labels``, or None."""
    for rule in ruleset.candidates(labels.get("alertname", "")):
        if rule.matches(labels):
            return rule
    return None


def matching_rules(ruleset: compiled.RuleSet, labels: Mapping[str, str]) -> list[compiled.CompiledRule]:
    """Every rule that matches ``labels``, in load order (for lint and test tooling)."""
    return [rule for rule in ruleset.candidates(labels.get("alertname", "")) if rule.matches(labels)]
