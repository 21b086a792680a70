"""The error hierarchy, translated at the client edge (``raise … from exc``).

RemediatorError
├── Transient(delay)      retry later: a timeout, a 5xx, a 429, a dropped connection
│   └── StoreUnavailable  the store cannot commit now (intake answers 503)
├── Permanent             retrying will not help: a 4xx, a schema error, a bad config
│   └── ConfigError       the service refuses to start with this configuration
├── Blocked(reason)       a guard said no; the reason is what a human reads
└── NeedsHuman(reason)    the service cannot or must not act; escalate
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
    """A guard refused an automatic action."""

    def __init__(self, guard: str, reason: str) -> None:
        super().__init__(f"{guard}: {reason}")
        self.guard = guard
        self.reason = reason


class NeedsHuman(RemediatorError):
    """The service must hand over to a human."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
