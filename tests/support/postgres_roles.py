"""Shared PostgreSQL test setup: a SCRAM-authenticated ``monitor`` role (pg_hba.conf edit and reload)
and a streaming standby made with pg_basebackup."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import asyncpg

from tests.support import procs


def monitor_dsn(server: procs.Postgres) -> str:
    """The DSN of the ``monitor`` role on ``server`` (no password: the connector adds it)."""
    return f"postgresql://monitor@{procs.HOST}:{server.port}/postgres"


async def add_monitor_role(
    server: procs.Postgres,
    password: str,
    *,
    in_roles: str = "pg_monitor",
    extra_sql: Iterable[str] = (),
) -> None:
    """Role ``monitor`` (member of ``in_roles``) that must log in with a SCRAM password; everyone else stays
    trusted. ``extra_sql`` runs as the superuser before the configuration is reloaded."""
    hba = server.data_dir / "pg_hba.conf"
    hba.write_text(f"host all monitor 127.0.0.1/32 scram-sha-256\n{hba.read_text()}")
    conn = await asyncpg.connect(server.dsn)
    try:
        await conn.execute(f"CREATE ROLE monitor LOGIN PASSWORD '{password}' IN ROLE {in_roles}")
        for statement in extra_sql:
            await conn.execute(statement)
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()
    for _ in range(250):  # the postmaster applies the reload asynchronously
        try:
            probe = await asyncpg.connect(monitor_dsn(server))
        except (asyncpg.PostgresError, asyncpg.InterfaceError):
            return
        await probe.close()
        await asyncio.sleep(0.02)
    raise AssertionError("pg_hba.conf reload did not take effect")


class Standby(procs.Postgres):
    """A hot standby: its postmaster.pid says ``standby`` (not ``ready``) once it accepts connections."""

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pid_file = self.data_dir / "postmaster.pid"
        while True:
            with contextlib.suppress(OSError):
                lines = pid_file.read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() in ("ready", "standby"):
                    break
            if not self.running or time.monotonic() >= deadline:
                raise TimeoutError(f"standby not ready: {self.log_tail(20)}")
            time.sleep(0.02)
        assert self.port is not None
        procs.wait_for_port(procs.HOST, self.port, max(0.1, deadline - time.monotonic()), proc=self)


@contextlib.contextmanager
def start_standby(server: procs.Postgres, workdir: Path) -> Iterator[Standby]:
    """A streaming standby of ``server`` made with pg_basebackup in ``workdir`` (created here), running."""
    workdir.mkdir()
    replica = Standby(workdir=workdir)
    argv = [str(procs.PG_BIN / "pg_basebackup"), "-h", procs.HOST, "-p", str(server.port), "-U", "postgres"]
    argv += ["-D", str(replica.data_dir), "-R", "-c", "fast", "--no-sync"]
    if os.geteuid() == 0:  # postgres refuses to run as root; the backup must belong to its user
        for directory in (workdir, *workdir.parents):
            os.chmod(directory, directory.stat().st_mode | 0o001)  # pytest makes 0700 directories
        subprocess.run(["chown", "postgres:postgres", str(workdir)], check=True)
        argv = ["runuser", "-u", "postgres", "--", *argv]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    replica.port = procs.free_port()
    with replica.start():
        yield replica
