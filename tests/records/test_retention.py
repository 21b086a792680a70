"""Retention: resolved incidents older than the window go with every row of theirs, done inbox rows and
finished deliveries too — never an open incident or what it needs; SQLite gives the space back; intake goes
on (no 503) while a prune runs; the background task prunes on its own and reports it in ``/metrics``."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from service import keys
from service.app import create_app
from service.records import retention, schema
from service.records.store import Store
from tests.conftest import TOKEN, eventually, load_fixture

DAY = 86400.0
NOW = time.time()
OLD = NOW - 120 * DAY  # well outside the default 90-day window
CUTOFF = retention.cutoff_for(90, NOW)
FILLER = json.dumps({"text": "x" * 400})  # payloads of a realistic size: deleting them frees pages


def incident(
    iid: str, *, opened: float, resolved: float | None, caused_by: str | None = None
) -> dict[str, Any]:
    return {
        "id": iid,
        "rule": "high-error-rate",
        "open_key": None if resolved is not None else f"high-error-rate/{iid}",
        "target_kind": "Deployment",
        "target_namespace": "shop",
        "target_name": f"svc-{iid.lower()}",
        "target_valid": True,
        "state": "resolved" if resolved is not None else "escalated",
        "severity": "critical",
        "runbook": "High error rate",
        "mttr_target_s": 300.0,
        "escalation_level": 1,
        "opened_at": opened,
        "resolved_at": resolved,
        "updated_at": resolved or opened,
        "bundle": FILLER,
        "caused_by": caused_by,
    }


def children(iid: str, at: float, *, room_archived: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Every row that names the incident: one or more in each table, as the service writes them."""
    return {
        "incident_alerts": [
            {
                "incident_id": iid,
                "fingerprint": f"fp-{iid}",
                "starts_at": "2026-01-01T00:00:00Z",
                "status": "firing",
                "payload": FILLER,
                "attached_at": at,
            }
        ],
        "findings": [
            {
                "incident_id": iid,
                "round": 1,
                "phase": "diagnosis",
                "probe_id": p,
                "probe": "kube.pods",
                "status": "ok",
                "summary": "fine",
                "facts": "{}",
                "evidence": FILLER,
                "duration_ms": 3.0,
                "at": at,
            }
            for p in ("pods", "events")
        ],
        "timeline": [
            {"incident_id": iid, "at": at, "kind": k, "message": k, "data": "{}"}
            for k in ("incident.opened", "incident.escalated", "incident.resolved")
        ],
        "actions": [
            {
                "id": f"A{iid}",
                "incident_id": iid,
                "idx": 0,
                "action": "kube.rollout_restart",
                "safety": "safe",
                "status": "succeeded",
                "params": "{}",
                "dry_run": False,
                "requested_at": at,
            }
        ],
        "outbox": [
            {
                "delivery_id": f"d-{iid}-{e}",
                "dedup_key": f"{iid}:log:{e}",
                "incident_id": iid,
                "channel": "log",
                "event": e,
                "payload": FILLER,
                "state": "delivered",
                "attempts": 1,
                "next_attempt_at": at,
                "created_at": at,
                "delivered_at": at,
            }
            for e in ("escalated", "resolved")
        ],
        "comms": [
            {
                "incident_id": iid,
                "kind": "statuspage",
                "step": "resolved",
                "text": FILLER,
                "state": "draft",
                "created_at": at,
                "updated_at": at,
            }
        ],
        "war_rooms": [
            {
                "incident_id": iid,
                "name": f"inc-{iid.lower()}",
                "channel_id": "C1",
                "created_at": at,
                "archived_at": at if room_archived else None,
            }
        ],
        "slack_messages": [{"incident_id": iid, "channel": "C1", "ts": "1.0", "updated_at": at}],
        "inbox": [inbox_row(f"fp-{iid}", at, incident_id=iid)],
    }


