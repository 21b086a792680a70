"""SQLite WAL checkpoints off the event loop: ``Checkpointer``.

Every connection of the store turns SQLite's automatic checkpoints off (``PRAGMA wal_autocheckpoint=0``):
SQLite would otherwise run one inside whichever commit pushed the WAL over 1,000 pages — on the event loop,
since statements run inline there — copying pages and fsyncing the database file. Instead a task runs
``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval_s`` in a thread of its own, on a connection of its
own. PASSIVE takes no lock a writer or a reader waits for, and the sqlite3 module releases the GIL while
SQLite works, so the loop never waits for the copying or the fsync. The thread runs at a low scheduling
priority (nice ``BACKGROUND_NICE``): where the service has one core (a CPU limit of 1, or the benchmark's
pinning), copying 13,000 frames a second at half the SQLite intake rate took 50-100 ms of that core each
tick, and the loop got half of it meanwhile. The PASSIVE runs again while the last pass found more than
``SMALL_FRAMES`` new frames (at most ``CATCH_UP_PASSES``), so little is left for the hold below.

Two more fsyncs would still land on the loop, and the task takes both:

- SQLite starts the WAL over from its beginning only when a write begins after a checkpoint that copied
  every frame, and that write fsyncs the new WAL header (with ``synchronous=NORMAL`` too). So right after a
  complete checkpoint the task itself writes once (``PRAGMA user_version`` set to its own value: page 1,
  nothing else) — the restart and its fsync happen in the thread, and the frame it leaves in the WAL means
  no commit on the loop ever finds a fully copied WAL to restart.
- Under steady intake commits land while the PASSIVE copies, and the restart needs every frame copied and
  no reader still on a snapshot from before the copy finished. So the rest of the work runs while the task
  holds ``hold()``: the store's asyncio write lock, which write transactions and the intake group commit
  wait for in the loop (never in the driver's busy handler). Under it, one call in the thread runs
  ``PRAGMA wal_checkpoint(RESTART)`` — it copies what arrived since the PASSIVE, fsyncs the database file
  and waits, in SQLite's busy handler in the thread (at most ``RESTART_BUSY_MS``), until every reader reads
  the database file only — then the restarting write. One thread hop: each hop waits for the GIL the loop
  holds (up to ``sys.getswitchinterval()``, 5 ms), and the former PASSIVE-write-sleep-retry sequence under
  the hold took 15-40 ms at 13,000 alerts/s, where intake waited; with one hop after the catch-up passes
  it takes 2-13 ms. Intake waits meanwhile; the loop does not.
- When a reader outlasted that wait, later ticks take the hold only once a PASSIVE copied everything:
  else the task would wait for that reader every tick with intake stopped.

The WAL then holds about one interval of writes. A tick with nothing written since the task's own write does
nothing (no fsync on an idle service).

A reader that keeps an old snapshot stops any checkpoint from finishing: the WAL grows until it lets go
(logged once, ``store.wal_pinned``), and the file keeps its largest size (SQLite overwrites it, it does not
shrink it). When it is over ``truncate_over_bytes``, the checkpoint under the hold is
``wal_checkpoint(TRUNCATE)`` instead of RESTART (the same wait): it also shrinks the file to zero bytes.

Never writes rows: the only statements are the checkpoint pragmas, ``wal_autocheckpoint=0`` and
``user_version`` set to the value it already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from typing import Literal, NamedTuple, TypeVar

import structlog

log = structlog.get_logger(__name__)
T = TypeVar("T")

#: A WAL file larger than this is truncated once every frame is in the database file (64 MiB).
TRUNCATE_OVER_BYTES = 64 * 1024 * 1024
#: How long the RESTART checkpoint under the hold may wait for readers of an older snapshot (their reads
#: last a millisecond or two); past it the restart is left to the next tick.
RESTART_BUSY_MS = 50
#: The checkpoint thread's niceness: the loop gets ~90 % of a core both want (CFS weights 1024 : 110). At
#: 19 (weight 15) a saturated loop starved it: the WAL grew for as long as the load lasted, and the
#: process' peak RSS with it (163 MB against 103 MB in the 100-alerts/POST benchmark).
BACKGROUND_NICE = 10
#: The background PASSIVE runs again while the last pass found more than this many new frames (1 MiB at
#: 4 KiB pages), at most this many passes: the hold then copies a few milliseconds' worth.
SMALL_FRAMES = 256
CATCH_UP_PASSES = 4
_PRAGMAS = {
    "PASSIVE": "PRAGMA wal_checkpoint(PASSIVE)",
    "RESTART": "PRAGMA wal_checkpoint(RESTART)",
    "TRUNCATE": "PRAGMA wal_checkpoint(TRUNCATE)",
}


class Result(NamedTuple):
    """One ``PRAGMA wal_checkpoint`` row: ``busy`` 1 when it could not finish, frames in the WAL, frames
    copied into the database file (-1, -1 when the database is not in WAL mode)."""

    busy: int
    wal_frames: int
    copied_frames: int

    @property
    def complete(self) -> bool:
        return self.busy == 0 and self.wal_frames == self.copied_frames


def no_autocheckpoint(conn: sqlite3.Connection) -> None:
    """Turn SQLite's automatic checkpoints off on this connection (they would run inside its commits)."""
    conn.execute("PRAGMA wal_autocheckpoint=0")


