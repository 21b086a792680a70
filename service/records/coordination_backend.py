"""Which coordination backend a replica uses, from ``REMEDIATOR_REDIS_URL``: ``connect(url)``.

Its own module because the Redis backend imports ``coordination`` (the protocol and its errors): the
choice sits above both, so that neither imports the other back. redis-py is loaded only when a Redis URL
is configured (a single replica on its defaults never loads it).
"""

from __future__ import annotations

from service import errors
from service.records import coordination


def connect(url: str) -> coordination.Coordination:
    """``""`` → ``LocalCoordination``; ``redis://``, ``rediss://``, ``unix://`` → ``RedisCoordination``.

    Does not connect yet (call ``ping``); a malformed URL is a ``ConfigError`` that never echoes the URL,
    since it may hold a password.
    """
    if not url:
        return coordination.LocalCoordination()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from service.records import coordination_redis  # loads redis-py: only when Redis is configured

        return coordination_redis.RedisCoordination(url)
    raise errors.ConfigError(
        "redis_url must be empty (in-process) or start with redis://, rediss:// or unix://"
    )
