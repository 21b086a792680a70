"""The action contract: ``async def action(ctx, params) -> Outcome``, declared with its params model.

An action declares whether it may ever be safe (applied automatically under guards) or is approval-only.
``preflight`` (optional) reads the cluster and returns the blast-radius reason to refuse, or None; it never
writes. ``run`` performs the write — or, when ``ctx.dry_run`` is set, builds the exact request it would
send and returns it without sending anything. Errors are ``service.errors`` (Transient/Permanent/Blocked).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from service.clients.hub import Clients
from service.model import incidents


class Params(BaseModel):
    """Base of every action's params model: frozen, unknown keys are an error (caught by lint)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class ActionContext:
    target: incidents.TargetRef
    clients: Clients
    timeout_s: float
    dry_run: bool = False
    #: the rule's ``quorum`` for this action: a disruptive action refuses while fewer than quorum + 1 of the
    #: target's pods are ready (``common.check_quorum``)
    quorum: int | None = None


@dataclass(frozen=True)
class Request:
    """The exact API request an action sends (or, in dry-run, would send)."""

    method: str
    path: str
    body: Any = None
    content_type: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "body": self.body,
            "content_type": self.content_type,
        }


@dataclass(frozen=True)
class Outcome:
    ok: bool
    summary: str
    requests: list[Request] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    sent: bool = True  # False in dry-run


RunFn = Callable[[ActionContext, Any], Awaitable[Outcome]]
PreflightFn = Callable[[ActionContext, Any], Awaitable[str | None]]


@dataclass(frozen=True)
class ActionDef:
    name: str
    params: type[Params]
    run: RunFn
    safe_capable: bool
    preflight: PreflightFn | None = None
    needs_target: bool = True


def action(
    name: str,
    params: type[Params],
    *,
    safe_capable: bool,
    preflight: PreflightFn | None = None,
    needs_target: bool = True,
) -> Callable[[RunFn], ActionDef]:
    """Decorator: ``@action("kube.scale", ScaleParams, safe_capable=True, preflight=check)``."""

    def wrap(fn: RunFn) -> ActionDef:
        return ActionDef(
            name=name,
            params=params,
            run=fn,
            safe_capable=safe_capable,
            preflight=preflight,
            needs_target=needs_target,
        )

    return wrap
