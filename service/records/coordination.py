"""Coordination: the state guards share — locks, cooldowns, attempts, budget, storm brake, kill switch, flaps.

One ``Coordination`` protocol, two implementations that pass one contract test suite:

- ``LocalCoordination``: in-process dicts, for a single replica (``REMEDIATOR_REDIS_URL`` empty);
- ``coordination_redis.RedisCoordination``: Redis (atomic ``SET NX PX``, Lua scripts), for several replicas.

``coordination_backend.connect(url)`` picks one. Time comes from the callers' ``now`` arguments (epoch
seconds), never from a clock in here — except lock leases, which are measured by the backend
(``time.monotonic()`` locally, the Redis server's clock remotely) so that a lease cannot be stretched by a
caller's clock.

Semantics shared by both (the contract tests hold them to it):

- windows are half-open ``(now - window_s, +inf)``: an entry exactly ``window_s`` old is outside, and an
  entry a little in the future (another replica's clock runs ahead) counts, so a guard never under-counts;
- ``keep_s`` / ``ttl_s`` say how long a value must be kept at least; it may be forgotten after that (Redis
  keys expire; local entries are swept on later writes), so callers compare times themselves;
- pass one ``keep_s`` per key (the longest window that reads it): a write trims entries older than its own.

Errors (fail closed: the caller refuses automatic actions and escalates with "coordination unavailable")::

    errors.Transient
    └── CoordinationUnavailable   the backend did not answer (refused, reset, timeout), or it is closed

``ping()`` is the one method that answers ``False`` instead of raising. Bad arguments (a lease of 0 s, an
empty owner) are programming errors: ``ValueError``. This module never acts on the outside world.
"""

from __future__ import annotations

import time
from typing import Protocol

from service import errors


class CoordinationUnavailable(errors.Transient):
    """The coordination backend could not answer; no guard can be trusted, so nothing automatic may run."""


class Coordination(Protocol):
    """Shared guard state; every method but ``ping`` and ``close`` raises ``CoordinationUnavailable``."""

    async def acquire_lock(self, key: str, owner: str, *, lease_s: float) -> bool:
        """Take the lock for ``lease_s`` s; False if anyone holds it, its owner too (use ``extend_lock``)."""
        ...

    async def extend_lock(self, key: str, owner: str, *, lease_s: float) -> bool:
        """Reset the lease to ``lease_s`` s from now if ``owner`` still holds the lock."""
        ...

    async def release_lock(self, key: str, owner: str) -> bool:
        """Release the lock if ``owner`` holds it; False if it expired or someone else holds it."""
        ...

    async def last_action(self, key: str) -> float | None:
        """The latest ``now`` passed to ``record_action(key)`` (cooldown), ``None`` if none is kept."""
        ...

    async def record_action(self, key: str, *, now: float, keep_s: float) -> None:
        """Record that the action ``key`` (target + action) ran at ``now``; kept at least ``keep_s`` s."""
        ...

    async def attempts(self, key: str, *, now: float, window_s: float) -> int:
        """How many ``record_action(key)`` calls fall within the last ``window_s`` s."""
        ...

    async def take_budget(self, *, now: float, window_s: float, limit: int) -> bool:
        """Atomically take one of ``limit`` slots of the sliding ``window_s`` window; False if none left."""
        ...

    async def budget_used(self, *, now: float, window_s: float) -> int:
        """How many budget slots were taken within the last ``window_s`` s."""
        ...

    async def enter_acting(self, incident_id: str, *, now: float, ttl_s: float) -> int:
        """Register/refresh an incident as acting until ``now + ttl_s``; how many act now, it included."""
        ...

    async def leave_acting(self, incident_id: str) -> None:
        """The incident stopped acting (unknown ids are ignored)."""
        ...

    async def acting(self, *, now: float) -> int:
        """How many incidents act at ``now`` (entries past their ttl do not count)."""
        ...

    async def set_paused(self, paused: bool, *, by: str, now: float) -> None:
        """Flip the kill switch, recording who and when (a resume is recorded too); never expires."""
        ...

    async def paused(self) -> tuple[bool, str | None, float | None]:
        """``(paused, by, since)``: the last ``set_paused``, or ``(False, None, None)`` if never set."""
        ...

    async def mark_mitigated(self, key: str, *, now: float, keep_s: float) -> None:
        """Record that rule + target ``key`` was mitigated at ``now`` (last write wins); kept ``keep_s`` s."""
        ...

    async def last_mitigated(self, key: str) -> float | None:
        """When rule + target ``key`` was last mitigated, ``None`` if not kept."""
        ...

    async def ping(self) -> bool:
        """True if the backend answers now; False (never an exception) otherwise — for health checks."""
        ...

    async def close(self) -> None:
        """Release connections; idempotent. Every later call raises ``CoordinationUnavailable``."""
        ...


def check_positive(**values: float) -> None:
    """``ValueError`` for a duration that is not > 0 (shared by both implementations)."""
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")


