"""One contract for both coordinations (in-process and a real Redis 7): locks with leases, cooldowns, attempts,
the global budget, the storm brake, the kill switch and flap marks — and, for Redis, failing closed and fast
when the server is down or hung, and coming back when it returns."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from service import errors
from service.records import coordination, coordination_backend, coordination_redis
from service.records.coordination import Coordination, CoordinationUnavailable
from tests.support import procs

T = 1_800_000_000.0  # the callers' clock (epoch seconds); only lock leases run on real time
PREFIX = "test-remediator:"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[procs.Redis]:
    with procs.start_redis(tmp_path_factory.mktemp("coordination")) as server:
        yield server


async def flush(server: procs.Redis) -> None:
    admin = redis.asyncio.Redis.from_url(server.url)
    await admin.flushdb()
    await admin.aclose()


#: one more client of the shared state; ``timeout`` is the Redis client's (the service's default: 1 s)
Replicas = Callable[..., Coordination]


@pytest.fixture(params=["local", "redis"])
async def replicas(request: pytest.FixtureRequest) -> AsyncIterator[Replicas]:
    """``replicas()`` gives one more client of the same shared state: a second Redis connection as another
    replica would have; locally there is only one replica, so the same object."""
    opened: list[Coordination] = []
    if request.param == "local":
        local = coordination.LocalCoordination()
        opened.append(local)

        def make(timeout: float = 1.0) -> Coordination:
            return local
    else:
        server: procs.Redis = request.getfixturevalue("redis_server")
        await flush(server)

        def make(timeout: float = 1.0) -> Coordination:
            opened.append(coordination_redis.RedisCoordination(server.url, prefix=PREFIX, timeout=timeout))
            return opened[-1]

    yield make
    for client in opened:
        await client.close()


@pytest.fixture
def coord(replicas: Replicas) -> Coordination:
    return replicas()


# ------------------------------------------------------------------------------------------- one actor per target


async def test_only_the_owner_holds_extends_and_releases_a_lock(replicas: Replicas) -> None:
    a, b = replicas(), replicas()
    assert await a.acquire_lock("Deployment/shop/api", "replica-a", lease_s=30)
    assert not await b.acquire_lock("Deployment/shop/api", "replica-b", lease_s=30)
    assert not await a.acquire_lock("Deployment/shop/api", "replica-a", lease_s=30)  # not re-entrant
    assert await b.acquire_lock("Deployment/shop/web", "replica-b", lease_s=30)  # another target

    assert not await b.extend_lock("Deployment/shop/api", "replica-b", lease_s=30)
    assert not await b.release_lock("Deployment/shop/api", "replica-b")
    assert await a.extend_lock("Deployment/shop/api", "replica-a", lease_s=30)
    assert not await b.acquire_lock("Deployment/shop/api", "replica-b", lease_s=30)

    assert await a.release_lock("Deployment/shop/api", "replica-a")
    assert not await a.release_lock("Deployment/shop/api", "replica-a")  # already released
    assert not await a.extend_lock("Deployment/shop/api", "replica-a", lease_s=30)
    assert await b.acquire_lock("Deployment/shop/api", "replica-b", lease_s=30)


async def test_a_lease_expires_unless_the_owner_extends_it(coord: Coordination) -> None:
    assert await coord.acquire_lock("t1", "a", lease_s=0.2)
    assert await coord.acquire_lock("t2", "a", lease_s=0.2)
    await asyncio.sleep(0.1)
    assert await coord.extend_lock("t2", "a", lease_s=0.6)
    await asyncio.sleep(0.2)
    assert not await coord.extend_lock("t1", "a", lease_s=1)  # expired: the owner lost it
    assert not await coord.release_lock("t1", "a")
    assert await coord.acquire_lock("t1", "b", lease_s=5)
    assert not await coord.acquire_lock("t2", "b", lease_s=5)  # still held thanks to the extension
    await asyncio.sleep(0.4)
    assert await coord.acquire_lock("t2", "b", lease_s=5)


async def test_fifty_concurrent_acquirers_on_two_replicas_get_exactly_one_lock(replicas: Replicas) -> None:
    # the 50 calls open up to 50 connections at once: on a machine loaded by other jobs one connect missed the
    # service's 1 s timeout in CI (failing closed, as it must); this test is about the lock, not the timeout
    a, b = replicas(timeout=5.0), replicas(timeout=5.0)
    results = await asyncio.gather(
        *(
            (a if i % 2 else b).acquire_lock("Deployment/shop/api", f"owner-{i}", lease_s=10)
            for i in range(50)
        )
    )
    assert results.count(True) == 1


async def test_keys_and_owners_are_data_never_code(coord: Coordination) -> None:
    owner = "x' then return 1 end --\"]]"
    key = "k') redis.call('FLUSHALL') --"
    assert await coord.acquire_lock(key, owner, lease_s=10)
    assert not await coord.release_lock(key, "x")
    assert not await coord.extend_lock(key, "x' then return 1 end --", lease_s=10)
    assert await coord.extend_lock(key, owner, lease_s=10)
    assert await coord.release_lock(key, owner)


async def test_bad_arguments_are_programming_errors(coord: Coordination) -> None:
    with pytest.raises(ValueError, match="lease_s"):
        await coord.acquire_lock("t", "a", lease_s=0)
    with pytest.raises(ValueError, match="owner"):
        await coord.acquire_lock("t", "", lease_s=1)
    with pytest.raises(ValueError, match="window_s"):
        await coord.take_budget(now=T, window_s=-1, limit=10)


# ------------------------------------------------------------------------------------------- cooldown, attempts


async def test_last_action_is_the_latest_run_of_that_target_and_action(replicas: Replicas) -> None:
    a, b = replicas(), replicas()
    assert await a.last_action("restart:shop/api") is None
    await a.record_action("restart:shop/api", now=T, keep_s=3600)
    await b.record_action("restart:shop/api", now=T + 5, keep_s=3600)
    await a.record_action(
        "restart:shop/api", now=T + 2, keep_s=3600
    )  # a late writer does not go back in time
    assert await b.last_action("restart:shop/api") == T + 5
    assert await a.last_action("scale:shop/api") is None


async def test_attempts_count_only_runs_within_the_window(coord: Coordination) -> None:
    for offset in (0, 600, 1200, 1200):
        await coord.record_action("restart:shop/api", now=T + offset, keep_s=3600)
    assert await coord.attempts("restart:shop/api", now=T + 1200, window_s=3600) == 4
    assert await coord.attempts("restart:shop/api", now=T + 1200, window_s=900) == 3
    assert await coord.attempts("restart:shop/api", now=T + 1800, window_s=1200) == 2  # T+600 is on the edge
    assert await coord.attempts("restart:shop/api", now=T + 9000, window_s=3600) == 0
    assert await coord.attempts("restart:shop/web", now=T + 1200, window_s=3600) == 0


async def test_a_record_forgets_runs_older_than_keep(coord: Coordination) -> None:
    await coord.record_action("restart:shop/api", now=T, keep_s=60)
    await coord.record_action("restart:shop/api", now=T + 100, keep_s=60)
    assert await coord.attempts("restart:shop/api", now=T + 100, window_s=1000) == 1


# ------------------------------------------------------------------------------------------- global budget


async def test_thirty_concurrent_takers_get_exactly_the_budget(replicas: Replicas) -> None:
    a, b = replicas(), replicas()
    taken = await asyncio.gather(
        *((a if i % 2 else b).take_budget(now=T, window_s=600, limit=10) for i in range(30))
    )
    assert taken.count(True) == 10
    assert await a.budget_used(now=T, window_s=600) == 10
    assert not await b.take_budget(now=T + 599, window_s=600, limit=10)
    assert await b.take_budget(now=T + 600, window_s=600, limit=10)  # the window slid past the first ten
    assert await a.budget_used(now=T + 600, window_s=600) == 1


async def test_the_budget_window_slides_slot_by_slot(coord: Coordination) -> None:
    for offset in (0, 0, 300, 300):
        assert await coord.take_budget(now=T + offset, window_s=600, limit=4)
    assert not await coord.take_budget(now=T + 500, window_s=600, limit=4)
    assert await coord.budget_used(now=T + 650, window_s=600) == 2
    assert await coord.take_budget(now=T + 650, window_s=600, limit=4)
    assert await coord.take_budget(now=T + 650, window_s=600, limit=4)
    assert not await coord.take_budget(now=T + 650, window_s=600, limit=4)
    assert not await coord.take_budget(now=T + 650, window_s=600, limit=0)


# ------------------------------------------------------------------------------------------- storm brake


async def test_acting_incidents_are_counted_until_they_leave_or_expire(replicas: Replicas) -> None:
    a, b = replicas(), replicas()
    assert await a.enter_acting("inc-1", now=T, ttl_s=60) == 1
    assert await b.enter_acting("inc-2", now=T, ttl_s=60) == 2
    assert await a.enter_acting("inc-3", now=T + 30, ttl_s=60) == 3
    assert await b.enter_acting("inc-1", now=T + 30, ttl_s=60) == 3  # a refresh, not a newcomer
    assert await a.acting(now=T + 30) == 3
    await b.leave_acting("inc-3")
    await b.leave_acting("inc-never-entered")
    assert await a.acting(now=T + 30) == 2
    assert await a.acting(now=T + 61) == 1  # inc-2 expired, inc-1 was refreshed until T+90
    assert await b.enter_acting("inc-4", now=T + 91, ttl_s=60) == 1
    assert await a.acting(now=T + 91) == 1


# ------------------------------------------------------------------------------------------- kill switch, flaps


async def test_pause_and_resume_record_who_and_when(replicas: Replicas) -> None:
    a, b = replicas(), replicas()
    assert await a.paused() == (False, None, None)
    await a.set_paused(True, by="alice", now=T)
    assert await b.paused() == (True, "alice", T)
    await b.set_paused(False, by="bob", now=T + 90.5)
    assert await a.paused() == (False, "bob", T + 90.5)


async def test_the_last_mitigation_of_a_rule_and_target_is_kept(replicas: Replicas) -> None:
    a, b = replicas(), replicas()
    assert await a.last_mitigated("outage:Deployment/shop/api") is None
    await a.mark_mitigated("outage:Deployment/shop/api", now=T, keep_s=1800)
    assert await b.last_mitigated("outage:Deployment/shop/api") == T
    await b.mark_mitigated("outage:Deployment/shop/api", now=T + 600.25, keep_s=1800)
    assert await a.last_mitigated("outage:Deployment/shop/api") == T + 600.25
    assert await a.last_mitigated("outage:Deployment/shop/web") is None


# ------------------------------------------------------------------------------------------- failing closed

CALLS: list[tuple[str, Callable[[Coordination], Awaitable[Any]]]] = [
    ("acquire_lock", lambda c: c.acquire_lock("t", "a", lease_s=1)),
    ("extend_lock", lambda c: c.extend_lock("t", "a", lease_s=1)),
    ("release_lock", lambda c: c.release_lock("t", "a")),
    ("last_action", lambda c: c.last_action("t")),
    ("record_action", lambda c: c.record_action("t", now=T, keep_s=60)),
    ("attempts", lambda c: c.attempts("t", now=T, window_s=60)),
    ("take_budget", lambda c: c.take_budget(now=T, window_s=60, limit=10)),
    ("budget_used", lambda c: c.budget_used(now=T, window_s=60)),
    ("enter_acting", lambda c: c.enter_acting("i", now=T, ttl_s=60)),
    ("leave_acting", lambda c: c.leave_acting("i")),
    ("acting", lambda c: c.acting(now=T)),
    ("set_paused", lambda c: c.set_paused(True, by="a", now=T)),
    ("paused", lambda c: c.paused()),
    ("mark_mitigated", lambda c: c.mark_mitigated("t", now=T, keep_s=60)),
    ("last_mitigated", lambda c: c.last_mitigated("t")),
]


async def test_a_closed_coordination_is_unavailable(coord: Coordination) -> None:
    assert await coord.ping()
    await coord.close()
    await coord.close()  # idempotent
    assert not await coord.ping()
    for name, call in CALLS:
        with pytest.raises(CoordinationUnavailable):
            await call(coord)
        assert name


async def test_a_stopped_redis_fails_every_call_fast_then_recovers(redis_server: procs.Redis) -> None:
    coord = coordination_redis.RedisCoordination(redis_server.url, prefix=PREFIX)
    try:
        assert await coord.acquire_lock("t", "a", lease_s=60)  # a pooled connection exists
        redis_server.stop()
        try:
            for name, call in CALLS:
                started = time.monotonic()
                with pytest.raises(CoordinationUnavailable, match="coordination unavailable") as raised:
                    await call(coord)
                assert time.monotonic() - started < 2, name
                assert isinstance(raised.value, errors.Transient)
            assert not await coord.ping()
        finally:
            redis_server.start()
        assert await coord.ping()
        assert await coord.acquire_lock("t", "b", lease_s=60)  # no persistence: the old lock is gone
        assert await coord.take_budget(now=T, window_s=60, limit=1)
    finally:
        await coord.close()


async def test_a_hung_redis_times_out_within_a_second_or_so(redis_server: procs.Redis) -> None:
    await flush(redis_server)
    coord = coordination_redis.RedisCoordination(redis_server.url, prefix=PREFIX)
    assert redis_server.pid is not None
    try:
        os.kill(redis_server.pid, signal.SIGSTOP)  # accepts connections (kernel backlog), answers nothing
        try:
            started = time.monotonic()
            outcomes = await asyncio.gather(*(call(coord) for _, call in CALLS), return_exceptions=True)
            elapsed = time.monotonic() - started
            assert not await coord.ping()
        finally:
            os.kill(redis_server.pid, signal.SIGCONT)
        assert all(isinstance(o, CoordinationUnavailable) for o in outcomes), outcomes
        assert "timed out" in str(outcomes[0])
        assert elapsed < 2
        assert await coord.ping()
        assert await coord.paused() == (False, None, None)
    finally:
        await coord.close()


# ------------------------------------------------------------------------------------------- Redis keys, connect


async def test_every_redis_key_but_the_kill_switch_expires(redis_server: procs.Redis) -> None:
    await flush(redis_server)
    coord = coordination_redis.RedisCoordination(redis_server.url, prefix=PREFIX)
    admin = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        await coord.acquire_lock("t", "a", lease_s=30)
        await coord.record_action("t", now=T, keep_s=3600)
        await coord.record_action("t", now=T + 1, keep_s=60)  # a shorter keep never cuts the TTL
        await coord.take_budget(now=T, window_s=600, limit=10)
        await coord.enter_acting("i", now=T, ttl_s=120)
        await coord.mark_mitigated("t", now=T, keep_s=1800)
        await coord.set_paused(True, by="alice", now=T)
        ttls = {key: await admin.ttl(key) async for key in admin.scan_iter(match=f"{PREFIX}*")}
    finally:
        await admin.aclose()
        await coord.close()
    assert ttls == {
        f"{PREFIX}lock:t": pytest.approx(30, abs=2),
        f"{PREFIX}actions:t": pytest.approx(3600, abs=2),
        f"{PREFIX}budget": pytest.approx(600, abs=2),
        f"{PREFIX}acting": pytest.approx(120, abs=2),
        f"{PREFIX}mitigated:t": pytest.approx(1800, abs=2),
        f"{PREFIX}paused": -1,
    }


async def test_connect_picks_the_backend_from_the_url(redis_server: procs.Redis) -> None:
    local = coordination_backend.connect("")
    assert isinstance(local, coordination.LocalCoordination)
    remote = coordination_backend.connect(redis_server.url)
    assert isinstance(remote, coordination_redis.RedisCoordination)
    assert await remote.ping()
    await remote.close()
    await local.close()
    for url in ("http://user:hunter2@redis:6379", "redis://user:hunter2@redis:notaport/0"):
        with pytest.raises(errors.ConfigError) as raised:
            coordination_backend.connect(url)
        assert "hunter2" not in str(raised.value)


async def test_an_unreachable_redis_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    port = procs.free_port()
    coord = coordination_backend.connect(f"redis://:s3cret@{procs.HOST}:{port}/0")
    try:
        assert not await coord.ping()
        with pytest.raises(CoordinationUnavailable) as raised:
            await coord.take_budget(now=T, window_s=60, limit=10)
        assert "s3cret" not in str(raised.value)
        assert "Connection refused" in str(raised.value)
    finally:
        await coord.close()