def inbox_row(fingerprint: str, at: float, *, incident_id: str | None, state: str = "done") -> dict[str, Any]:
    stored = {**load_fixture("am-0.25-firing.json")["alerts"][0], "fingerprint": fingerprint}
    stored["annotations"] = {"description": "x" * 400}
    return {
        "fingerprint": fingerprint,
        "starts_at": "2026-01-01T00:00:00Z",
        "status": "firing",
        "alertname": "HighErrorRate",
        "payload": json.dumps(stored),
        "receiver": "remediator",
        "group_key": "{}",
        "truncated": 0,
        "received_at": at,
        "state": state,
        "attempts": 1,
        "incident_id": incident_id,
        "processed_at": at if state == "done" else None,
    }


TABLES = {t.name: t for t in schema.metadata.sorted_tables}


async def seed(store: Store, *, old_resolved: int, open_: int, prefix: str = "") -> dict[str, list[str]]:
    """``old_resolved`` incidents resolved 120 days ago and ``open_`` open ones (half opened 120 days ago),
    each with its rows; plus the cases retention must think about. Returns the ids by kind."""
    ids: dict[str, list[str]] = {
        "old": [f"{prefix}R{i:06d}" for i in range(old_resolved)],
        "open": [f"{prefix}O{i:04d}" for i in range(open_)],
        # an open incident caused by an old resolved one, itself caused by another: both stay (no dangling link)
        "needed": [f"{prefix}CAUSE1", f"{prefix}CAUSE2"],
        "recent": [f"{prefix}RECENT"],  # resolved yesterday: inside the window
        "room": [f"{prefix}ROOM"],  # old, but its war room was never archived: it stays until it is
    }
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}

    def add(
        iid: str, *, opened: float, resolved: float | None, caused_by: str | None = None, **kw: Any
    ) -> None:
        rows["incidents"].append(incident(iid, opened=opened, resolved=resolved, caused_by=caused_by))
        for name, more in children(iid, resolved or opened, **kw).items():
            rows[name].extend(more)

    for iid in ids["old"]:
        add(iid, opened=OLD - 3600, resolved=OLD)
    for n, iid in enumerate(ids["open"]):
        add(
            iid,
            opened=OLD if n % 2 else NOW - 600,
            resolved=None,
            caused_by=ids["needed"][0] if n == 0 else None,
        )
    add(ids["needed"][0], opened=OLD - 3600, resolved=OLD, caused_by=ids["needed"][1])
    add(ids["needed"][1], opened=OLD - 3600, resolved=OLD)
    add(ids["recent"][0], opened=NOW - 2 * DAY, resolved=NOW - DAY)
    add(ids["room"][0], opened=OLD - 3600, resolved=OLD, room_archived=False)
    # rows of no incident: an unmatched alert (goes), a pending one (stays), finished and waiting deliveries
    rows["inbox"].append(inbox_row(f"{prefix}unmatched", OLD, incident_id=None))
    rows["inbox"].append(inbox_row(f"{prefix}waiting", OLD, incident_id=None, state="pending"))
    for state in ("delivered", "failed", "pending"):
        rows["outbox"].append(
            {
                "delivery_id": f"{prefix}d-{state}",
                "dedup_key": f"{prefix}storm:log:{state}",
                "incident_id": "storm",
                "channel": "log",
                "event": "storm",
                "payload": FILLER,
                "state": state,
                "attempts": 1,
                "next_attempt_at": OLD,
                "created_at": OLD,
                "delivered_at": OLD if state == "delivered" else None,
            }
        )
    for name, batch in rows.items():
        for start in range(0, len(batch), 5000):
            async with store.write() as conn:
                await conn.execute(sa.insert(TABLES[name]), batch[start : start + 5000])
    return ids


async def per_table(store: Store, ids: list[str] | None = None) -> dict[str, int]:
    """Rows in each table (of the incidents ``ids`` only, when given)."""
    counts = {}
    async with store.read() as conn:
        for name in retention.TABLES:
            table = TABLES[name]
            query = sa.select(sa.func.count()).select_from(table)
            if ids is not None:
                column = table.c.id if name == "incidents" else table.c.incident_id
                query = query.where(column.in_(ids))
            counts[name] = int(await conn.scalar(query))
    return counts


