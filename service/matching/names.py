"""Validation of rendered Kubernetes names: kind, DNS-1123 labels and subdomains, label selectors.

Owns the rules a rendered target must obey before anything may act on it (DESIGN §3.1: an invalid
target still opens an incident, but nothing automatic runs). Each check returns ``None`` when the value
is valid, else the sentence a human reads. Regexes are matched with ``fullmatch`` so that a trailing
newline never slips through. Policy (e.g. refusing ``kube-system``) is a guard elsewhere, not here.
``Name`` and ``Selector`` are the same checks as param types, for the params models of probes and actions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_KIND = re.compile(r"[A-Z][A-Za-z0-9]*")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_SHOW_MAX = 80


def show(value: str) -> str:
    """``repr`` of a value for an error message, cut to a readable length."""
    if len(value) <= _SHOW_MAX:
        return repr(value)
    return f"{value[:_SHOW_MAX]!r}… ({len(value)} characters)"


def check_target_field(field: str, value: str) -> str | None:
    """Check one rendered field of a target: ``kind``, ``namespace``, ``name`` or ``selector``."""
    if field == "kind":
        return check_kind(value)
    if field == "namespace":
        return check_dns1123_label(value)
    if field == "name":
        return check_dns1123_subdomain(value)
    if field == "selector":
        return check_selector(value)
    raise ValueError(f"a target has no field {field!r}")


def check_kind(value: str) -> str | None:
    if _KIND.fullmatch(value) is None:
        return f"{show(value)} is not a valid kind (an upper-case letter, then letters and digits)"
    return None


def check_dns1123_label(value: str) -> str | None:
    if len(value) > 63:
        return f"{show(value)} is not a valid DNS-1123 label (longer than 63 characters)"
    if _DNS1123_LABEL.fullmatch(value) is None:
        return (
            f"{show(value)} is not a valid DNS-1123 label"
            " (lower-case letters, digits and '-', starting and ending with a letter or digit)"
        )
    return None


def check_dns1123_subdomain(value: str) -> str | None:
    if len(value) > 253:
        return f"{show(value)} is not a valid DNS-1123 subdomain (longer than 253 characters)"
    if _DNS1123_SUBDOMAIN.fullmatch(value) is None:
        return (
            f"{show(value)} is not a valid DNS-1123 subdomain"
            " (dot-separated lower-case letters, digits and '-', each part starting and ending with a letter"
            " or digit)"
        )
    return None


def check_label_key(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or check_dns1123_subdomain(prefix) is not None):
        return f"label key {show(key)} has an invalid prefix (must be a DNS-1123 subdomain)"
    if len(name) > 63 or _LABEL_NAME.fullmatch(name) is None:
        return (
            f"label key {show(key)} is not a valid label name (at most 63 letters, digits, '-', '_', '.',"
            " starting and ending with a letter or digit)"
        )
    return None


def check_label_value(value: str) -> str | None:
    if len(value) > 63 or _LABEL_VALUE.fullmatch(value) is None:
        return (
            f"label value {show(value)} is not valid (at most 63 letters, digits, '-', '_', '.',"
            " starting and ending with a letter or digit)"
        )
    return None


def check_selector(value: str) -> str | None:
    """An equality-based label selector: ``k=v``, ``k==v`` or ``k!=v``, comma-separated, never empty."""
    if not value.strip():
        return "an empty selector would select everything"
    for requirement in value.split(","):
        problem = _check_requirement(requirement.strip(" "), value)
        if problem is not None:
            return problem
    return None


def _check_requirement(requirement: str, selector: str) -> str | None:
    if not requirement:
        return f"selector {show(selector)} has an empty requirement"
    for op in ("!=", "==", "="):
        key, found, val = requirement.partition(op)
        if found:
            return check_label_key(key.strip(" ")) or check_label_value(val.strip(" "))
    return f"selector requirement {show(requirement)} is not key=value, key==value or key!=value"


def _param(check: Callable[[str], str | None]) -> AfterValidator:
    def validate(value: str) -> str:
        problem = check(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    return AfterValidator(validate)


#: A label selector param of a probe or action (``app=x,tier!=db``), validated like a target selector.
Selector = Annotated[str, _param(check_selector)]
#: A DNS-1123 name param (a PVC, a container, a pod), validated before it reaches a Kubernetes path.
Name = Annotated[str, _param(check_dns1123_subdomain)]
