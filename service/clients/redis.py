"""The Redis client adapter for the monitored Redis: one short-lived ``redis.asyncio.Redis`` per use.

Credentials come only from settings (``REMEDIATOR_MONITOR_REDIS_URL`` and the password file mounted from a
Kubernetes Secret); a probe may point the client at another host, port or db, never another user or
password. No retries here (a probe wants the first answer). Translation at this edge, for every command
run inside ``connect``::

    errors.Transient
    ├── Unreachable      refused, reset, DNS failure, timeout (``timed_out``)
    └── Loading          the server is loading its dataset and answers nothing else yet
    errors.Permanent     authentication failed (WRONGPASS, NOAUTH), command errors, bad URL

Never puts the password in a message; runs no command that writes (callers' duty, reviewed per probe).
The ``redis`` library is imported on the first ``connect``, not with this module.
"""

from __future__ import annotations

import contextlib
import os
import socket
import urllib.parse
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

from service import errors
from service.clients import credentials
from service.settings import Settings

if TYPE_CHECKING:
    import redis.asyncio
    import redis.exceptions

_MASK = "[REDACTED]"


class Unreachable(errors.Transient):
    """Redis did not answer: connection refused/reset or a timeout (``timed_out``)."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class Loading(errors.Transient):
    """Redis is up but still loading its dataset into memory (``-LOADING``)."""


class RedisConnector:
    """Opens clients to the monitored Redis with the configured URL and password."""

    def __init__(self, url: str, password: str | None, *, allowed_hosts: Iterable[str] = ()) -> None:
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
            db = int(parts.path.strip("/") or 0)
        except ValueError as exc:
            raise errors.ConfigError("monitor_redis_url is not a valid redis:// URL") from exc
        if parts.scheme not in ("redis", "rediss"):
            raise errors.ConfigError("monitor_redis_url must start with redis:// or rediss://")
        self._host = parts.hostname or "localhost"
        self._port = port or 6379
        self._db = db
        self._ssl = parts.scheme == "rediss"
        self._username = urllib.parse.unquote(parts.username) if parts.username else None
        self._url_password = urllib.parse.unquote(parts.password or "") or None
        self._password = password or self._url_password
        self._hosts = credentials.HostPolicy(self._host, allowed_hosts)

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisConnector | None:
        """The connector for ``monitor_redis_url`` (``None`` when unset), password read from its file."""
        if settings.monitor_redis_url is None:
            return None
        password = credentials.read_secret(
            settings.monitor_redis_password_file, "monitor_redis_password_file"
        )
        return cls(
            settings.monitor_redis_url.get_secret_value(), password, allowed_hosts=settings.monitor_hosts
        )

    def secrets(self) -> frozenset[str]:
        """Values to redact from anything shown to a human (the password, and one written in the URL)."""
        return frozenset(s for s in (self._password, self._url_password) if s)

    def describe(self, *, host: str | None = None, port: int | None = None, db: int | None = None) -> str:
        """``host:port/db`` that ``connect`` with these overrides reaches (no credentials)."""
        return f"{host or self._host}:{port or self._port}/{self._db if db is None else db}"

    @contextlib.asynccontextmanager
    async def connect(
        self, *, host: str | None = None, port: int | None = None, db: int | None = None, timeout: float
    ) -> AsyncIterator[redis.asyncio.Redis]:
        """A client (responses decoded to ``str``), closed on exit; command errors are translated."""
        import redis.asyncio
        import redis.exceptions
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self._hosts.check(host)
        where = self.describe(host=host, port=port, db=db)
        client = redis.asyncio.Redis(
            host=host or self._host,
            port=port or self._port,
            db=self._db if db is None else db,
            username=self._username,
            password=self._password,
            ssl=self._ssl,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        try:
            yield client
        except redis.exceptions.RedisError as exc:
            raise self._translate(exc, where, timeout) from exc
        finally:
            await client.aclose()

    def _translate(
        self, exc: redis.exceptions.RedisError, where: str, timeout: float
    ) -> errors.RemediatorError:
        import redis.exceptions

        detail = self._scrub(_message(exc))
        if isinstance(exc, redis.exceptions.AuthenticationError | redis.exceptions.AuthorizationError):
            if self._password is None:
                return errors.Permanent(
                    f"Redis {where} requires a password and none is configured (monitor_redis_password_file)"
                )
            return errors.Permanent(f"Redis {where}: authentication failed: {detail}")
        if isinstance(exc, redis.exceptions.BusyLoadingError):
            return Loading(f"Redis {where} is loading its dataset: {detail}")
        if isinstance(exc, redis.exceptions.TimeoutError):
            return Unreachable(f"Redis {where} did not answer within {timeout:g}s", timed_out=True)
        if isinstance(exc, redis.exceptions.ConnectionError):
            return Unreachable(f"cannot reach Redis {where}: {detail}")
        if isinstance(exc, redis.exceptions.NoPermissionError):
            return errors.Permanent(f"Redis {where}: the configured user may not run this: {detail}")
        return errors.Permanent(f"Redis {where}: {detail}")

    def _scrub(self, text: str) -> str:
        for secret in sorted(self.secrets(), key=len, reverse=True):
            text = text.replace(secret, _MASK)
        return text


def _message(exc: redis.exceptions.RedisError) -> str:
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError) and not isinstance(cause, socket.gaierror) and cause.errno is not None:
        return os.strerror(
            cause.errno
        )  # "Connection refused", not "Error 111 connecting to … Connect call …"
    return str(exc).strip() or type(exc).__name__
