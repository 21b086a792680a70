"""The error hierarchy, translated at the client edge (``raise … from exc``).

RemediatorError
├── Transient(delay)      retry later: a timeout, a 5xx, a 429, a dropped connection
│   └── StoreUnavailable  the store cannot commit now (intake answers 503)
├── Permanent             retrying will not help: a 4xx, a schema error, a bad config
│   └── ConfigError       the service refuses to start with this configuration
├── Blocked(guard, reason) a guard or an action's preflight said no; the reason is what a human reads
└── LostClaim             this worker's inbox claim expired and was taken over: roll back, drop the row

Handing an incident to a human is not an exception: it is what a plan or a failed action leads to (the
pipeline escalates), so there is no ``NeedsHuman`` error.
"""

from __future__ import annotations


class RemediatorError(Exception):
    """Base of every error the service raises on purpose."""


class Transient(RemediatorError):
    """A failure that may pass; ``delay`` is the suggested wait in seconds (e.g. Retry-After)."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class StoreUnavailable(Transient):
    """The store could not commit (locked, gone, read-only, disk full)."""


class Permanent(RemediatorError):
    """A failure that the same request will meet again."""


class ConfigError(Permanent):
    """The configuration is invalid or insecure; the message says which setting and why."""


class Blocked(RemediatorError):
    """A guard or an action's preflight refused the action; ``guard`` is its code (``preflight``, ``pdb``)."""

    def __init__(self, guard: str, reason: str) -> None:
        super().__init__(f"{guard}: {reason}")
        self.guard = guard
        self.reason = reason


class LostClaim(RemediatorError):
    """The worker no longer holds the inbox row it works on (its lease expired and another worker claimed
    it): the transaction that raised it rolls back, and the new owner does the work instead."""
