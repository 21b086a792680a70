"""SQLite WAL checkpoints run off the event loop: under intake load no loop callback — one that commits or
checkpoints, or any other — takes 20 ms outside the garbage collector and the loop thread's waits for a CPU
(asyncio's slow-callback warnings in debug mode); the WAL keeps starting over instead of growing; no commit ever checkpoints by itself;
a WAL that a long reader let grow is truncated once the reader lets go."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import sqlite3
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from service import keys
from service.app import create_app
from service.records import checkpoints, schema
from service.records.store import Store
from tests.conftest import TOKEN, eventually
from tests.support.inbox_rows import inbox_row
from tests.support.run_queue import RunQueueWatch

SLOW_S = 0.02  # the bound on an event-loop stall
#: A commit's bound is the issue's: a commit of a full batch right after the checkpoint's hold (the intake rows
#: that waited for it) took 12-13 ms on a loaded machine, an automatic checkpoint inside a commit 15-17 ms on a
#: quiet disk; that no commit checkpoints is proven directly by
#: ``test_no_commit_checkpoints_the_wal_the_checkpoint_task_does``.
COMMIT_S = SLOW_S
LOAD_S = 5.0
#: The load goes on past ``LOAD_S`` until the WAL started over three times, for at most this long (a
#: machine shared with other jobs can leave the process without a CPU for seconds).
LOAD_MAX_S = 20.0
POSTERS = 32
ALERTS_PER_POST = 10
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
#: Callbacks that commit or checkpoint: the intake group commit, the checkpoint task (whose hold ends by
#: committing the intake rows that waited), the dispatcher's and the workers' store transactions.
COMMITTING = ("SqliteWriter", "sqlite-checkpoints", "Checkpointer", "Dispatcher", "Worker", "Timers")


def payload(n: int) -> str:
    """One Alertmanager POST of alerts no rule matches: intake stores them, nothing else runs."""
    alerts = [
        {
            "status": "firing",
            "labels": {"alertname": "WalLoad", "instance": f"web-{n}-{k}", "pad": "x" * 400},
            "annotations": {"summary": "load " * 40},
            "startsAt": "2026-11-27T10:01:44.97964Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example/graph",
            "fingerprint": f"{n:08x}{k:08x}",
        }
        for k in range(ALERTS_PER_POST)
    ]
    return json.dumps(
        {
            "receiver": "r",
            "status": "firing",
            "alerts": alerts,
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://am:9093",
            "version": "4",
            "groupKey": "{}:{}",
            "truncatedAlerts": 0,
        }
    )


def wal_header(path: Path) -> tuple[int, int]:
    """(file size, salt-2): SQLite draws a new salt-2 each time it starts the WAL over (WAL header bytes
    20–23, https://www.sqlite.org/fileformat.html#wal_file_format)."""
    try:
        with path.open("rb") as wal:
            head = wal.read(24)
            size = os.fstat(wal.fileno()).st_size
    except FileNotFoundError:
        return 0, 0
    return size, struct.unpack(">I", head[20:24])[0] if len(head) == 24 else 0


def merged(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping (start, end) spans joined, so that time in two of them is not counted twice."""
    out: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


@dataclass
class Stall:
    took_s: float
    gc_s: float  # time the garbage collector ran, or the process waited for a CPU, inside it
    what: str

    @property
    def own_s(self) -> float:
        return self.took_s - self.gc_s


class LoopWatch(logging.Handler):
    """asyncio's slow-callback warnings ("Executing <handle> took 0.031 seconds"), the garbage collector's
    pauses (``gc.callbacks``) and the loop thread's waits for a CPU (``RunQueueWatch``), to tell a stall
    of our code from a collection or a machine busy with other jobs."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[float, float, str]] = []
        self.pauses: list[tuple[float, float]] = []
        self._gc_start = 0.0
        self.run_queue = RunQueueWatch()

    def close(self) -> None:
        self.run_queue.close()
        super().close()

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("Executing") and isinstance(record.args, tuple):
            what, took = record.args
            self.records.append((record.created, float(took), str(what)))

    def on_gc(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.time()
        else:
            self.pauses.append((self._gc_start, time.time()))

    def stalls(self) -> list[Stall]:
        found = []
        for end, took, what in self.records:
            start = end - took
            spans = merged(self.pauses + self.run_queue.spans)
            in_gc = sum(max(0.0, min(end, b) - max(start, a)) for a, b in spans)
            found.append(Stall(took, in_gc, what))
        return found


@pytest.fixture
def watch() -> Iterator[LoopWatch]:
    watch = LoopWatch()
    logger = logging.getLogger("asyncio")
    logger.addHandler(watch)
    gc.callbacks.append(watch.on_gc)
    try:
        yield watch
    finally:
        gc.callbacks.remove(watch.on_gc)
        logger.removeHandler(watch)
        watch.close()


@dataclass
class Load:
    answers: dict[int, int] = field(default_factory=dict)
    max_wal: int = 0
    restarts: int = 0


async def intake_load(url: str, wal: Path, *, seconds: float) -> Load:
    """``POSTERS`` senders post alerts back to back for ``seconds``, then on until the WAL started over
    three times (``LOAD_MAX_S`` at most); the WAL is sampled every 20 ms."""
    load = Load()
    count = 0
    salt: int | None = None
    start = time.monotonic()

    def going() -> bool:
        elapsed = time.monotonic() - start
        return elapsed < seconds or (load.restarts < 3 and elapsed < LOAD_MAX_S)

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal count
        while going():
            count += 1
            async with session.post(url, data=payload(count), headers=HEADERS) as response:
                load.answers[response.status] = load.answers.get(response.status, 0) + 1

    async def sampler() -> None:
        nonlocal salt
        while going():
            size, new_salt = wal_header(wal)
            load.max_wal = max(load.max_wal, size)
            load.restarts += salt is not None and new_salt != salt
            salt = new_salt
            await asyncio.sleep(0.02)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(sampler(), *(sender(session) for _ in range(POSTERS)))
    return load


async def test_intake_load_never_stalls_the_loop_on_a_commit_or_a_checkpoint(
    make_settings: Any, tmp_path: Path, watch: LoopWatch
) -> None:
    app = create_app(make_settings(wal_checkpoint_s=0.25, log_level="warning"))
    async with TestServer(app) as server:
        store = app[keys.STORE]
        assert store.checkpointer is not None
        loop = asyncio.get_running_loop()
        loop.slow_callback_duration = COMMIT_S
        loop.set_debug(True)
        try:
            load = await intake_load(
                str(server.make_url("/v1/alerts")), tmp_path / "remediator.db-wal", seconds=LOAD_S
            )
        finally:
            loop.set_debug(False)
        async with store.read() as conn:
            autocheckpoint = await conn.scalar(sa.text("PRAGMA wal_autocheckpoint"))
            stored = await conn.scalar(sa.select(sa.func.count()).select_from(schema.inbox))
        interval = store.checkpointer.interval_s

    assert interval == 0.25, "REMEDIATOR_WAL_CHECKPOINT_S is honoured"
    sent = sum(load.answers.values())
    assert load.answers == {200: sent} and sent > 100, load.answers
    assert stored == sent * ALERTS_PER_POST
    assert autocheckpoint == 0
    # checkpoints happen while the load lasts: the WAL starts over again and again instead of holding
    # everything written (~1 KB an alert), and stays far smaller than what went through it
    assert load.restarts >= 3, (load.restarts, interval)
    written = (tmp_path / "remediator.db").stat().st_size
    assert load.max_wal < written / 2, (load.max_wal, written)

    stalls = watch.stalls()
    ours = [s for s in stalls if any(name in s.what for name in COMMITTING) and s.own_s >= COMMIT_S]
    assert not ours, f"commits or checkpoints held the loop {COMMIT_S * 1000:.0f} ms or more: " + "; ".join(
        f"{s.what[:160]} took {s.took_s * 1000:.0f} ms ({s.gc_s * 1000:.0f} ms of it in gc or paused)"
        for s in ours
    )
    others = [s for s in stalls if s.own_s >= SLOW_S]
    assert not others, "callbacks over 20 ms outside the garbage collector: " + "; ".join(
        f"{s.what[:160]} took {s.took_s * 1000:.0f} ms ({s.gc_s * 1000:.0f} ms of it in gc or paused)"
        for s in others
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'wal.db'}")
    await store.migrate()
    store.start_writer(checkpoint_s=3600)  # after its first run, checkpoints only when the test runs one
    assert store.checkpointer is not None
    await eventually(lambda: store.checkpointer is not None and store.checkpointer.restarts == 1)
    yield store
    await store.close()


def rows(first: int, count: int) -> list[dict[str, Any]]:
    return [inbox_row(f"fp-{n}", payload="p" * 4000) for n in range(first, first + count)]  # a page a row


async def test_no_commit_checkpoints_the_wal_the_checkpoint_task_does(store: Store, tmp_path: Path) -> None:
    writer, checkpointer = store.writer, store.checkpointer
    assert writer is not None and checkpointer is not None
    database, wal = tmp_path / "wal.db", tmp_path / "wal.db-wal"
    before = database.stat().st_size
    for batch in range(4):  # 2,000 pages: twice what would trigger SQLite's automatic checkpoint
        await writer.insert_inbox(rows(batch * 500, 500))
    async with store.write() as conn:  # the store's own transactions on the loop: no checkpoint either
        await conn.execute(sa.update(schema.inbox).values(state="done"))
    size, salt = wal_header(wal)
    assert size > 2000 * 4096
    assert database.stat().st_size == before, "a commit copied pages into the database file"

    result = await checkpointer.run_once()
    assert result is not None and result.complete
    assert database.stat().st_size > before + 1000 * 4096, "the checkpoint moved the rows into the database"
    restarted = wal_header(wal)[1]
    assert restarted != salt, "the checkpoint task started the WAL over (and fsynced its header)"
    await writer.insert_inbox(rows(2000, 1))
    assert wal_header(wal)[1] == restarted, "so no commit on the loop does"
    assert await checkpointer.run_once() is not None
    assert await checkpointer.run_once() is None, "nothing written since: nothing to do"
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM inbox WHERE state = 'done'").fetchone() == (2000,)


async def test_a_long_reader_lets_the_wal_grow_and_it_is_truncated_once_it_lets_go(
    store: Store, tmp_path: Path
) -> None:
    writer, checkpointer = store.writer, store.checkpointer
    assert writer is not None and checkpointer is not None
    checkpointer.truncate_over_bytes = 1024 * 1024
    wal = tmp_path / "wal.db-wal"
    reader = sqlite3.connect(tmp_path / "wal.db", isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM inbox").fetchone()  # holds this snapshot until COMMIT
        with capture_logs() as logs:
            for batch in range(3):
                await writer.insert_inbox(rows(batch * 500, 500))
                result = await checkpointer.run_once()
                assert result is not None and not result.complete
        assert [e["event"] for e in logs] == ["store.wal_pinned"], "logged once while pinned"
        assert wal_header(wal)[0] > 1500 * 4096
        reader.execute("COMMIT")
    finally:
        reader.close()
    with capture_logs() as logs:
        result = await checkpointer.run_once()
    assert result is not None and result.complete
    assert [e["event"] for e in logs] == ["store.wal_truncated"]
    assert wal_header(wal)[0] < 64 * 1024, "the WAL file gave its space back"
    assert await writer.insert_inbox(rows(1500, 1)) == [True]


async def test_the_copying_runs_in_a_thread_of_low_priority_that_leaves_the_loop_its_own(
    store: Store,
) -> None:
    """The PASSIVE copying runs at nice ``BACKGROUND_NICE`` (``top`` shows it): where the service has one
    core, the loop keeps ~90 % of it while a checkpoint copies; the loop thread keeps its own priority."""
    writer, checkpointer = store.writer, store.checkpointer
    assert writer is not None and checkpointer is not None
    await writer.insert_inbox(rows(0, 50))
    assert await checkpointer.run_once() is not None
    copying = [t for t in threading.enumerate() if t.name.startswith("sqlite-checkpoint")]
    assert len(copying) == 1, [t.name for t in threading.enumerate()]
    assert copying[0].native_id is not None
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert os.getpriority(os.PRIO_PROCESS, copying[0].native_id) == max(own, checkpoints.BACKGROUND_NICE)
