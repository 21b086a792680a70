"""SQLite WAL checkpoints off the event loop: ``Checkpointer``.

Every connection of the store turns SQLite's automatic checkpoints off (``PRAGMA wal_autocheckpoint=0``):
SQLite would otherwise run one inside whichever commit pushed the WAL over 1,000 pages — on the event loop,
since statements run inline there — copying pages and fsyncing the database file. Instead a task runs
``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval_s`` in a worker thread (``asyncio.to_thread``) on a
connection of its own. PASSIVE takes no lock a writer or a reader waits for, and the sqlite3 module releases
the GIL while SQLite works, so the loop never waits for the copying or the fsync.

Two more fsyncs would still land on the loop, and the task takes both:

- SQLite starts the WAL over from its beginning only when a write begins after a checkpoint that copied
  every frame, and that write fsyncs the new WAL header (with ``synchronous=NORMAL`` too). So right after a
  complete checkpoint the task itself writes once (``PRAGMA user_version`` set to its own value: page 1,
  nothing else) — the restart and its fsync happen in the thread, and the frame it leaves in the WAL means
  no commit on the loop ever finds a fully copied WAL to restart.
- Under steady intake a commit lands during almost every checkpoint, so PASSIVE alone would never finish and
  the WAL would grow as long as the load lasts. So the rest of the work — a second PASSIVE for what arrived
  during the first, then the restarting write — runs while the task holds ``hold()``: the store's asyncio
  write lock, which write transactions and the intake group commit wait for in the loop (never in the
  driver's busy handler). That takes a few milliseconds of fsync: intake waits meanwhile, the loop does not.
- SQLite skips the restart while a reader still holds a snapshot from before the checkpoint finished (a
  read of the loop, a millisecond long): the write then only appends a frame, and readers that begin after
  it take a WAL snapshot again, so writing again at once fails the same way. The task sees it (the WAL
  header's checkpoint sequence did not move), waits ``RESTART_WAIT_S``, copies its own frame, waits again
  (readers that begin after a complete copy read the database file only) and writes — still under the
  hold, up to ``RESTART_TRIES`` times; the second try succeeded every time in the test. Without that, under
  steady reads the WAL grew by every write of the load (16 MB in 5 s), complete checkpoints notwithstanding.

The WAL then holds about one interval of writes. A tick with nothing written since the task's own write does
nothing (no fsync on an idle service).

A reader that keeps an old snapshot stops any checkpoint from finishing: the WAL grows until it lets go
(logged once, ``store.wal_pinned``), and the file keeps its largest size (SQLite overwrites it, it does not
shrink it). When it is over ``truncate_over_bytes`` and a checkpoint copied every frame, a
``wal_checkpoint(TRUNCATE)`` with a busy timeout of 0 shrinks it to zero bytes if no reader uses it, else
gives up at once and a later tick tries again.

Never writes rows: the only statements are the checkpoint pragmas, ``wal_autocheckpoint=0`` and
``user_version`` set to the value it already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Literal, NamedTuple

import structlog

log = structlog.get_logger(__name__)

#: A WAL file larger than this is truncated once every frame is in the database file (64 MiB).
TRUNCATE_OVER_BYTES = 64 * 1024 * 1024
#: SQLite starts the WAL over only when no reader still uses a snapshot that predates the complete
#: checkpoint; under intake load one often does for a millisecond or two, so the restarting write is tried
#: again (under the hold: intake waits, the loop does not) up to this many times, this far apart.
RESTART_TRIES = 10
RESTART_WAIT_S = 0.002
_PRAGMAS = {
    "PASSIVE": "PRAGMA wal_checkpoint(PASSIVE)",
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
            result = await asyncio.to_thread(self._checkpoint, "PASSIVE")
            async with self._hold():
                if not result.complete:
                    result = await asyncio.to_thread(self._checkpoint, "PASSIVE")
                if result.complete:
                    await self._start_over()
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

    async def _start_over(self) -> None:
        """Under the hold, every frame copied: shrink an oversized WAL, then write once so that the WAL
        restarts (and its header is fsynced) in this thread, not in a commit on the loop."""
        size = self.wal_bytes()
        truncate = size > self.truncate_over_bytes
        if truncate and (await asyncio.to_thread(self._checkpoint, "TRUNCATE")).busy == 0:
            log.info("store.wal_truncated", wal_bytes=size)
        for attempt in range(RESTART_TRIES):
            if attempt:  # the last try appended a frame: copy it, then let reads that predate the copy end
                await asyncio.sleep(RESTART_WAIT_S)
                if not (await asyncio.to_thread(self._checkpoint, "PASSIVE")).complete:
                    continue
                await asyncio.sleep(RESTART_WAIT_S)
            if await asyncio.to_thread(self._rewrite_header_page):
                self.restarts += 1
                break
        self._own_write = self._wal_stamp()

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

    def _connection(self) -> sqlite3.Connection:
        """Used from worker threads, one call at a time (the task awaits each), so never shared."""
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
            no_autocheckpoint(self._conn)
        return self._conn

    def _checkpoint(self, mode: Literal["PASSIVE", "TRUNCATE"]) -> Result:
        return Result(*self._connection().execute(_PRAGMAS[mode]).fetchone())

    def _rewrite_header_page(self) -> bool:
        """Write page 1 unchanged; True when the WAL started over (its checkpoint sequence number moved)."""
        before = self._wal_sequence()
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            conn.execute(f"PRAGMA user_version={version}")  # an int read back from SQLite: no user data
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return self._wal_sequence() != before

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


def _left(result: Result) -> int:
    return max(result.wal_frames - result.copied_frames, 0)
