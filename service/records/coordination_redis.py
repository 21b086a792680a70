"""Coordination on Redis, shared by every replica: atomic ``SET NX PX`` and Lua scripts, keys that expire.

Keys (``prefix`` defaults to ``remediator:``)::

    {prefix}lock:{key}        string owner, PX lease       SET NX PX; Lua compare-and-extend/-delete
    {prefix}actions:{key}     sorted set, score = now       cooldown (max score) and attempts (ZCOUNT)
    {prefix}budget            sorted set, score = now       Lua: ZREMRANGEBYSCORE + ZCARD + ZADD in one script
    {prefix}acting            sorted set, score = now+ttl   storm brake; expired members trimmed on enter
    {prefix}paused            hash paused/by/since          kill switch; the one key without a TTL
    {prefix}mitigated:{key}   string now, PX keep           flap detection

Every key but ``paused`` has a TTL that only ever grows to cover its newest entry, so nothing grows forever.
Lua bodies are constants: keys and values always travel as ``KEYS``/``ARGV``, never interpolated. Scores are
the callers' ``now`` (epoch seconds); lock leases use the Redis server's clock.

The client has a ``timeout`` (1 s) on connect and on every read and no retries, so an unreachable or hung
Redis fails fast; every ``redis`` error becomes ``coordination.CoordinationUnavailable`` (fail closed). Each
script touches one key, so the layout also works on Redis Cluster. Redis without persistence forgets the kill
switch when it restarts: run it with persistence (or a replica) in production.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import uuid
from collections.abc import Iterator

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.typing import EncodableT, FieldT

from service import errors
from service.records import coordination
from service.records.coordination import check_owner, check_positive

# KEYS[1] lock; ARGV owner, lease ms
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS[1] lock; ARGV owner
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS[1] actions; ARGV now, cutoff (now - keep), member, keep ms
_RECORD = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return 1
"""

# KEYS[1] budget; ARGV now, cutoff (now - window), limit, member, window ms
_TAKE_BUDGET = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[5]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return 1
"""

# KEYS[1] acting; ARGV now, until (now + ttl), incident id, ttl ms
_ENTER = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return redis.call('ZCARD', KEYS[1])
"""


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _score(value: float) -> str:
    return repr(float(value))  # shortest round-trip form; Redis parses it as a double


def _after(cutoff: float) -> str:
    return f"({_score(cutoff)}"  # exclusive lower bound: the window is (now - window_s, +inf)