class Checkpointer:
    """Checkpoints one SQLite database file's WAL every ``interval_s`` (see the module docstring).

    ``hold()`` is an async context manager during which no write transaction of this process is open."""

    def __init__(
        self,
        path: str,
        *,
        interval_s: float,
        hold: Callable[[], AbstractAsyncContextManager[None]],
        truncate_over_bytes: int = TRUNCATE_OVER_BYTES,
    ) -> None:
        if not interval_s > 0:
            raise ValueError("the checkpoint interval must be > 0")
        self.path = path
        self.interval_s = interval_s
        self.truncate_over_bytes = truncate_over_bytes
        self.restarts = 0  # times the task started the WAL over (for tests and debugging)
        self._hold = hold
        self._conn: sqlite3.Connection | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pinned = False
        #: the last RESTART under the hold gave up on a reader: hold again only once a PASSIVE copies all
        self._outlasted = False
        self._executor: ThreadPoolExecutor | None = None
        self._own_write: tuple[int, int] | None = None  # the WAL's (mtime, size) after the task's write

    def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sqlite-checkpoints")

    async def stop(self) -> None:
        """Stop once the checkpoint under way, if any, has finished (it runs in a thread: not cancellable)."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            await task

    def wal_bytes(self) -> int:
        stamp = self._wal_stamp()
        return stamp[1] if stamp else 0

    async def run_once(self) -> Result | None:
        """Checkpoint and start the WAL over (see the module docstring). None when nothing was written
        since the last run, or when SQLite refused (logged; the next tick tries again)."""
        if self._own_write is not None and self._wal_stamp() == self._own_write:
            return None
        try:
            result = await self._catch_up()
            if result.complete or not self._outlasted:
                size = self.wal_bytes()
                truncate = size > self.truncate_over_bytes
                async with self._hold():  # intake waits: the default thread, at the loop's own priority
                    result, restarted = await asyncio.to_thread(self._restart, truncate)
                self._outlasted = not result.complete
                self._own_write = self._wal_stamp()
                self.restarts += restarted
                if truncate and result.complete:
                    log.info("store.wal_truncated", wal_bytes=size)
        except sqlite3.Error as exc:  # locked by another process (a migration), disk error
            log.warning("store.checkpoint_failed", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            return None
        size = self.wal_bytes()
        if result.complete:
            self._pinned = False
        elif size > self.truncate_over_bytes and not self._pinned:  # a reader holds an old snapshot
            log.warning("store.wal_pinned", wal_bytes=size, frames_left=_left(result))
            self._pinned = True
        return result

    async def _run(self) -> None:
        try:
            await self.run_once()  # at once: a WAL left empty would be restarted by the first commit
            while not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.interval_s)
                    return
                await self.run_once()
        finally:
            conn, self._conn = self._conn, None
            if conn is not None:
                await asyncio.to_thread(conn.close)
            executor, self._executor = self._executor, None
            if executor is not None:
                executor.shutdown(wait=False)

    async def _catch_up(self) -> Result:
        """PASSIVE checkpoints in the background thread until the last one had little left to copy (or
        ``CATCH_UP_PASSES``): what arrives meanwhile is what the hold must copy with intake stopped."""
        result = await self._in_background(self._checkpoint, "PASSIVE")
        for _ in range(CATCH_UP_PASSES - 1):
            if not result.complete:
                break
            before = result.wal_frames
            result = await self._in_background(self._checkpoint, "PASSIVE")
            if result.wal_frames - before <= SMALL_FRAMES:
                break
        return result

    async def _in_background(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn`` in the task's own thread, at a low scheduling priority (``BACKGROUND_NICE``)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, "sqlite-checkpoint", initializer=_low_priority)
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))

    def _connection(self) -> sqlite3.Connection:
        """Used from worker threads, one call at a time (the task awaits each), so never shared."""
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
            no_autocheckpoint(self._conn)
        return self._conn

    def _checkpoint(self, mode: Literal["PASSIVE", "RESTART", "TRUNCATE"]) -> Result:
        return Result(*self._connection().execute(_PRAGMAS[mode]).fetchone())

    def _restart(self, truncate: bool) -> tuple[Result, bool]:
        """Under the hold, in the thread: copy the rest and wait out older readers (RESTART, or TRUNCATE for
        an oversized WAL), then write once so that the WAL starts over (and its header is fsynced) here.
        The result, and True when the WAL started over (its checkpoint sequence number moved)."""
        conn = self._connection()
        conn.execute(f"PRAGMA busy_timeout={RESTART_BUSY_MS}")
        try:
            result = self._checkpoint("TRUNCATE" if truncate else "RESTART")
        finally:
            conn.execute("PRAGMA busy_timeout=0")
        if not result.complete:
            return result, False
        before = self._wal_sequence()
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            conn.execute(f"PRAGMA user_version={version}")  # an int read back from SQLite: no user data
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result, self._wal_sequence() != before

    def _wal_sequence(self) -> bytes:
        """The WAL header's checkpoint sequence number and salt-1 (bytes 12–19): both change on a restart
        (https://www.sqlite.org/fileformat.html#wal_file_format)."""
        try:
            with open(self.path + "-wal", "rb") as wal:
                return wal.read(20)[12:20]
        except FileNotFoundError:
            return b""

    def _wal_stamp(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.path + "-wal")
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size)


def _low_priority() -> None:
    """``BACKGROUND_NICE`` for the calling thread only (Linux: a thread id is a process id to setpriority)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


def _left(result: Result) -> int:
    return max(result.wal_frames - result.copied_frames, 0)