def expected_gone(old: int) -> dict[str, int]:
    """What pruning ``old`` plain old resolved incidents removes, plus the old rows of no incident."""
    per_incident = {
        "incidents": 1,
        "incident_alerts": 1,
        "findings": 2,
        "timeline": 3,
        "actions": 1,
        "outbox": 2,
        "comms": 1,
        "war_rooms": 1,
        "slack_messages": 1,
        "inbox": 1,
    }
    gone = {name: n * old for name, n in per_incident.items()}
    gone["outbox"] += 2  # the delivered and the failed delivery of no incident (the pending one stays)
    gone["inbox"] += 1  # the unmatched alert (the pending one stays)
    return gone


def disk_size(path: Path) -> int:
    """The file and its WAL, after a checkpoint has moved the WAL into the file."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(os.path.getsize(p) for p in (path, Path(f"{path}-wal")) if p.exists())


async def test_prune_removes_exactly_the_old_resolved_incidents_and_gives_space_back(tmp_path: Path) -> None:
    path = tmp_path / "remediator.db"
    store = Store.open(f"sqlite:///{path}")
    try:
        await store.migrate()
        ids = await seed(store, old_resolved=10_000, open_=100)
        staying = [i for kind in ("open", "needed", "recent", "room") for i in ids[kind]]
        kept_before = await per_table(store, staying)
        before = await per_table(store)
        size_before = disk_size(path)

        dry = await retention.prune(store, cutoff=CUTOFF, batch=500, dry_run=True)
        assert await per_table(store) == before  # a dry run deletes nothing
        assert dry.deleted == expected_gone(10_000)

        started = time.perf_counter()
        done = await retention.prune(store, cutoff=CUTOFF, batch=500)
        freed = await retention.reclaim(store)
        elapsed = time.perf_counter() - started
        print(f"pruned {done.total} rows in {elapsed:.2f} s, {freed} pages freed")

        assert done.deleted == dry.deleted  # the dry run told the truth
        assert await per_table(store, ids["old"]) == dict.fromkeys(retention.TABLES, 0)
        assert await per_table(store, staying) == kept_before  # open incidents and what they need: untouched
        after = await per_table(store)
        assert after == {name: before[name] - dry.deleted[name] for name in before}
        async with store.read() as conn:
            left = set((await conn.execute(sa.select(schema.inbox.c.fingerprint))).scalars())
        assert "waiting" in left and "unmatched" not in left
        assert freed > 0
        assert disk_size(path) < size_before * 0.5  # the file shrank, not just its free list

        again = await retention.prune(store, cutoff=CUTOFF, batch=500)
        assert again.total == 0
    finally:
        await store.close()


async def test_prune_on_postgresql_and_one_replica_at_a_time(postgres_url: str) -> None:
    store = Store.open(postgres_url)
    try:
        await store.migrate()
        ids = await seed(store, old_resolved=1_000, open_=100)
        staying = [i for kind in ("open", "needed", "recent", "room") for i in ids[kind]]
        kept_before = await per_table(store, staying)
        dry = await retention.prune(store, cutoff=CUTOFF, batch=300, dry_run=True)
        assert dry.deleted == expected_gone(1_000)

        other = Store.open(postgres_url)  # another replica, in the middle of its round
        try:
            async with other.write() as conn:
                assert await conn.scalar(sa.text(f"SELECT pg_try_advisory_xact_lock({retention.LOCK_KEY})"))
                skipped = await retention.prune(store, cutoff=CUTOFF, batch=300)
        finally:
            await other.close()
        assert skipped.skipped and skipped.total == 0
        assert (await per_table(store, ids["old"]))["incidents"] == 1_000

        done = await retention.prune(store, cutoff=CUTOFF, batch=300)
        assert done.deleted == dry.deleted
        assert await per_table(store, ids["old"]) == dict.fromkeys(retention.TABLES, 0)
        assert await per_table(store, staying) == kept_before
        assert await retention.store_size(store, None) > 1_000_000
    finally:
        await store.close()


def alert(fingerprint: str) -> str:
    payload = load_fixture("am-0.25-firing.json")
    payload["alerts"][0]["fingerprint"] = fingerprint
    payload["alerts"][0]["labels"]["alertname"] = "RetentionNoRule"  # stored, matched by no rule
    return json.dumps(payload)


async def test_intake_goes_on_while_a_prune_runs(aiohttp_client: Any, make_settings: Any) -> None:
    settings = make_settings(retention_days=0)  # the app's task stays idle: this test prunes itself
    app = create_app(settings)
    client = await aiohttp_client(app)
    store, metrics = app[keys.STORE], app[keys.METRICS]
    await seed(store, old_resolved=10_000, open_=100)
    path = retention.sqlite_path(settings.store_url)
    task = retention.Retention(store, metrics, days=90, interval_s=3600, batch=200, path=path)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    statuses: list[int] = []
    answered_during_prune = 0
    pruning = True

    async def post(n: int) -> None:
        nonlocal answered_during_prune
        for i in range(20):
            response = await client.post("/v1/alerts", data=alert(f"live-{n}-{i}"), headers=headers)
            statuses.append(response.status)
            answered_during_prune += pruning

    async def prune() -> retention.Report | None:
        nonlocal pruning
        try:
            return await task.run_once()
        finally:
            pruning = False

    report, *_ = await asyncio.gather(prune(), *(post(n) for n in range(15)))
    assert report is not None and report.deleted["incidents"] == 10_000
    assert statuses == [200] * 300  # no 503: intake's transactions went between the prune's
    assert answered_during_prune > 0
    async with store.read() as conn:
        stored = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(schema.inbox)
            .where(schema.inbox.c.fingerprint.like("live-%"))
        )
    assert stored == 300
    families = {
        f.name: f for f in text_string_to_metric_families(await (await client.get("/metrics")).text())
    }
    deleted = {
        s.labels["table"]: s.value
        for s in families["remediator_retention_deleted_rows"].samples
        if s.name.endswith("_total")
    }
    assert deleted["incidents"] == 10_000 and deleted["timeline"] == 30_000
    assert families["remediator_store_size_bytes"].samples[0].value > 1_000_000


async def test_the_background_task_prunes_at_start_and_switches_an_old_file(
    aiohttp_client: Any, make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings()
    path = tmp_path / "remediator.db"
    store = Store.open(settings.store_url)
    await store.migrate()
    ids = await seed(store, old_resolved=50, open_=5)
    await store.close()
    with sqlite3.connect(path) as conn:  # a database from before incremental auto-vacuum
        conn.executescript("PRAGMA auto_vacuum=NONE; VACUUM;")
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (0,)

    client = await aiohttp_client(create_app(settings))

    async def pruned() -> dict[str, float]:
        text = await (await client.get("/metrics")).text()
        return {
            f"{s.name}:{s.labels.get('table', '')}": s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name in {"remediator_retention_deleted_rows_total", "remediator_store_size_bytes"}
        }

    seen = await eventually(lambda: _when(pruned(), "remediator_retention_deleted_rows_total:incidents"))
    assert seen["remediator_retention_deleted_rows_total:incidents"] == 50
    assert seen["remediator_store_size_bytes:"] > 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # switched once, at start
    listed = await (
        await client.get("/v1/incidents?limit=1000", headers={"Authorization": f"Bearer {TOKEN}"})
    ).json()
    shown = {i["id"] for i in listed["incidents"]}
    assert not shown & set(ids["old"])  # the old resolved incidents are gone from the API
    assert {i for kind in ("open", "needed", "recent", "room") for i in ids[kind]} <= shown


async def _when(counts: Any, key: str) -> dict[str, float] | None:
    found: dict[str, float] = await counts
    return found if found.get(key) else None
