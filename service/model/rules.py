"""Symptom rules (rules/*.yaml) as frozen data: Rule, Matcher, Target, ProbeSpec, ActionSpec.

These models hold what a rule file says, validated for shape. Compiled forms (regexes, CEL programs,
Jinja templates) live in ``service.matching``, which builds them once when rules load.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_RULE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_ID = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def parse_duration(value: object) -> timedelta:
    """Parse a Prometheus-style duration (``90s``, ``2m``, ``1h30m``) or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("duration must not be negative")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError("duration must be a string such as '90s', '2m' or '1h'")
    match = _DURATION.match(value.strip())
    if not value.strip() or match is None:
        raise ValueError(f"invalid duration {value!r}; use e.g. '90s', '2m', '1h30m'")
    hours, minutes, seconds, millis = (int(g) if g else 0 for g in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds, milliseconds=millis)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Target(_Frozen):
    """Templates for the Kubernetes object a rule acts on; rendered from each alert."""

    kind: str = "Deployment"
    namespace: str = "default"
    name: str
    selector: str | None = None


class ProbeSpec(_Frozen):
    """One diagnostic probe of a rule; its finding is reached in CEL as ``findings.<id>``."""

    id: str
    probe: str
    params: dict[str, Any] = Field(default_factory=dict, alias="with")
    timeout: Duration | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"probe id {value!r} must be a lower-case identifier (a-z, 0-9, _)")
        return value


class Attempts(_Frozen):
    count: int = Field(ge=1, le=100)
    per: Duration


class Verify(_Frozen):
    """Re-run the named probe until it reports ok or ``within`` expires."""

    probe: str
    within: Duration = timedelta(seconds=90)


class ActionSpec(_Frozen):
    """One remediation of a rule, tried in order."""

    action: str
    safety: Literal["safe", "unsafe"]
    when: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, alias="with")
    cooldown: Duration = timedelta(minutes=10)
    max_attempts: Attempts = Attempts(count=2, per=timedelta(hours=1))
    verify: Verify | None = None
    reason: str | None = None


class Suggestion(_Frozen):
    """A runbook command for humans; ``hazard`` marks a command nothing should automate."""

    command: str
    hazard: str | None = None


def _suggestion(value: object) -> object:
    return {"command": value} if isinstance(value, str) else value


class Rule(_Frozen):
    """One symptom: which alerts it takes, what to check, what to try, what to tell a human."""

    name: str
    runbook: str
    mttr_target: Duration
    severity: Literal["critical", "high", "warning", "info"] = "warning"
    match: list[Any] = Field(min_length=1)
    target: Target
    diagnose: list[ProbeSpec] = Field(default_factory=list)
    remediate: list[ActionSpec] = Field(default_factory=list)
    suggest: list[Annotated[Suggestion, BeforeValidator(_suggestion)]] = Field(default_factory=list)
    checklist: list[str] = Field(default_factory=list)
    owner: str | None = None
    reviewed: date | None = None
    description: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _RULE_NAME.match(value):
            raise ValueError(f"rule name {value!r} must be lower-case letters, digits and '-' (max 63)")
        return value
