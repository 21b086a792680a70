"""SQLite statements inline: a prebuilt write runs on the driver directly and means what it meant."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from service.records import sqlite_inline
from service.records.store import Store

META = sa.MetaData()
THINGS = sa.Table(
    "things",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(32), nullable=False, unique=True),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("score", sa.Float),
)
ADD = sa.insert(THINGS)
RENAME = sa.update(THINGS).where(THINGS.c.id == sa.bindparam("row_id")).values(name=sa.bindparam("new"))
FLAG = sa.update(THINGS).where(THINGS.c.name == sa.bindparam("who")).values(ok=True, score=sa.bindparam("s"))


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = Store.open(f"sqlite:///{tmp_path}/inline.db")
    async with store.write() as conn:
        await conn.run_sync(META.create_all)
    yield store
    await store.close()


async def test_a_write_seen_again_runs_on_the_driver_with_the_same_meaning(store: Store) -> None:
    results = []
    for n in range(3):
        async with store.write() as conn:
            await conn.execute(ADD, {"name": f"t{n}", "ok": False})  # the columns come from the keys
            results.append(await conn.execute(FLAG, {"who": f"t{n}", "s": 2}))
    # the first time through SQLAlchemy (it may be a statement built per call), then prebuilt
    assert [type(r) is sqlite_inline.Written for r in results] == [False, True, True]
    assert [r.rowcount for r in results] == [1, 1, 1]
    async with store.write() as conn:
        await conn.execute(ADD, {"name": "t3", "ok": True, "score": 0.5})  # other keys: its own form
        await conn.execute(ADD, {"name": "t4", "ok": True, "score": 1})
        missed = await conn.execute(RENAME, {"row_id": 999, "new": "nobody"})
        missed = await conn.execute(RENAME, {"row_id": 999, "new": "nobody"})
    assert missed.rowcount == 0
    async with store.read() as conn:
        rows = (
            await conn.execute(sa.select(THINGS.c.name, THINGS.c.ok, THINGS.c.score).order_by("id"))
        ).all()
    assert [tuple(r) for r in rows] == [
        ("t0", True, 2.0),
        ("t1", True, 2.0),
        ("t2", True, 2.0),
        ("t3", True, 0.5),
        ("t4", True, 1.0),
    ]
    assert all(type(score) is float for _, _, score in rows)  # the Float bind processor ran


async def test_a_prebuilt_write_that_breaks_a_constraint_raises_and_rolls_back_as_before(
    store: Store,
) -> None:
    async with store.write() as conn:
        await conn.execute(ADD, {"name": "a", "ok": True})
        await conn.execute(ADD, {"name": "b", "ok": True})
    for _ in range(2):  # through SQLAlchemy, then prebuilt: the same error both times
        with pytest.raises(sa.exc.IntegrityError):
            async with store.write() as conn:
                await conn.execute(RENAME, {"row_id": 2, "new": "renamed"})
                await conn.execute(RENAME, {"row_id": 1, "new": "renamed"})  # name is unique
    async with store.read() as conn:
        names = (await conn.execute(sa.select(THINGS.c.name).order_by("id"))).scalars().all()
    assert names == ["a", "b"]  # the transaction's first rename was rolled back too