class RedisCoordination:
    """``coordination.Coordination`` on Redis (``redis.asyncio``), for several replicas."""

    def __init__(self, url: str, *, prefix: str = "remediator:", timeout: float = 1.0) -> None:
        try:
            self._client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                decode_responses=True,
            )
        except ValueError as exc:  # never echo the URL: it may hold a password
            raise errors.ConfigError("redis_url is not a valid Redis URL") from exc
        params = self._client.connection_pool.connection_kwargs
        self._where = params.get("path") or f"{params.get('host')}:{params.get('port')}/{params.get('db', 0)}"
        self._prefix = prefix
        self._closed = False
        self._extend = self._client.register_script(_EXTEND)
        self._release = self._client.register_script(_RELEASE)
        self._record = self._client.register_script(_RECORD)
        self._take_budget = self._client.register_script(_TAKE_BUDGET)
        self._enter = self._client.register_script(_ENTER)

    def __repr__(self) -> str:
        return f"RedisCoordination({self._where!r}, prefix={self._prefix!r})"

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """Run one operation; any Redis or socket error becomes ``CoordinationUnavailable``."""
        if self._closed:
            raise coordination.CoordinationUnavailable(f"coordination is closed ({what})")
        try:
            yield
        except (redis.exceptions.RedisError, OSError) as exc:
            raise coordination.CoordinationUnavailable(
                f"coordination unavailable: Redis {self._where}: {what}: {_message(exc)}"
            ) from exc

    # -- one actor per target

    async def acquire_lock(self, key: str, owner: str, *, lease_s: float) -> bool:
        check_owner(owner)
        check_positive(lease_s=lease_s)
        with self._translated("acquire_lock"):
            taken = await self._client.set(f"{self._prefix}lock:{key}", owner, nx=True, px=_ms(lease_s))
        return bool(taken)

    async def extend_lock(self, key: str, owner: str, *, lease_s: float) -> bool:
        check_owner(owner)
        check_positive(lease_s=lease_s)
        with self._translated("extend_lock"):
            done = await self._extend(keys=[f"{self._prefix}lock:{key}"], args=[owner, _ms(lease_s)])
        return bool(done)

    async def release_lock(self, key: str, owner: str) -> bool:
        check_owner(owner)
        with self._translated("release_lock"):
            done = await self._release(keys=[f"{self._prefix}lock:{key}"], args=[owner])
        return bool(done)

    # -- cooldown and attempts

    async def last_action(self, key: str) -> float | None:
        with self._translated("last_action"):
            newest = await self._client.zrange(f"{self._prefix}actions:{key}", -1, -1, withscores=True)
        return float(newest[0][1]) if newest else None

    async def record_action(self, key: str, *, now: float, keep_s: float) -> None:
        check_positive(keep_s=keep_s)
        args: list[str | int] = [_score(now), _score(now - keep_s), uuid.uuid4().hex, _ms(keep_s)]
        with self._translated("record_action"):
            await self._record(keys=[f"{self._prefix}actions:{key}"], args=args)

    async def attempts(self, key: str, *, now: float, window_s: float) -> int:
        check_positive(window_s=window_s)
        with self._translated("attempts"):
            count = await self._client.zcount(f"{self._prefix}actions:{key}", _after(now - window_s), "+inf")
        return int(count)

    # -- global budget

    async def take_budget(self, *, now: float, window_s: float, limit: int) -> bool:
        check_positive(window_s=window_s)
        args: list[str | int] = [
            _score(now),
            _score(now - window_s),
            int(limit),
            uuid.uuid4().hex,
            _ms(window_s),
        ]
        with self._translated("take_budget"):
            taken = await self._take_budget(keys=[f"{self._prefix}budget"], args=args)
        return bool(taken)

    async def budget_used(self, *, now: float, window_s: float) -> int:
        check_positive(window_s=window_s)
        with self._translated("budget_used"):
            count = await self._client.zcount(f"{self._prefix}budget", _after(now - window_s), "+inf")
        return int(count)

    # -- storm brake

    async def enter_acting(self, incident_id: str, *, now: float, ttl_s: float) -> int:
        check_positive(ttl_s=ttl_s)
        args: list[str | int] = [_score(now), _score(now + ttl_s), incident_id, _ms(ttl_s)]
        with self._translated("enter_acting"):
            count = await self._enter(keys=[f"{self._prefix}acting"], args=args)
        return int(count)

    async def leave_acting(self, incident_id: str) -> None:
        with self._translated("leave_acting"):
            await self._client.zrem(f"{self._prefix}acting", incident_id)

    async def acting(self, *, now: float) -> int:
        with self._translated("acting"):
            count = await self._client.zcount(f"{self._prefix}acting", _after(now), "+inf")
        return int(count)

    # -- kill switch

    async def set_paused(self, paused: bool, *, by: str, now: float) -> None:
        state: dict[FieldT, EncodableT] = {
            "paused": "1" if paused else "0",
            "by": by,
            "since": _score(now),
        }
        with self._translated("set_paused"):
            await self._client.hset(f"{self._prefix}paused", mapping=state)

    async def paused(self) -> tuple[bool, str | None, float | None]:
        with self._translated("paused"):
            flag, by, since = await self._client.hmget(f"{self._prefix}paused", ["paused", "by", "since"])
        if flag is None:
            return (False, None, None)
        return (flag == "1", str(by) if by is not None else None, float(since) if since is not None else None)

    # -- flap detection

    async def mark_mitigated(self, key: str, *, now: float, keep_s: float) -> None:
        check_positive(keep_s=keep_s)
        with self._translated("mark_mitigated"):
            await self._client.set(f"{self._prefix}mitigated:{key}", _score(now), px=_ms(keep_s))

    async def last_mitigated(self, key: str) -> float | None:
        with self._translated("last_mitigated"):
            value = await self._client.get(f"{self._prefix}mitigated:{key}")
        return float(value) if value is not None else None

    # -- lifecycle

    async def ping(self) -> bool:
        try:
            with self._translated("ping"):
                return bool(await self._client.ping())
        except coordination.CoordinationUnavailable:
            return False

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(redis.exceptions.RedisError, OSError):
            await self._client.aclose()


def _message(exc: BaseException) -> str:
    """The reason, e.g. "Connection refused" rather than "Error 111 connecting to … Connect call …"."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError) and not isinstance(cause, socket.gaierror) and cause.errno is not None:
        return os.strerror(cause.errno)
    if isinstance(exc, redis.exceptions.TimeoutError):
        return "timed out"
    return str(exc).strip() or type(exc).__name__
