"""The PostgreSQL client adapter for the monitored database: short-lived asyncpg connections, read-only.

Credentials come only from settings (``REMEDIATOR_MONITOR_POSTGRES_DSN`` and the password file mounted from
a Kubernetes Secret); a probe may point the connection at another host, port or database, never another
user or password. Translation at this edge, for connecting and for every query run on the connection::

    errors.Transient
    ├── Unreachable      refused, reset, DNS failure, connect timeout (``timed_out``)
    ├── NotAccepting     the server answers but takes no new sessions: starting up, shutting down,
    │                    too many connections
    └── (plain)          connection lost mid-query, query cancelled or timed out
    errors.Permanent     authentication failed, unknown database, SQL errors, bad DSN

Never puts the password in a message; never writes (sessions are ``default_transaction_read_only``).
``asyncpg`` is imported on the first ``connect``, not with this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import urllib.parse
from collections.abc import AsyncIterator, Iterable
from typing import Any

from service import errors
from service.clients import credentials
from service.settings import Settings

_MASK = "[REDACTED]"
_APPLICATION_NAME = "remediator-probe"


class Unreachable(errors.Transient):
    """No PostgreSQL session could be opened because nothing answered (``timed_out`` for a timeout)."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class NotAccepting(errors.Transient):
    """The server is up but refuses new sessions now; ``reason`` is the server's own words."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class PostgresConnector:
    """Opens connections to the monitored PostgreSQL with the configured DSN and password."""

    def __init__(self, dsn: str, password: str | None, *, allowed_hosts: Iterable[str] = ()) -> None:
        try:
            parts = urllib.parse.urlsplit(dsn)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise errors.ConfigError("monitor_postgres_dsn is not a valid postgresql:// URL") from exc
        if parts.scheme not in ("postgresql", "postgres"):
            raise errors.ConfigError("monitor_postgres_dsn must start with postgresql://")
        self._dsn = dsn
        self._parts = parts
        self._password = password or None
        self._hosts = credentials.HostPolicy((parts.hostname or "localhost"), allowed_hosts)

    @classmethod
    def from_settings(cls, settings: Settings) -> PostgresConnector | None:
        """The connector for ``monitor_postgres_dsn`` (``None`` when unset), password read from its file."""
        if settings.monitor_postgres_dsn is None:
            return None
        password = credentials.read_secret(
            settings.monitor_postgres_password_file, "monitor_postgres_password_file"
        )
        return cls(
            settings.monitor_postgres_dsn.get_secret_value(), password, allowed_hosts=settings.monitor_hosts
        )

    def secrets(self) -> frozenset[str]:
        """Values to redact from anything shown to a human (the password, and one written in the DSN)."""
        found = {self._password, urllib.parse.unquote(self._parts.password or "")}
        return frozenset(s for s in found if s)

    def describe(
        self, *, host: str | None = None, port: int | None = None, database: str | None = None
    ) -> str:
        """``host:port/database`` that ``connect`` with these overrides reaches (no credentials)."""
        host = host or self._parts.hostname or "localhost"
        port = port or self._parts.port or 5432
        database = database or self._parts.path.lstrip("/") or self._parts.username or "postgres"
        return f"{host}:{port}/{database}"

    @contextlib.asynccontextmanager
    async def connect(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        database: str | None = None,
        timeout: float,
        read_only: bool = True,
    ) -> AsyncIterator[Any]:
        """A fresh ``asyncpg.Connection`` (closed on exit); errors inside the block are translated too.

        ``timeout`` bounds connecting and, as ``statement_timeout``, every statement of the session.
        """
        import asyncpg

        self._hosts.check(host)
        where = self.describe(host=host, port=port, database=database)
        try:
            conn = await asyncpg.connect(
                self._dsn,
                host=host,
                # asyncpg forgets the DSN's port once a host is given: pass the one describe() reports
                port=port or (self._parts.port or 5432 if host else None),
                database=database,
                password=self._password,
                timeout=timeout,
                server_settings={"application_name": _APPLICATION_NAME},
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise self._translate(exc, where, connecting=True) from exc
        try:
            # statement_timeout: a query the runner gave up on must not keep running on the server
            settings = f"SET statement_timeout = {max(1, int(timeout * 1000))}"
            if read_only:
                settings += "; SET default_transaction_read_only = on"
            await conn.execute(settings)
            yield conn
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise self._translate(exc, where, connecting=False) from exc
        finally:
            await _close(conn)

    def _translate(self, exc: BaseException, where: str, *, connecting: bool) -> errors.RemediatorError:
        import asyncpg

        detail = self._scrub(_message(exc))
        if isinstance(exc, TimeoutError):
            if connecting:
                return Unreachable(f"PostgreSQL {where} did not answer in time", timed_out=True)
            return errors.Transient(f"PostgreSQL {where}: query timed out")
        if isinstance(exc, asyncpg.PostgresError):
            return _server_error(exc, where, detail)
        if isinstance(exc, OSError):
            if connecting:
                return Unreachable(f"cannot connect to PostgreSQL {where}: {detail}")
            return errors.Transient(f"PostgreSQL {where}: connection lost: {detail}")
        if isinstance(exc, asyncpg.InterfaceError) and "closed" in detail:
            return errors.Transient(f"PostgreSQL {where}: connection lost: {detail}")
        return errors.Permanent(f"PostgreSQL {where}: {detail}")

    def _scrub(self, text: str) -> str:
        for secret in sorted(self.secrets(), key=len, reverse=True):
            text = text.replace(secret, _MASK)
        return text


def _server_error(exc: Any, where: str, detail: str) -> errors.RemediatorError:
    """An error the server reported (an ``asyncpg.PostgresError``), by its class."""
    import asyncpg

    if isinstance(exc, asyncpg.CannotConnectNowError | asyncpg.TooManyConnectionsError):
        return NotAccepting(f"PostgreSQL {where} refuses new sessions: {detail}", reason=detail)
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return errors.Permanent(f"PostgreSQL {where}: authentication failed: {detail}")
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return errors.Permanent(f"PostgreSQL {where}: {detail}")
    if isinstance(exc, asyncpg.QueryCanceledError | asyncpg.PostgresConnectionError):
        return errors.Transient(f"PostgreSQL {where}: {detail}")
    if isinstance(exc, asyncpg.exceptions.OperatorInterventionError):  # admin/crash shutdown
        return errors.Transient(f"PostgreSQL {where}: {detail}")
    return errors.Permanent(f"PostgreSQL {where}: {exc.sqlstate} {detail}")


def _message(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return exc.strerror or str(exc)
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno)  # "Connection refused", not asyncio's "Connect call failed (…)"
    return str(exc).strip() or type(exc).__name__


async def _close(conn: Any) -> None:
    import asyncpg

    task = asyncio.current_task()
    if task is not None and task.cancelling():
        conn.terminate()  # being cancelled: do not wait on the server
        return
    try:
        await conn.close(timeout=1.0)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
        conn.terminate()