def check_owner(owner: str) -> None:
    if not owner:
        raise ValueError("owner must not be empty")


class LocalCoordination:
    """In-process coordination for one replica.

    Every method runs without an ``await`` inside, so each is atomic on the event loop: no lock is needed.
    Entries past their ``keep_s``/``ttl_s`` are swept on later writes of the same kind (using those writes'
    ``now``), so nothing grows forever. Lock leases use ``time.monotonic()``.
    """

    def __init__(self) -> None:
        self._closed = False
        self._locks: dict[str, tuple[str, float]] = {}  # key -> (owner, monotonic deadline)
        self._actions: dict[str, tuple[list[float], float]] = {}  # key -> (times, keep until)
        self._budget: list[float] = []
        self._acting: dict[str, float] = {}  # incident id -> acting until
        self._paused: tuple[bool, str | None, float | None] = (False, None, None)
        self._mitigated: dict[str, tuple[float, float]] = {}  # key -> (at, keep until)

    def _check_open(self) -> None:
        if self._closed:
            raise CoordinationUnavailable("coordination is closed")

    # -- one actor per target

    def _holder(self, key: str) -> str | None:
        held = self._locks.get(key)
        if held is None:
            return None
        if held[1] <= time.monotonic():
            del self._locks[key]
            return None
        return held[0]

    async def acquire_lock(self, key: str, owner: str, *, lease_s: float) -> bool:
        self._check_open()
        check_owner(owner)
        check_positive(lease_s=lease_s)
        now = time.monotonic()
        self._locks = {k: held for k, held in self._locks.items() if held[1] > now}
        if key in self._locks:
            return False
        self._locks[key] = (owner, now + lease_s)
        return True

    async def extend_lock(self, key: str, owner: str, *, lease_s: float) -> bool:
        self._check_open()
        check_owner(owner)
        check_positive(lease_s=lease_s)
        if self._holder(key) != owner:
            return False
        self._locks[key] = (owner, time.monotonic() + lease_s)
        return True

    async def release_lock(self, key: str, owner: str) -> bool:
        self._check_open()
        check_owner(owner)
        if self._holder(key) != owner:
            return False
        del self._locks[key]
        return True

    # -- cooldown and attempts

    async def last_action(self, key: str) -> float | None:
        self._check_open()
        kept = self._actions.get(key)
        return max(kept[0]) if kept and kept[0] else None

    async def record_action(self, key: str, *, now: float, keep_s: float) -> None:
        self._check_open()
        check_positive(keep_s=keep_s)
        self._actions = {k: kept for k, kept in self._actions.items() if kept[1] > now}
        times, until = self._actions.get(key, ([], now))
        times = [t for t in times if t > now - keep_s]
        times.append(now)
        self._actions[key] = (times, max(until, now + keep_s))

    async def attempts(self, key: str, *, now: float, window_s: float) -> int:
        self._check_open()
        check_positive(window_s=window_s)
        kept = self._actions.get(key)
        return sum(1 for t in kept[0] if t > now - window_s) if kept else 0

    # -- global budget

    async def take_budget(self, *, now: float, window_s: float, limit: int) -> bool:
        self._check_open()
        check_positive(window_s=window_s)
        self._budget = [t for t in self._budget if t > now - window_s]
        if len(self._budget) >= limit:
            return False
        self._budget.append(now)
        return True

    async def budget_used(self, *, now: float, window_s: float) -> int:
        self._check_open()
        check_positive(window_s=window_s)
        return sum(1 for t in self._budget if t > now - window_s)

    # -- storm brake

    async def enter_acting(self, incident_id: str, *, now: float, ttl_s: float) -> int:
        self._check_open()
        check_positive(ttl_s=ttl_s)
        self._acting = {i: until for i, until in self._acting.items() if until > now}
        self._acting[incident_id] = now + ttl_s
        return len(self._acting)

    async def leave_acting(self, incident_id: str) -> None:
        self._check_open()
        self._acting.pop(incident_id, None)

    async def acting(self, *, now: float) -> int:
        self._check_open()
        return sum(1 for until in self._acting.values() if until > now)

    # -- kill switch

    async def set_paused(self, paused: bool, *, by: str, now: float) -> None:
        self._check_open()
        self._paused = (paused, by, now)

    async def paused(self) -> tuple[bool, str | None, float | None]:
        self._check_open()
        return self._paused

    # -- flap detection

    async def mark_mitigated(self, key: str, *, now: float, keep_s: float) -> None:
        self._check_open()
        check_positive(keep_s=keep_s)
        self._mitigated = {k: kept for k, kept in self._mitigated.items() if kept[1] > now}
        self._mitigated[key] = (now, now + keep_s)

    async def last_mitigated(self, key: str) -> float | None:
        self._check_open()
        kept = self._mitigated.get(key)
        return kept[0] if kept else None

    # -- lifecycle

    async def ping(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        self._closed = True
